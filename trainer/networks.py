"""Keras definitions of the networks named in ``trainer.models``. He (fan-out) initialisation as in the paper's
reference code; the final classifier is N(0, 0.01); gamma starts at 0 in the last norm of each residual block."""
from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from normalization import make_norm


@dataclass(frozen=True)
class NetOptions:
    norm: str
    groups: int | None
    channels_per_group: int | None
    weight_decay: float


def _reg(opts: NetOptions):
    return keras.regularizers.L2(opts.weight_decay / 2) if opts.weight_decay else None


def _conv(x, filters, kernel, stride, opts: NetOptions, name: str):
    return layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=opts.norm == "none",
        kernel_initializer=keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal"),
        kernel_regularizer=_reg(opts), name=name)(x)


def _norm(x, opts: NetOptions, name: str, zero_init: bool = False):
    return make_norm(opts.norm, x.shape[-1], groups=opts.groups, channels_per_group=opts.channels_per_group,
                     zero_init=zero_init, weight_decay=opts.weight_decay, name=name)(x)


def _classifier(x, num_classes: int, opts: NetOptions):
    # float32 logits under a mixed policy: the softmax cross-entropy is computed at full precision
    return layers.Dense(num_classes, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                        kernel_regularizer=_reg(opts), dtype="float32", name="fc")(x)


def seed_cnn(opts: NetOptions, num_classes: int, input_shape) -> keras.Model:
    inputs = keras.Input(input_shape)
    x = _conv(inputs, 64, 7, 2, opts, "conv1")
    x = layers.ReLU()(_norm(x, opts, "norm1"))
    x = layers.MaxPooling2D(3, 2, padding="same")(x)
    x = _conv(x, 256, 1, 1, opts, "conv2")
    x = layers.ReLU()(_norm(x, opts, "norm2"))
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(128, activation="relu", kernel_regularizer=_reg(opts), name="fc1")(x)
    x = layers.Dropout(0.5)(x)
    return keras.Model(inputs, _classifier(x, num_classes, opts), name="seed_cnn")


def _block(x, width: int, stride: int, bottleneck: bool, opts: NetOptions, name: str):
    c_out = width * 4 if bottleneck else width
    shortcut = x
    if stride != 1 or x.shape[-1] != c_out:
        shortcut = _conv(x, c_out, 1, stride, opts, f"{name}_proj")
        shortcut = _norm(shortcut, opts, f"{name}_proj_norm")
    if bottleneck:
        y = layers.ReLU()(_norm(_conv(x, width, 1, 1, opts, f"{name}_conv1"), opts, f"{name}_norm1"))
        y = layers.ReLU()(_norm(_conv(y, width, 3, stride, opts, f"{name}_conv2"), opts, f"{name}_norm2"))
        y = _norm(_conv(y, c_out, 1, 1, opts, f"{name}_conv3"), opts, f"{name}_norm3", zero_init=True)
    else:
        y = layers.ReLU()(_norm(_conv(x, width, 3, stride, opts, f"{name}_conv1"), opts, f"{name}_norm1"))
        y = _norm(_conv(y, width, 3, 1, opts, f"{name}_conv2"), opts, f"{name}_norm2", zero_init=True)
    return layers.ReLU()(layers.Add()([shortcut, y]))


def resnet(name: str, arch, opts: NetOptions, num_classes: int, input_shape) -> keras.Model:
    inputs = keras.Input(input_shape)
    x = layers.ReLU()(_norm(_conv(inputs, arch.stem, 3, 1, opts, "stem_conv"), opts, "stem_norm"))
    for stage, (width, n) in enumerate(zip(arch.widths, arch.blocks)):
        for b in range(n):
            stride = 2 if stage > 0 and b == 0 else 1
            x = _block(x, width, stride, arch.bottleneck, opts, f"s{stage + 1}b{b + 1}")
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, _classifier(x, num_classes, opts), name=name)
