"""Under mixed precision the norms take and give the low-precision compute dtype but compute their statistics, gamma
and beta in float32: checked against the float32 NumPy reference within what rounding the output allows."""
import numpy as np
import pytest

from normalization import make_norm
from trainer.precision import dtype_policy

EPS = 1e-5
# one unit in the last place, relative, of each compute dtype (8 and 11 significant bits)
ULP = {"mixed_bfloat16": 2.0**-8, "mixed_float16": 2.0**-11}
COMPUTE = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}


def reference(x, axes, gamma, beta):
    x = x.astype(np.float64)
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + EPS) * gamma + beta


def rounded(x, precision):
    """``x`` as the previous layer would hand it over: rounded to the compute dtype."""
    import tensorflow as tf

    return tf.cast(tf.cast(x, COMPUTE[precision]), "float32").numpy()


@pytest.fixture
def x():
    rng = np.random.default_rng(0)
    # values up to ~300: their squares overflow float16 (max 65504), so float16 statistics would give inf
    return (rng.normal(size=(4, 6, 5, 16)) * np.linspace(1, 60, 16) + np.linspace(-200, 200, 16)).astype("float32")


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("kind", ["gn", "ln", "in", "bn"])
def test_norm_statistics_are_float32_under_mixed_precision(kind, precision, x):
    import keras

    with dtype_policy(precision):
        layer = make_norm(kind, 16, groups=4 if kind == "gn" else None)
    layer.build(x.shape)
    rng = np.random.default_rng(1)
    gamma, beta = rng.normal(size=16).astype("float32"), rng.normal(size=16).astype("float32")
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    assert layer.compute_dtype == COMPUTE[precision] and layer.gamma.dtype == "float32"
    got = layer(keras.ops.cast(x, COMPUTE[precision]), training=True)
    assert keras.backend.standardize_dtype(got.dtype) == COMPUTE[precision]
    got = np.asarray(keras.ops.cast(got, "float32"))
    n, h, w, c = x.shape
    xin = rounded(x, precision)
    if kind == "bn":
        want = reference(xin, (0, 1, 2), gamma, beta)
    else:
        groups = {"gn": 4, "ln": 1, "in": 16}[kind]
        xg = xin.reshape(n, h, w, groups, c // groups)
        want = reference(xg, (1, 2, 4), gamma.reshape(groups, -1), beta.reshape(groups, -1)).reshape(x.shape)
    assert np.all(np.isfinite(got))
    # the output is rounded once to the compute dtype: within 2 ulps of the float32 result, whatever the input's scale
    assert np.all(np.abs(got - want) <= 2 * ULP[precision] * np.maximum(np.abs(want), 1)), \
        float(np.max(np.abs(got - want)))
