"""One trial trained as a library, without Ray: real Keras models on the real (built-in) digits."""
import math

import pytest

from trainer import TrainSettings, TrialConfig, train_trial
from trainer import checkpoints
from trainer.train import compile_model, lr_at, use_xla

CHANCE = 90.0  # top-1 error in percent of guessing among 10 digits


def trial(norm="bn", batch=32, epochs=3, base_lr=0.1):
    return TrialConfig(model="resnet8", norm=norm, batch_size=batch, groups=8 if norm == "gn" else None,
                       train=TrainSettings(epochs=epochs, base_lr=base_lr, base_batch=32, augment=False))


@pytest.mark.slow  # trains resnet8 for epochs
@pytest.mark.parametrize("norm", ["bn", "gn"])
def test_a_few_epochs_fall_far_below_chance(norm, digits_dataset, tmp_path):
    reported = []
    outcome = train_trial(trial(norm), digits_dataset, tmp_path / "ckpt", reported.append, cpus=2)
    assert outcome.status == "completed" and [m.epoch for m in reported] == [1, 2, 3]
    # measured: BN 88.9, 26.7, 23.1 and GN 75.8, 51.1, 46.9 (lr / 10 after epochs 1 and 2)
    assert outcome.history[-1].val_err < CHANCE - 30, [m.val_err for m in outcome.history]
    assert 0 <= outcome.final_val_err <= 100 and all(0 <= m.val_err_top5 <= m.val_err for m in reported)
    assert all(m.images_per_second > 0 and m.epoch_seconds > 0 for m in reported)


class Crash(Exception):
    pass


@pytest.mark.slow  # trains resnet8 for epochs
def test_interrupted_trial_resumes_at_the_next_epoch_with_the_schedule_and_optimizer_state(digits_dataset, tmp_path):
    t = trial(epochs=4)  # lr / 10 at the start of 0-based epochs 1 and 2 (30% and 60% of 4, rounded)
    ckpt = tmp_path / "ckpt"
    seen = []

    def crash_after_two(m):
        seen.append(m)
        if m.epoch == 2:
            raise Crash  # after epoch 2 was checkpointed, as a killed worker would leave it

    with pytest.raises(Crash):
        train_trial(t, digits_dataset, ckpt, crash_after_two, cpus=2)
    saved = checkpoints.load(ckpt)
    steps = 1437 // 32
    assert saved.epoch == 2 and int(saved.model.optimizer.iterations) == 2 * steps

    again = []
    outcome = train_trial(t, digits_dataset, ckpt, again.append, cpus=2)
    assert [m.epoch for m in again] == [1, 2, 3, 4]  # the checkpointed epochs are reported again first
    assert again[:2] == seen  # replayed from the checkpoint, not retrained
    assert [m.lr for m in again] == pytest.approx([lr_at(t, e) for e in range(4)])
    assert [m.lr for m in again] == pytest.approx([0.1, 0.01, 0.001, 0.001])
    assert outcome.status == "completed" and outcome.epochs == 4
    assert int(checkpoints.load(ckpt).model.optimizer.iterations) == 4 * steps


def test_an_absurd_learning_rate_diverges_and_stops(digits_dataset, tmp_path):
    reported = []
    outcome = train_trial(trial(batch=128, epochs=3, base_lr=1e8), digits_dataset, tmp_path / "ckpt",
                          reported.append, cpus=2)
    assert outcome.status == "diverged" and outcome.epochs == len(reported)
    assert not all(math.isfinite(v) for v in (reported[-1].train_loss, reported[-1].val_loss))


def test_xla_is_used_on_cpu_only_for_the_light_models_at_the_smallest_batches():
    from trainer.models import build_model

    assert use_xla("resnet8", 2) and use_xla("seed_cnn", 4) and use_xla("resnet20", 2)
    assert not use_xla("resnet8", 8) and not use_xla("seed_cnn", 32) and not use_xla("resnet8", 2, replicas=2)
    assert not use_xla("resnet18", 2) and not use_xla("resnet50", 2)
    for batch, jit in ((2, True), (32, False)):
        model = build_model("resnet8", norm="bn", num_classes=10, input_shape=(16, 16, 3))
        compile_model(model, trial(batch=batch), steps_per_epoch=10)
        assert model.jit_compile is jit


@pytest.mark.parametrize("precision", ["float32", "mixed_float16"])
def test_the_training_step_is_traced_once(precision):
    """``compile_model`` builds the optimizer (momentum, and the loss scale under float16): a first step that created
    them would be traced twice by tf.function, twice the start-up of every trial (resnet50: 30k graph ops, not 14k)."""
    import numpy as np

    from trainer.models import build_model
    from trainer.precision import dtype_policy

    t = TrialConfig(model="seed_cnn", norm="gn", batch_size=8, groups=8,
                    train=TrainSettings(epochs=1, precision=precision))
    with dtype_policy(precision):
        model = build_model("seed_cnn", norm="gn", num_classes=10, input_shape=(16, 16, 3), groups=8)
        compile_model(model, t, steps_per_epoch=2)
        traced = []
        step = model.train_step
        model.train_step = lambda data: traced.append(1) or step(data)
        x = np.zeros((16, 16, 16, 3), "float32")
        model.fit(x, np.zeros(16, "int32"), batch_size=8, epochs=1, verbose=0)
    assert len(traced) == 1 and int(model.optimizer.iterations) == 2
