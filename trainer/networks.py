"""The Keras models of the networks ``trainer.models`` describes. He (fan-out) initialisation as in the paper's
reference code; the final classifier is N(0, 0.01); gamma starts at 0 in the last norm of each residual block."""
from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from normalization import make_norm
from trainer.models import Conv, Dense, Dropout, GlobalPool, Layer, MaxPool, Norm, ReLU, Residual


@dataclass(frozen=True)
class NetOptions:
    norm: str
    groups: int | None
    channels_per_group: int | None
    weight_decay: float


def _reg(opts: NetOptions):
    return keras.regularizers.L2(opts.weight_decay / 2) if opts.weight_decay else None


def _conv(x, conv: Conv, opts: NetOptions):
    return layers.Conv2D(
        conv.c_out, conv.kernel, strides=conv.stride, padding="same", use_bias=opts.norm == "none",
        kernel_initializer=keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal"),
        kernel_regularizer=_reg(opts), name=conv.name)(x)


def _norm(x, norm: Norm, opts: NetOptions):
    return make_norm(opts.norm, norm.channels, groups=opts.groups, channels_per_group=opts.channels_per_group,
                     zero_init=norm.zero_init, weight_decay=opts.weight_decay, name=norm.name)(x)


def _dense(x, dense: Dense, opts: NetOptions):
    if dense.classifier:  # float32 logits under a mixed policy: the softmax cross-entropy is at full precision
        return layers.Dense(dense.c_out, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                            kernel_regularizer=_reg(opts), dtype="float32", name=dense.name)(x)
    return layers.Dense(dense.c_out, activation="relu" if dense.relu else None, kernel_regularizer=_reg(opts),
                        name=dense.name)(x)


def build(name: str, description: tuple[Layer, ...], opts: NetOptions, input_shape) -> keras.Model:
    """The Keras model of ``trainer.models.layers_of(name)``, layer for layer and with the same layer names."""
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, _apply(inputs, description, opts), name=name)


def _apply(x, description: tuple[Layer, ...], opts: NetOptions):
    for layer in description:
        x = _layer(x, layer, opts)
    return x


def _layer(x, layer: Layer, opts: NetOptions):
    match layer:
        case Conv():
            return _conv(x, layer, opts)
        case Norm():
            return _norm(x, layer, opts)
        case ReLU():
            return layers.ReLU()(x)
        case MaxPool():
            return layers.MaxPooling2D(layer.size, layer.stride, padding="same")(x)
        case GlobalPool():
            return layers.GlobalAveragePooling2D()(x)
        case Dense():
            return _dense(x, layer, opts)
        case Dropout():
            return layers.Dropout(layer.rate)(x)
        case Residual():
            # the shortcut's layers are created first, as they always were: a seeded build draws the same weights
            shortcut = _apply(x, layer.shortcut, opts)
            return layers.Add()([shortcut, _apply(x, layer.body, opts)])
    raise TypeError(f"no Keras layer for {layer!r}")
