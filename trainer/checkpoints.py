"""One trial's checkpoints: after every epoch the compiled model (weights and optimizer state), the epoch and the
history of reported metrics, written atomically so that a crash at any moment leaves the previous one intact.

The directory is a local path or a URI (``trainer.storage``). ``epoch-NNNN/`` is complete before ``latest`` names it:
locally it is renamed into place from a hidden name, on an object store it is uploaded first; ``latest`` is one
atomic write either way, and only then are older checkpoints dropped.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from trainer.config import EpochMetrics
from trainer.storage import Location

LATEST = "latest"


@dataclass
class Checkpoint:
    model: object  # a compiled keras.Model
    epoch: int  # epochs done
    history: list[EpochMetrics]


def _write(folder: Path, model, epoch: int, history: list[EpochMetrics]) -> None:
    folder.mkdir(parents=True)
    model.save(folder / "model.keras")
    (folder / "state.json").write_text(json.dumps({"epoch": epoch, "history": [m.to_dict() for m in history]}))


def save(directory: str | Path | Location, model, epoch: int, history: list[EpochMetrics]) -> Location:
    """Write ``epoch-NNNN/``, point ``latest`` at it and drop older ones."""
    where = Location.of(directory)
    name = f"epoch-{epoch:04d}"
    if where.local:
        root = where.as_path()
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
        _write(tmp, model, epoch, history)
        final = root / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    else:
        with tempfile.TemporaryDirectory(prefix="gnsweep-ckpt-") as tmp:
            _write(Path(tmp) / name, model, epoch, history)
            (where / name).delete_dir()
            (where / name).upload(Path(tmp) / name)
    (where / LATEST).write_text(name)
    _drop_older(where, keep=name)
    return where / name


def _drop_older(where: Location, keep: str) -> None:
    for old in where.folders():
        if old.name != keep and old.name.startswith(("epoch-", ".tmp-")):
            try:
                old.delete_dir()
            except OSError:
                pass  # another attempt's leftovers; the next save tries again


def _latest(where: Location) -> Location | None:
    pointer = where / LATEST
    return where / pointer.read_text().strip() if pointer.exists() else None


def load_state(directory: str | Path | Location) -> tuple[int, list[EpochMetrics]] | None:
    """The latest complete checkpoint's epoch and history without its model (nor Keras), or ``None`` before the
    first epoch: for a trainer that keeps no Keras model (the tests' stand-in for ``train_trial``)."""
    folder = _latest(Location.of(directory))
    if folder is None:
        return None
    state = json.loads((folder / "state.json").read_text())
    return int(state["epoch"]), [EpochMetrics(**m) for m in state["history"]]


def load(directory: str | Path | Location) -> Checkpoint | None:
    """The latest complete checkpoint, or ``None`` when the trial has not finished an epoch yet."""
    where = Location.of(directory)
    folder = _latest(where)
    if folder is None:
        return None
    if where.local:
        return _read(folder.as_path())
    with tempfile.TemporaryDirectory(prefix="gnsweep-ckpt-") as tmp:
        folder.download(Path(tmp))
        return _read(Path(tmp))


def latest_epoch(directory: str | Path | Location) -> int:
    """The epochs done in the latest checkpoint (0 when there is none), from ``latest`` alone: what a resumed trial
    starts after, known without loading the model."""
    pointer = Location.of(directory) / LATEST
    try:
        name = pointer.read_text().strip() if pointer.exists() else ""
    except (OSError, ValueError):
        return 0
    return int(name[len("epoch-"):]) if name.startswith("epoch-") and name[len("epoch-"):].isdigit() else 0


def _read(folder: Path) -> Checkpoint:
    import keras

    from normalization import custom_objects

    state = json.loads((folder / "state.json").read_text())
    model = keras.models.load_model(folder / "model.keras", compile=True, custom_objects=custom_objects())
    history = [EpochMetrics(**m) for m in state["history"]]
    return Checkpoint(model=model, epoch=int(state["epoch"]), history=history)
