"""BN, GN, LN and IN behind one factory: the only place in gnsweep that knows normalization kinds.

GN follows the paper (Wu & He 2018, eq. 1-7): C channels split into G contiguous groups, each normalized over
(H, W, C/G) of one sample with biased variance, per-channel gamma and beta, epsilon 1e-5, no running statistics.
Keras' own ``GroupNormalization`` computes exactly that once epsilon is set; ``GroupNorm`` (group_norm.py) computes
the same numbers faster on the 4-D tensor and is the layer used. LN (G = 1) and IN (G = C) are the same layer with
another group count.
"""
from __future__ import annotations

NORM_KINDS = ("bn", "gn", "ln", "in", "none")
GROUPED = ("gn", "ln", "in")
BN_MOMENTUM = 0.9  # the paper's reference (fb.resnet.torch / tensorpack) running-average momentum


def resolve_groups(kind: str, channels: int, *, groups: int | None = None,
                   channels_per_group: int | None = None) -> int | None:
    """Number of groups a grouped norm uses on a layer of ``channels`` channels; ``None`` for bn/none.

    Raises ``ValueError`` naming the numbers when the grouping is impossible.
    """
    if kind not in NORM_KINDS:
        raise ValueError(f"unknown norm kind {kind!r}; expected one of {', '.join(NORM_KINDS)}")
    if kind not in GROUPED:
        return None
    if kind == "ln":
        return 1
    if kind == "in":
        return channels
    if groups is not None and channels_per_group is not None:
        raise ValueError("give groups or channels_per_group, not both")
    if channels_per_group is not None:
        if channels_per_group <= 0 or channels % channels_per_group:
            raise ValueError(f"channels_per_group {channels_per_group} does not divide the {channels} channels")
        return channels // channels_per_group
    g = 32 if groups is None else groups
    if g <= 0 or g > channels or channels % g:
        raise ValueError(f"groups {g} does not divide the {channels} channels")
    return g


def custom_objects() -> dict:
    """The Keras classes a saved gnsweep model may name, for ``keras.models.load_model`` in a process that has not
    imported them (registration happens on import, so a fresh worker resuming a GN, LN or IN trial needs this)."""
    from normalization.group_norm import GroupNorm

    return {"gnsweep>GroupNorm": GroupNorm}


def make_norm(kind: str, channels: int, *, groups: int | None = None, channels_per_group: int | None = None,
              epsilon: float = 1e-5, zero_init: bool = False, weight_decay: float = 0.0, name: str | None = None):
    """A Keras layer normalizing NHWC tensors of ``channels`` channels.

    ``zero_init`` starts gamma at 0 (the last norm of a residual block). ``weight_decay`` is the paper's
    ``wd * 1/2 * ||w||^2`` on gamma and beta (Keras' L2(l) adds ``l * ||w||^2``, so it gets ``wd / 2``).
    """
    import keras

    g = resolve_groups(kind, channels, groups=groups, channels_per_group=channels_per_group)
    gamma_init = "zeros" if zero_init else "ones"
    reg = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    if kind == "none":
        return keras.layers.Identity(name=name)
    if kind == "bn":
        return keras.layers.BatchNormalization(
            axis=-1, momentum=BN_MOMENTUM, epsilon=epsilon, gamma_initializer=gamma_init,
            gamma_regularizer=reg, beta_regularizer=reg, name=name)
    from normalization.group_norm import GroupNorm

    return GroupNorm(groups=g, epsilon=epsilon, gamma_initializer=gamma_init, gamma_regularizer=reg,
                     beta_regularizer=reg, name=name)
