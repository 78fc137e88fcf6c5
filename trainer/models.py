"""The networks a trial can train, by name. ``norm_channels`` needs no TensorFlow, so specs validate in milliseconds.

- ``seed_cnn``: the reference notebook's network (conv 7x7/2 64, max-pool, conv 1x1 256, GAP, dense 128, dropout).
- ``resnet8`` / ``resnet20``: CIFAR-style (3x3 stem, stages of 16/32/64 channels, 1 or 3 basic blocks each).
- ``resnet18``: basic blocks with the Tiny ImageNet stem (3x3 conv, stride 1, no max-pool).
- ``resnet50``: the paper's bottleneck ResNet-50, same 64x64 stem.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    stem: int  # stem conv channels
    widths: tuple[int, ...]  # per stage
    blocks: tuple[int, ...]  # residual blocks per stage
    bottleneck: bool
    default_groups: int


ARCHITECTURES: dict[str, Architecture] = {
    "resnet8": Architecture(16, (16, 32, 64), (1, 1, 1), False, 8),
    "resnet20": Architecture(16, (16, 32, 64), (3, 3, 3), False, 8),
    "resnet18": Architecture(64, (64, 128, 256, 512), (2, 2, 2, 2), False, 32),
    "resnet50": Architecture(64, (64, 128, 256, 512), (3, 4, 6, 3), True, 32),
}
MODEL_NAMES = ("seed_cnn", *ARCHITECTURES)
SEED_CNN_CHANNELS = (64, 256)


def _check_name(name: str) -> None:
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODEL_NAMES)}")


def default_groups(name: str) -> int:
    """GN's group count when a spec gives none: 32 as in the paper, 8 for the 16-channel CIFAR ResNets (as the
    authors did)."""
    _check_name(name)
    return ARCHITECTURES[name].default_groups if name in ARCHITECTURES else 32


def norm_channels(name: str) -> list[int]:
    """Channel counts of the model's normalization layers, in order, without building it."""
    _check_name(name)
    if name == "seed_cnn":
        return list(SEED_CNN_CHANNELS)
    arch = ARCHITECTURES[name]
    channels = [arch.stem]
    c_in = arch.stem
    for stage, (width, n) in enumerate(zip(arch.widths, arch.blocks)):
        for b in range(n):
            stride = 2 if stage > 0 and b == 0 else 1
            c_out = width * 4 if arch.bottleneck else width
            channels += [width, width, c_out] if arch.bottleneck else [width, width]
            if stride != 1 or c_in != c_out:
                channels.append(c_out)
            c_in = c_out
    return channels


def conv_sites(name: str, image_size: tuple[int, int], num_classes: int = 200) -> tuple[list[tuple[int, int, int]], int]:
    """Each convolution's output (height, width, channels) in order, and the number of parameters, without
    building the model (for ``trainer.peak_memory``); strided convolutions use 'same' padding (ceil)."""
    _check_name(name)
    h, w = image_size

    def down(x: int, s: int) -> int:
        return -(-x // s)

    def conv(c_in: int, c_out: int, k: int) -> int:
        return k * k * c_in * c_out + 2 * c_out  # kernel, gamma and beta

    if name == "seed_cnn":
        h1, w1 = down(h, 2), down(w, 2)
        h2, w2 = down(h1, 2), down(w1, 2)
        sites = [(h1, w1, 64), (h2, w2, 256)]
        params = conv(3, 64, 7) + conv(64, 256, 1) + 256 * 128 + 128 + 128 * num_classes + num_classes
        return sites, params
    arch = ARCHITECTURES[name]
    sites, params, c_in = [(h, w, arch.stem)], conv(3, arch.stem, 3), arch.stem
    for stage, (width, n) in enumerate(zip(arch.widths, arch.blocks)):
        for b in range(n):
            stride = 2 if stage > 0 and b == 0 else 1
            c_out = width * 4 if arch.bottleneck else width
            ho, wo = down(h, stride), down(w, stride)
            if arch.bottleneck:
                sites += [(h, w, width), (ho, wo, width), (ho, wo, c_out)]
                params += conv(c_in, width, 1) + conv(width, width, 3) + conv(width, c_out, 1)
            else:
                sites += [(ho, wo, width), (ho, wo, width)]
                params += conv(c_in, width, 3) + conv(width, width, 3)
            if stride != 1 or c_in != c_out:
                sites.append((ho, wo, c_out))
                params += conv(c_in, c_out, 1)
            h, w, c_in = ho, wo, c_out
    return sites, params + c_in * num_classes + num_classes


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
    if name == "seed_cnn":
        return networks.seed_cnn(opts, num_classes, input_shape)
    return networks.resnet(name, ARCHITECTURES[name], opts, num_classes, input_shape)
