import keras
import numpy as np
import pytest

from normalization import NORM_KINDS
from normalization.group_norm import GroupNorm
from trainer.models import (MODEL_NAMES, Conv, Norm, build_model, default_groups, layers_of, norm_channels,
                            parameter_count, sized)

NORM_LAYERS = (GroupNorm, keras.layers.BatchNormalization)
PARAMETERS = {  # count_params() at 10 classes, recorded from the models as built before trainer.models described them
    "seed_cnn": {"bn": 61_258, "gn": 60_618, "ln": 60_618, "in": 60_618, "none": 60_298},
    "resnet8": {"bn": 78_714, "gn": 78_042, "ln": 78_042, "in": 78_042, "none": 77_706},
    "resnet20": {"bn": 274_042, "gn": 272_474, "ln": 272_474, "in": 272_474, "none": 271_690},
    "resnet18": {"bn": 11_183_562, "gn": 11_173_962, "ln": 11_173_962, "in": 11_173_962, "none": 11_169_162},
    "resnet50": {"bn": 23_573_962, "gn": 23_520_842, "ln": 23_520_842, "in": 23_520_842, "none": 23_494_282},
}


def _norms(model):
    return [layer for layer in model.layers if isinstance(layer, NORM_LAYERS)]


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("norm", NORM_KINDS)
def test_the_built_model_is_its_description(name, norm):
    """Every conv and norm of the description is in the built model under its name, with its shape; the norms'
    channels are norm_channels; the parameter count is the one the models had before they were described."""
    model = build_model(name, norm=norm, num_classes=10, input_shape=(36, 28, 3))
    assert model.output_shape == (None, 10)
    assert model.count_params() == PARAMETERS[name][norm]
    built = {layer.name: layer for layer in model.layers}
    sites = [(layer, h, w) for layer, h, w in sized(layers_of(name, 10), (36, 28)) if isinstance(layer, (Conv, Norm))]
    for layer, h, w in sites:
        channels = layer.c_out if isinstance(layer, Conv) else layer.channels
        assert tuple(built[layer.name].output.shape) == (None, h, w, channels), layer.name
        if isinstance(layer, Conv):
            conv = built[layer.name]
            assert tuple(conv.kernel.shape) == (layer.kernel, layer.kernel, layer.c_in, layer.c_out), layer.name
            assert conv.strides == (layer.stride, layer.stride), layer.name
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in model.layers) == \
        sum(isinstance(layer, Conv) for layer, _, _ in sites)
    if norm != "none":
        assert [int(layer.gamma.shape[0]) for layer in _norms(model)] == norm_channels(name)
    if norm in ("gn", "ln", "in"):  # what trainer.peak_memory counts: kernels, gamma and beta, dense weights
        assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == parameter_count(layers_of(name, 10))


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
