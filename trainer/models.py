"""The networks a trial can train, by name, each described once as data: its layers in order (``layers_of``). The
Keras builder (``trainer.networks``), ``norm_channels``, the FLOP estimate (``orchestrator.cost.estimate``) and the
peak-memory estimate (``trainer.peak_memory``) all read that description, so they cannot disagree about a layer.
Nothing here imports TensorFlow, so specs validate in milliseconds.

- ``seed_cnn``: the reference notebook's network (conv 7x7/2 64, max-pool, conv 1x1 256, GAP, dense 128, dropout).
- ``resnet8`` / ``resnet20``: CIFAR-style (3x3 stem, stages of 16/32/64 channels, 1 or 3 basic blocks each).
- ``resnet18``: basic blocks with the Tiny ImageNet stem (3x3 conv, stride 1, no max-pool).
- ``resnet50``: the paper's bottleneck ResNet-50, same 64x64 stem.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Union


@dataclass(frozen=True)
class Conv:
    """A convolution with 'same' padding (a strided one's output is the ceiling of input / stride)."""

    name: str
    kernel: int
    stride: int
    c_in: int
    c_out: int


@dataclass(frozen=True)
class Norm:
    """A normalization layer; ``zero_init`` starts gamma at 0 (the last norm of a residual block)."""

    name: str
    channels: int
    zero_init: bool = False


@dataclass(frozen=True)
class ReLU:
    pass


@dataclass(frozen=True)
class MaxPool:
    size: int
    stride: int


@dataclass(frozen=True)
class GlobalPool:
    pass


@dataclass(frozen=True)
class Dense:
    """A fully connected layer with bias; ``classifier`` is the final one (logits, N(0, 0.01) init)."""

    name: str
    c_in: int
    c_out: int
    relu: bool = False
    classifier: bool = False


@dataclass(frozen=True)
class Dropout:
    rate: float


@dataclass(frozen=True)
class Residual:
    """``body`` and ``shortcut`` (empty: identity) from the same input, added."""

    body: tuple[Layer, ...]
    shortcut: tuple[Layer, ...] = ()


Layer = Union[Conv, Norm, ReLU, MaxPool, GlobalPool, Dense, Dropout, Residual]


@dataclass(frozen=True)
class ResNet:
    """A ResNet family member: stem channels, widths and block counts per stage, bottleneck or basic blocks."""

    stem: int
    widths: tuple[int, ...]
    blocks: tuple[int, ...]
    bottleneck: bool
    default_groups: int


RESNETS: dict[str, ResNet] = {
    "resnet8": ResNet(16, (16, 32, 64), (1, 1, 1), False, 8),
    "resnet20": ResNet(16, (16, 32, 64), (3, 3, 3), False, 8),
    "resnet18": ResNet(64, (64, 128, 256, 512), (2, 2, 2, 2), False, 32),
    "resnet50": ResNet(64, (64, 128, 256, 512), (3, 4, 6, 3), True, 32),
}
MODEL_NAMES = ("seed_cnn", *RESNETS)


def _check_name(name: str) -> None:
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODEL_NAMES)}")


def layers_of(name: str, num_classes: int = 200) -> tuple[Layer, ...]:
    """The network ``name``'s layers in order, ending in a classifier of ``num_classes``."""
    _check_name(name)
    if name == "seed_cnn":
        return (Conv("conv1", 7, 2, 3, 64), Norm("norm1", 64), ReLU(), MaxPool(3, 2),
                Conv("conv2", 1, 1, 64, 256), Norm("norm2", 256), ReLU(), GlobalPool(),
                Dense("fc1", 256, 128, relu=True), Dropout(0.5), Dense("fc", 128, num_classes, classifier=True))
    arch = RESNETS[name]
    out: list[Layer] = [Conv("stem_conv", 3, 1, 3, arch.stem), Norm("stem_norm", arch.stem), ReLU()]
    c_in = arch.stem
    for stage, (width, n) in enumerate(zip(arch.widths, arch.blocks)):
        for b in range(n):
            stride = 2 if stage > 0 and b == 0 else 1
            block = _block(f"s{stage + 1}b{b + 1}", c_in, width, stride, arch.bottleneck)
            out += [block, ReLU()]
            c_in = block.body[-1].channels  # the block's last norm: its output channels
    return (*out, GlobalPool(), Dense("fc", c_in, num_classes, classifier=True))


