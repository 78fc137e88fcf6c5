"""Mixed precision per trial: keys, the dtype policy scoped to one trial's model, loss scaling for float16, and a
real resnet8 trial on digits trained under mixed_bfloat16 (bfloat16 runs on CPU)."""
import keras
import pytest

from trainer import TrainSettings, TrialConfig, checkpoints, train_trial
from trainer.precision import dtype_policy
from trainer.train import compile_model


def trial(precision="float32", epochs=2, batch=32):
    return TrialConfig(model="resnet8", norm="gn", batch_size=batch, groups=8,
                       train=TrainSettings(epochs=epochs, base_batch=32, augment=False, precision=precision))


def test_keys_carry_the_precision_only_when_it_is_not_float32():
    assert trial().key == "gn-b32-g8-s0"  # existing keys stay
    assert trial("mixed_bfloat16").key == "gn-b32-g8-s0-bf16"
    assert trial("mixed_float16").key == "gn-b32-g8-s0-fp16"
    old = trial().to_dict()
    del old["train"]["precision"]  # a config recorded before precision existed
    assert TrialConfig.from_dict(old) == trial()
    assert TrialConfig.from_dict(trial("mixed_float16").to_dict()).train.precision == "mixed_float16"


def test_the_policy_is_scoped_and_restored_even_on_error():
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(RuntimeError):
        with dtype_policy("mixed_float16"):
            assert keras.layers.Dense(2).compute_dtype == "float16"
            raise RuntimeError
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(ValueError, match="precision"):
        with dtype_policy("float8"):
            pass


@pytest.mark.parametrize("precision,scaled", [("float32", False), ("mixed_bfloat16", False),
                                              ("mixed_float16", True)])
def test_the_loss_is_scaled_for_float16_only(precision, scaled):
    from trainer.models import build_model

    with dtype_policy(precision):
        model = build_model("resnet8", norm="gn", num_classes=10, input_shape=(16, 16, 3))
    compile_model(model, trial(precision), steps_per_epoch=10)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) is scaled
    assert model.get_layer("fc").compute_dtype == "float32"  # logits for the cross-entropy in full precision


@pytest.mark.slow
def test_a_bfloat16_trial_learns_reports_and_leaves_the_global_policy_alone(digits_dataset, tmp_path):
    reported = []
    outcome = train_trial(trial("mixed_bfloat16"), digits_dataset, tmp_path / "ckpt", reported.append, cpus=2)
    assert outcome.status == "completed" and [m.epoch for m in reported] == [1, 2]
    assert reported[-1].val_err < 90 - 20, [m.val_err for m in reported]  # chance is 90%
    assert keras.config.dtype_policy().name == "float32"
    model = checkpoints.load(tmp_path / "ckpt").model  # the checkpoint reloads with the policy it was built with
    assert model.get_layer("stem_conv").compute_dtype == "bfloat16"
    assert model.get_layer("stem_norm").compute_dtype == "bfloat16"
    assert model.get_layer("stem_conv").variable_dtype == "float32"
