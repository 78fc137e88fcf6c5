"""The seam that picks the function each trial trains with (``GNSWEEP_TRAINER``, read by the driver and sent with the
trials), and the stand-in the orchestration tests pick with it: ``tests.support.fake_trainer`` keeps
``trainer.train_trial``'s signature and contract (checkpoint, report, resume, refuse, diverge) without TensorFlow."""
import inspect
import math

import pytest

import trainer.train
from orchestrator.tune.run import DEFAULT_TRAINER, TRAINER_ENV, TRAINER_OPTIONS_ENV, TrainerChoice
from tests.support import fake_trainer
from tests.support.cli import fake_trainer_env, gnsweep, write_spec
from trainer import TrainSettings, TrialConfig, checkpoints
from trainer.config import final_error
from trainer.train import lr_at


def trial(norm="gn", batch=128, epochs=4) -> TrialConfig:
    return TrialConfig(model="resnet8", norm=norm, batch_size=batch, groups=8 if norm == "gn" else None,
                       train=TrainSettings(epochs=epochs, base_lr=0.1, base_batch=32))


def test_the_default_is_the_real_trainer():
    choice = TrainerChoice.from_env({})
    assert choice == TrainerChoice(DEFAULT_TRAINER, {}) and choice.function() is trainer.train.train_trial


def test_the_environment_names_another_function_and_its_options():
    choice = TrainerChoice.from_env(fake_trainer_env(step_seconds=0.5, hang={"*": 2}))
    assert choice.function() is fake_trainer.train_trial
    assert choice.options == {"step_seconds": 0.5, "hang": {"*": 2}}


@pytest.mark.parametrize("environ, says", [
    ({TRAINER_ENV: "no.such.module:train"}, f"{TRAINER_ENV}=no.such.module:train: cannot import it"),
    ({TRAINER_ENV: "trainer.train:no_such_function"}, "cannot import it as module:function"),
    ({TRAINER_ENV: fake_trainer.PATH, TRAINER_OPTIONS_ENV: "{step_seconds: 1"}, f"{TRAINER_OPTIONS_ENV}: not JSON"),
    ({TRAINER_ENV: fake_trainer.PATH, TRAINER_OPTIONS_ENV: "[1, 2]"}, "a JSON object of keyword arguments"),
    ({TRAINER_OPTIONS_ENV: '{"step_seconds": 1}'}, f"{TRAINER_ENV} is not"),
])
def test_a_bad_choice_is_one_line_naming_the_variable(environ, says):
    with pytest.raises(ValueError) as e:
        TrainerChoice.from_env(environ)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_a_bad_choice_stops_the_launch_before_anything_starts(tmp_path, digits_dataset):
    spec = write_spec(tmp_path / "s.yaml", digits_dataset, name="s", studies="a: {norm: [bn], batch_size: [128]}")
    run = gnsweep("launch", spec, "--results", tmp_path / "results", "--no-dashboard", cwd=tmp_path,
                  env={TRAINER_ENV: "no.such.module:train", "RAY_TMPDIR": str(tmp_path / "ray-tmp")})
    assert run.returncode == 2, run.stdout + run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith(f"gnsweep: {TRAINER_ENV}=no.such.module:train: cannot import it")
    assert not (tmp_path / "ray-tmp").exists() and not (tmp_path / "results").exists()


def test_the_fake_takes_the_real_arguments():
    def shape(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    real = shape(trainer.train.train_trial)
    assert shape(fake_trainer.train_trial)[:len(real)] == real


class Crash(Exception):
    pass


def test_the_fake_checkpoints_each_epoch_and_resumes_from_it(digits_dataset, tmp_path):
    """As ``tests/trainer/test_train.py`` checks the real one: killed after epoch 2 was checkpointed, the next
    attempt reports the checkpointed epochs again and trains only the rest."""
    t, ckpt, seen = trial(epochs=4), tmp_path / "ckpt", []

    def crash_after_two(m):
        seen.append(m)
        if m.epoch == 2:
            raise Crash

    with pytest.raises(Crash):
        fake_trainer.train_trial(t, digits_dataset, ckpt, crash_after_two, cpus=1, step_seconds=0.01)
    assert checkpoints.load_state(ckpt) == (2, seen) and (ckpt / "latest").read_text() == "epoch-0002"

    again = []
    outcome = fake_trainer.train_trial(t, digits_dataset, ckpt, again.append, cpus=3, gpu=0.25, step_seconds=0.01)
    assert [m.epoch for m in again] == [1, 2, 3, 4] and again[:2] == seen
    assert [m.lr for m in again] == pytest.approx([lr_at(t, e) for e in range(4)])
    assert all(0 <= m.val_err_top5 <= m.val_err <= 100 and m.epoch_seconds >= 0.01 * (1437 // 128) for m in again)
    assert outcome.status == "completed" and outcome.final_val_err == final_error([m.val_err for m in again])
    assert sorted(p.name for p in ckpt.iterdir()) == ["epoch-0004", "latest"]
    info = fake_trainer.model_info(ckpt)
    assert (info["cpus"], info["gpu"], info["resumed_from"]) == (3, 0.25, 2)


def test_the_fake_refuses_fails_and_diverges_as_told(digits_dataset, tmp_path):
    with pytest.raises(ValueError, match=r"^batch 4096 is larger than the 1437 training images$"):
        fake_trainer.train_trial(trial(batch=4096), digits_dataset, tmp_path / "huge")

    t = trial()
    with pytest.raises(RuntimeError, match=f"{t.key} fails at epoch 2"):
        fake_trainer.train_trial(t, digits_dataset, tmp_path / "fail", fail={"*": 2}, step_seconds=0)
    assert checkpoints.load_state(tmp_path / "fail")[0] == 1

    reported = []
    outcome = fake_trainer.train_trial(t, digits_dataset, tmp_path / "nan", reported.append, diverge={t.key: 2},
                                       step_seconds=0)
    assert (outcome.status, outcome.epochs, [m.epoch for m in reported]) == ("diverged", 2, [1, 2])
    assert math.isnan(reported[-1].train_loss) and math.isnan(reported[-1].val_loss)
    assert checkpoints.load_state(tmp_path / "nan")[0] == 1, "a diverged epoch is not checkpointed"

    other = trial(norm="bn")
    assert fake_trainer.train_trial(other, digits_dataset, tmp_path / "bn", diverge={t.key: 1},
                                    step_seconds=0).status == "completed"
