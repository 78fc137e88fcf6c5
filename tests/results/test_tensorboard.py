"""TensorBoard event files from epoch rows, read back with TensorFlow's own reader: one file per (trial, epoch),
first write wins, on a local disk and on an object store (moto's S3 server)."""
from datetime import datetime, timezone
from pathlib import Path

import pytest

from results import tensorboard
from trainer.storage import Location

TAGS = {"error/train", "error/val", "error/val_top5", "loss/train", "loss/val", "lr", "speed/images_per_second",
        "speed/epoch_seconds"}


def row(epoch: int, val_err: float, key: str = "gn-b32-g8-s0") -> dict:
    return {"sweep": "t", "trial_key": key, "epoch": epoch, "train_loss": 1.5, "train_err": val_err - 4,
            "val_loss": 1.7, "val_err": val_err, "val_err_top5": val_err / 3, "lr": 0.1 / epoch,
            "epoch_seconds": 2.5, "images_per_second": 640.0, "recorded_at": datetime.now(timezone.utc)}


def read_scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] over every event file of a run, in TensorBoard's order (sorted file names)."""
    import tensorflow as tf

    found: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(p for p in run.iterdir() if "tfevents" in p.name):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                found.setdefault(value.tag, []).append((event.step, value.simple_value))
    return found


def test_each_epoch_once_whatever_is_reported_again(tmp_path):
    sweep = tmp_path / "t"
    assert [tensorboard.write_epoch_scalars(sweep, row(e, 60.0 - 10 * e)) for e in (1, 2)] == [True, True]
    assert tensorboard.write_epoch_scalars(sweep, row(2, 99.0)) is False, "a resumed trial re-reports epoch 2"
    assert tensorboard.write_epoch_scalars(sweep, row(3, 30.0)) is True
    run = sweep / "tensorboard" / "gn-b32-g8-s0"
    assert sorted(p.name for p in run.iterdir()) == [f"events.out.tfevents.{e:06d}.gnsweep" for e in (1, 2, 3)]
    scalars = read_scalars(run)
    assert set(scalars) == TAGS
    assert scalars["error/val"] == [(1, 50.0), (2, 40.0), (3, 30.0)]
    assert scalars["lr"] == [(1, pytest.approx(0.1)), (2, pytest.approx(0.05)), (3, pytest.approx(0.1 / 3))]
    assert all(len(points) == 3 for points in scalars.values())


def test_event_files_on_an_object_store(bucket, tmp_path):
    sweep = Location.of(bucket.uri("tb/t"))
    assert tensorboard.write_epoch_scalars(sweep, row(1, 70.0))
    assert not tensorboard.write_epoch_scalars(sweep, row(1, 10.0))
    files = (sweep / "tensorboard" / "gn-b32-g8-s0").files()
    assert [f.name for f in files] == ["events.out.tfevents.000001.gnsweep"]
    local = tmp_path / "run"
    local.mkdir()
    (local / files[0].name).write_bytes(files[0].read_bytes())
    assert read_scalars(local)["error/val"] == [(1, 70.0)]


def read_hparams(run: Path) -> dict[str, object]:
    """The HParams session start of a run as TensorBoard's hparams plugin parses it: with TensorBoard's own
    ``EventAccumulator`` and ``metadata`` when it is installed, else TensorFlow's event reader and tensorboardX's
    copy of the plugin's protobuf."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is not None:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        from tensorboard.plugins.hparams import metadata

        acc = EventAccumulator(str(run))
        acc.Reload()
        content = acc.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.SESSION_START_INFO_TAG]
        start = metadata.parse_session_start_info_plugin_data(content)
    else:
        import tensorflow as tf
        from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

        starts = [HParamsPluginData.FromString(v.metadata.plugin_data.content).session_start_info
                  for path in sorted(p for p in run.iterdir() if "tfevents" in p.name)
                  for event in tf.compat.v1.train.summary_iterator(str(path)) for v in event.summary.value
                  if v.metadata.plugin_data.plugin_name == "hparams" and v.tag == "_hparams_/session_start_info"]
        assert len(starts) == 1, starts
        start = starts[0]
    return {name: getattr(value, value.WhichOneof("kind")) for name, value in start.hparams.items()}


def test_hyperparameters_are_the_runs_session_start(tmp_path):
    """File 0 of a run holds its hyperparameters (TensorBoard's HParams view filters on them); a null one (BN's
    group count) is left out; written once."""
    sweep = tmp_path / "t"
    config = {"model": "resnet8", "norm": "gn", "batch_size": 32, "groups": 1, "channels_per_group": None, "seed": 2,
              "precision": "float32"}
    assert tensorboard.write_hparams(sweep, {**row(1, 50.0, "gn-b32-g1-s2"), **config})
    assert not tensorboard.write_hparams(sweep, {**row(1, 50.0, "gn-b32-g1-s2"), **config, "norm": "bn"})
    tensorboard.write_epoch_scalars(sweep, row(1, 50.0, "gn-b32-g1-s2"))
    run = sweep / "tensorboard" / "gn-b32-g1-s2"
    assert sorted(p.name for p in run.iterdir())[0] == "events.out.tfevents.000000.gnsweep"
    assert read_hparams(run) == {"model": "resnet8", "norm": "gn", "batch_size": 32.0, "groups": 1.0, "seed": 2.0,
                                 "precision": "float32"}
    assert read_scalars(run)["error/val"] == [(1, 50.0)]
