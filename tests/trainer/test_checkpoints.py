"""A checkpoint loads in a fresh process that has imported nothing but ``trainer.checkpoints``, for every norm kind:
a resumed trial runs in a new Ray worker, where no model was built and so no custom layer was registered."""
import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from normalization import NORM_KINDS
from trainer import TrainSettings, TrialConfig, checkpoints
from trainer.config import EpochMetrics
from trainer.models import build_model
from trainer.train import compile_model

CASES = [(model, norm) for model in ("resnet8", "seed_cnn") for norm in NORM_KINDS]
pytestmark = pytest.mark.slow  # ten models trained two steps and saved, then loaded in another process: a minute
# batch 8 is above trainer.train.XLA_CPU_MAX_BATCH: no XLA compile on CPU (tests/trainer/test_xla.py compiles every
# model); one case trains at batch 4, compiled with XLA as small-batch trials on CPU and every trial on a GPU are
XLA_CASE = ("seed_cnn", "gn")

LOAD = """
import json, sys
from pathlib import Path
import numpy as np
from trainer import checkpoints
out = {}
for folder in sys.argv[1:]:
    ckpt = checkpoints.load(Path(folder) / "ckpt")
    x = np.load(Path(folder) / "x.npy")
    out[folder] = {"epoch": ckpt.epoch, "steps": int(ckpt.model.optimizer.iterations),
                   "layers": sorted({type(layer).__name__ for layer in ckpt.model.layers}),
                   "logits": ckpt.model(x, training=False).numpy().tolist()}
print(json.dumps(out))
"""


def _saved_after_two_steps(model_name, norm, folder):
    batch = 4 if (model_name, norm) == XLA_CASE else 8
    trial = TrialConfig(model=model_name, norm=norm, batch_size=batch, groups=8 if norm == "gn" else None,
                        train=TrainSettings(epochs=2, base_batch=batch))
    model = build_model(model_name, norm=norm, num_classes=10, input_shape=(16, 16, 3), groups=trial.groups)
    compile_model(model, trial, steps_per_epoch=2)
    assert model.jit_compile == ((model_name, norm) == XLA_CASE)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2 * batch, 16, 16, 3)).astype("float32"), rng.integers(0, 10, size=2 * batch)
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    history = [EpochMetrics(1, 2.3, 90.0, 2.3, 90.0, 50.0, 0.1, 1.0, 8.0)]
    checkpoints.save(folder / "ckpt", model, 1, history)
    np.save(folder / "x.npy", x[:2])
    return keras.ops.convert_to_numpy(model(x[:2], training=False))


@pytest.fixture(scope="module")
def loaded_elsewhere(tmp_path_factory):
    """Every (model, norm) saved here after two training steps, then loaded by one fresh Python process."""
    root = tmp_path_factory.mktemp("checkpoints")
    expected = {}
    for model_name, norm in CASES:
        folder = root / f"{model_name}-{norm}"
        expected[str(folder)] = _saved_after_two_steps(model_name, norm, folder)
    run = subprocess.run([sys.executable, "-c", LOAD, *expected], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    loaded = json.loads(run.stdout.strip().splitlines()[-1])
    return {tuple(Path(k).name.split("-")): (loaded[k], expected[k]) for k in expected}


@pytest.mark.parametrize("model_name,norm", CASES)
def test_checkpoint_of_every_norm_loads_in_a_fresh_process(model_name, norm, loaded_elsewhere):
    loaded, logits = loaded_elsewhere[(model_name, norm)]
    assert loaded["epoch"] == 1 and loaded["steps"] == 2  # the optimizer's state came back with the weights
    if norm in ("gn", "ln", "in"):
        assert "GroupNorm" in loaded["layers"]
    np.testing.assert_allclose(loaded["logits"], logits, atol=1e-5)


def test_checkpoint_state_lists_its_history(loaded_elsewhere, tmp_path_factory):
    folder = next(tmp_path_factory.getbasetemp().glob("checkpoints*")) / "resnet8-gn" / "ckpt"
    latest = (folder / "latest").read_text()
    state = json.loads((folder / latest / "state.json").read_text())
    assert latest == "epoch-0001" and state["epoch"] == 1 and state["history"][0]["val_err"] == 90.0