def _block(name: str, c_in: int, width: int, stride: int, bottleneck: bool) -> Residual:
    c_out = width * 4 if bottleneck else width
    if bottleneck:
        body = (Conv(f"{name}_conv1", 1, 1, c_in, width), Norm(f"{name}_norm1", width), ReLU(),
                Conv(f"{name}_conv2", 3, stride, width, width), Norm(f"{name}_norm2", width), ReLU(),
                Conv(f"{name}_conv3", 1, 1, width, c_out), Norm(f"{name}_norm3", c_out, zero_init=True))
    else:
        body = (Conv(f"{name}_conv1", 3, stride, c_in, width), Norm(f"{name}_norm1", width), ReLU(),
                Conv(f"{name}_conv2", 3, 1, width, width), Norm(f"{name}_norm2", width, zero_init=True))
    shortcut = ()
    if stride != 1 or c_in != c_out:
        shortcut = (Conv(f"{name}_proj", 1, stride, c_in, c_out), Norm(f"{name}_proj_norm", c_out))
    return Residual(body, shortcut)


def flat(layers: tuple[Layer, ...]) -> Iterator[Layer]:
    """Every layer, a residual block's body before its shortcut (the order Keras lists a built model's layers in)."""
    for layer in layers:
        if isinstance(layer, Residual):
            yield from flat(layer.body)
            yield from flat(layer.shortcut)
        else:
            yield layer


def sized(layers: tuple[Layer, ...], image_size: tuple[int, int]) -> Iterator[tuple[Layer, int, int]]:
    """Every layer of ``flat`` order with its output's height and width at input ``image_size``."""
    h, w = image_size
    for layer in layers:
        if isinstance(layer, Residual):
            body = list(sized(layer.body, (h, w)))
            yield from body
            yield from sized(layer.shortcut, (h, w))
            _, h, w = body[-1]
            continue
        if isinstance(layer, (Conv, MaxPool)):
            h, w = -(-h // layer.stride), -(-w // layer.stride)
        elif isinstance(layer, GlobalPool):
            h, w = 1, 1
        yield layer, h, w


def parameter_count(layers: tuple[Layer, ...]) -> int:
    """Trainable parameters with a grouped norm: conv kernels (no bias), gamma and beta, dense weights and bias."""
    count = 0
    for layer in flat(layers):
        if isinstance(layer, Conv):
            count += layer.kernel * layer.kernel * layer.c_in * layer.c_out
        elif isinstance(layer, Norm):
            count += 2 * layer.channels
        elif isinstance(layer, Dense):
            count += layer.c_in * layer.c_out + layer.c_out
    return count


def default_groups(name: str) -> int:
    """GN's group count when a spec gives none: 32 as in the paper, 8 for the 16-channel CIFAR ResNets (as the
    authors did)."""
    _check_name(name)
    return RESNETS[name].default_groups if name in RESNETS else 32


def norm_channels(name: str) -> list[int]:
    """Channel counts of the model's normalization layers, in order, without building it."""
    return [layer.channels for layer in flat(layers_of(name)) if isinstance(layer, Norm)]


def build_model(name: str, *, norm: str, num_classes: int, input_shape=(64, 64, 3), groups: int | None = None,
                channels_per_group: int | None = None, weight_decay: float = 0.0):
    """A fresh, uncompiled ``keras.Model``. ``weight_decay`` is the paper's L2 (wd/2 * ||w||^2) on conv and dense
    kernels and on gamma and beta."""
    _check_name(name)
    from trainer import networks

    if norm == "gn" and groups is None and channels_per_group is None:
        groups = default_groups(name)
    opts = networks.NetOptions(norm=norm, groups=groups, channels_per_group=channels_per_group,
                               weight_decay=weight_decay)
    return networks.build(name, layers_of(name, num_classes), opts, input_shape)
