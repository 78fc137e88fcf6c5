"""One trial's checkpoints: after every epoch the compiled model (weights and optimizer state), the epoch and the
history of reported metrics, written atomically so that a crash at any moment leaves the previous one intact."""
from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from trainer.config import EpochMetrics

LATEST = "latest"


@dataclass
class Checkpoint:
    model: object  # a compiled keras.Model
    epoch: int  # epochs done
    history: list[EpochMetrics]


def save(directory: Path, model, epoch: int, history: list[EpochMetrics]) -> Path:
    """Write ``epoch-NNNN/`` under a hidden name, rename it, then point ``latest`` at it and drop older ones."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"epoch-{epoch:04d}"
    tmp = directory / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    model.save(tmp / "model.keras")
    state = {"epoch": epoch, "history": [m.to_dict() for m in history]}
    (tmp / "state.json").write_text(json.dumps(state))
    final = directory / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _write_atomic(directory / LATEST, name)
    for old in directory.iterdir():
        if old.name != name and (old.name.startswith("epoch-") or old.name.startswith(".tmp-")):
            shutil.rmtree(old, ignore_errors=True)
    return final


def load(directory: Path) -> Checkpoint | None:
    """The latest complete checkpoint, or ``None`` when the trial has not finished an epoch yet."""
    directory = Path(directory)
    pointer = directory / LATEST
    if not pointer.exists():
        return None
    path = directory / pointer.read_text().strip()
    import keras

    state = json.loads((path / "state.json").read_text())
    model = keras.models.load_model(path / "model.keras", compile=True)
    history = [EpochMetrics(**m) for m in state["history"]]
    return Checkpoint(model=model, epoch=int(state["epoch"]), history=history)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(text)
    os.replace(tmp, path)
