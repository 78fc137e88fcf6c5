import keras
import numpy as np
import pytest

from normalization.group_norm import GroupNorm
from trainer.models import MODEL_NAMES, build_model, default_groups, norm_channels

NORM_LAYERS = (GroupNorm, keras.layers.BatchNormalization)


def _norms(model):
    return [layer for layer in model.layers if isinstance(layer, NORM_LAYERS)]


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("norm", ["bn", "gn"])
def test_builds_with_the_channels_norm_channels_lists(name, norm):
    model = build_model(name, norm=norm, num_classes=7, input_shape=(32, 32, 3))
    assert model.output_shape == (None, 7)
    assert [int(layer.gamma.shape[0]) for layer in _norms(model)] == norm_channels(name)


@pytest.mark.parametrize("name", [n for n in MODEL_NAMES if n != "seed_cnn"])
def test_last_norm_of_each_residual_block_starts_at_zero(name):
    model = build_model(name, norm="gn", num_classes=10, input_shape=(32, 32, 3))
    last = "_norm3" if name == "resnet50" else "_norm2"
    zero = [layer.name for layer in _norms(model) if not np.any(np.asarray(layer.gamma))]
    assert zero and all(n.endswith(last) for n in zero)
    assert len(zero) == sum(1 for layer in _norms(model) if layer.name.endswith(last))
    assert all(np.all(np.asarray(layer.gamma) == 1) for layer in _norms(model) if "proj" in layer.name)


def test_default_groups_follow_the_authors():
    assert default_groups("resnet8") == 8 and default_groups("resnet50") == 32
    model = build_model("resnet8", norm="gn", num_classes=10, input_shape=(32, 32, 3))
    assert {layer.groups for layer in _norms(model)} == {8}
    model = build_model("resnet8", norm="gn", channels_per_group=4, num_classes=10, input_shape=(32, 32, 3))
    assert {layer.groups for layer in _norms(model)} == {4, 8, 16}
    ln = build_model("seed_cnn", norm="ln", num_classes=10)
    assert {layer.groups for layer in _norms(ln)} == {1}
    inorm = build_model("seed_cnn", norm="in", num_classes=10)
    assert [layer.groups for layer in _norms(inorm)] == [64, 256]


def test_impossible_grouping_is_a_value_error():
    with pytest.raises(ValueError, match="16"):
        build_model("resnet8", norm="gn", groups=32, num_classes=10, input_shape=(32, 32, 3))


def test_weight_decay_covers_kernels_gamma_and_beta():
    model = build_model("resnet8", norm="gn", num_classes=10, input_shape=(32, 32, 3), weight_decay=1e-4)
    model(np.zeros((1, 32, 32, 3), "float32"))
    decayed = sum(p.size for p in [np.asarray(w) for w in model.trainable_weights if "bias" not in w.path])
    assert len(model.losses) == sum(1 for w in model.trainable_weights if "bias" not in w.path)
    assert decayed > 0


def test_fresh_models_do_not_share_weights():
    a = build_model("seed_cnn", norm="bn", num_classes=10)
    b = build_model("seed_cnn", norm="bn", num_classes=10)
    assert not np.array_equal(np.asarray(a.layers[1].kernel), np.asarray(b.layers[1].kernel))
