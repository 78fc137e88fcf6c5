"""Shared fixtures: real datasets prepared once per test session."""
import os
import sys
from pathlib import Path

import pytest

SAMPLE_ENV = "GNSWEEP_TINY_IMAGENET_SAMPLE"

# pytest's default (prepend) import mode puts this folder on sys.path to import this file; its subfolders are named
# like the packages they test and would shadow them as namespace packages (``from trainer import train_trial`` fails).
if str(Path(__file__).parent) in sys.path:
    sys.path.remove(str(Path(__file__).parent))


@pytest.fixture(scope="session")
def digits_dataset(tmp_path_factory) -> Path:
    """scikit-learn's digits prepared as shards (1,437 train / 360 val, 16x16)."""
    from trainer.data import prepare

    out = tmp_path_factory.mktemp("datasets") / "digits"
    prepare("digits", out, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_sample() -> Path:
    """The real Tiny ImageNet-200 sample (10 classes) in its own layout; never copied into the project."""
    if not os.environ.get(SAMPLE_ENV):
        pytest.skip(f"{SAMPLE_ENV} not set: the real Tiny ImageNet sample is not available")
    path = Path(os.environ[SAMPLE_ENV])
    if not (path / "wnids.txt").is_file():
        pytest.fail(f"{SAMPLE_ENV}={path} is not a Tiny ImageNet directory (no wnids.txt)")
    return path


@pytest.fixture(scope="session")
def sample_dataset(tiny_sample, tmp_path_factory) -> Path:
    """The Tiny ImageNet sample prepared as shards (1,000 train / 500 val, 64x64)."""
    from trainer.data import prepare

    out = tmp_path_factory.mktemp("datasets") / "tiny-sample"
    prepare(str(tiny_sample), out, progress=False)
    return out
