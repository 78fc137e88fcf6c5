"""XLA with a way out: a model whose training step XLA cannot compile trains without it, with a warning, instead of
failing the trial. XLA compiles the whole step before its first update, so nothing has changed when it refuses."""
from __future__ import annotations

import warnings

XLA_MARKERS = ("XLA", "xla", "jit_compile", "JIT", "unsupported operations", "must be a compile-time constant")


def is_xla_compile_error(error: BaseException) -> bool:
    """An error of XLA's compiler (an op it has no kernel for, a shape it cannot make static), not of training."""
    import tensorflow as tf

    if isinstance(error, tf.errors.ResourceExhaustedError):
        return False
    return isinstance(error, (tf.errors.OpError, ValueError, TypeError)) and any(m in str(error) for m in XLA_MARKERS)


def without_xla(model) -> None:
    """Switch a compiled Keras model to plain TensorFlow graphs: its cached step functions are rebuilt on next use."""
    model.jit_compile = False
    for attr in ("train_function", "test_function", "predict_function"):
        if hasattr(model, attr):
            setattr(model, attr, None)


def fit_falling_back(model, fit, name: str):
    """``fit()`` (a call of ``model.fit``); if XLA cannot compile the step, warn and call it again without XLA."""
    if not getattr(model, "jit_compile", False):
        return fit()
    try:
        return fit()
    except Exception as e:  # noqa: BLE001 - only XLA's compile errors are handled, anything else is re-raised
        if not is_xla_compile_error(e):
            raise
        lines = [ln.strip() for ln in str(e).splitlines() if any(m in ln for m in XLA_MARKERS)]
        reason = (lines or [type(e).__name__])[0][:200]
        warnings.warn(f"{name}: XLA cannot compile the training step ({reason}); training without XLA")
        without_xla(model)
        return fit()
