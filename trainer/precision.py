"""Mixed precision for one trial: the Keras dtype policy a model is built under, and loss scaling for float16.

Keras keeps its dtype policy in global (thread-local) state, so the policy is set only while the model is built and
restored afterwards: a later trial in the same process starts from what it was. Each layer records its policy in
its config, so a checkpoint reloads with the precision it was built with. Normalization statistics stay float32
under every policy (``normalization.group_norm`` and Keras' BN compute in float32 and cast the output back), and
the classifier's logits are float32 so the softmax cross-entropy is computed at full precision.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from trainer.config import PRECISIONS


@contextmanager
def dtype_policy(precision: str) -> Iterator[None]:
    """Layers created inside take ``precision`` (a Keras policy name); the previous global policy comes back on
    exit, whatever happens inside."""
    import keras

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def scaled_optimizer(optimizer, precision: str):
    """float16's narrow range underflows small gradients: wrap the optimizer in Keras' dynamic loss scaling (bfloat16
    has float32's range and needs none). An optimizer that is already scaled (a restored one) is kept as is."""
    import keras

    if precision != "mixed_float16" or isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer)
