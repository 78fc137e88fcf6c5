"""Numeric reference tests: each layer against the paper's formula written here in NumPy."""
import numpy as np
import pytest

from normalization import make_norm, resolve_groups

EPS = 1e-5


def group_norm_reference(x, groups, gamma, beta, eps=EPS):
    """Wu & He 2018, Fig. 3, in NHWC: contiguous channel groups, moments over (H, W, C/G), biased variance."""
    n, h, w, c = x.shape
    xg = x.reshape(n, h, w, groups, c // groups).astype(np.float64)
    mean = xg.mean(axis=(1, 2, 4), keepdims=True)
    var = xg.var(axis=(1, 2, 4), keepdims=True)
    y = ((xg - mean) / np.sqrt(var + eps)).reshape(n, h, w, c)
    return y * gamma + beta


def _run(layer, x, training=False):
    layer.build(x.shape)
    return np.asarray(layer(x, training=training))


@pytest.fixture
def x():
    rng = np.random.default_rng(0)
    # offsets and scales differ per channel so a wrong grouping cannot pass by accident
    return (rng.normal(size=(3, 5, 4, 16)) * np.linspace(0.5, 4, 16) + np.linspace(-3, 3, 16)).astype("float32")


def _with_affine(layer, x, seed=1):
    rng = np.random.default_rng(seed)
    c = x.shape[-1]
    gamma, beta = rng.normal(size=c).astype("float32"), rng.normal(size=c).astype("float32")
    layer.build(x.shape)
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    return gamma, beta


@pytest.mark.parametrize("kind,kwargs,groups", [
    ("gn", {"groups": 1}, 1), ("gn", {"groups": 2}, 2), ("gn", {"groups": 4}, 4), ("gn", {"groups": 8}, 8),
    ("gn", {"groups": 16}, 16), ("gn", {"channels_per_group": 4}, 4), ("gn", {"channels_per_group": 1}, 16),
    ("ln", {}, 1), ("in", {}, 16),
])
def test_grouped_norms_match_reference(x, kind, kwargs, groups):
    layer = make_norm(kind, 16, **kwargs)
    gamma, beta = _with_affine(layer, x)
    got = np.asarray(layer(x, training=True))
    want = group_norm_reference(x, groups, gamma, beta)
    assert np.max(np.abs(got - want)) < 1e-4
    # no running statistics: inference computes the same thing
    assert np.allclose(np.asarray(layer(x, training=False)), got, atol=1e-6)


def test_gn_groups_are_contiguous_channels():
    """Groups of [0..3], [4..7], ...: a constant per group normalizes to 0 inside the group only."""
    x = np.zeros((1, 2, 2, 8), "float32")
    x[..., :4] = np.arange(4)  # varies within group 0
    x[..., 4:] = 7.0  # group 1 constant
    y = _run(make_norm("gn", 8, groups=2), x)
    assert np.allclose(y[..., 4:], 0.0, atol=1e-3)
    assert not np.allclose(y[..., :4], 0.0, atol=1e-2)


def test_bn_inference_uses_moving_statistics(x):
    layer = make_norm("bn", 16)
    gamma, beta = _with_affine(layer, x)
    rng = np.random.default_rng(2)
    mm, mv = rng.normal(size=16).astype("float32"), rng.uniform(0.5, 2, 16).astype("float32")
    layer.moving_mean.assign(mm)
    layer.moving_variance.assign(mv)
    got = np.asarray(layer(x, training=False))
    want = (x - mm) / np.sqrt(mv + EPS) * gamma + beta
    assert np.max(np.abs(got - want)) < 1e-4


def test_bn_training_normalizes_over_the_batch(x):
    layer = make_norm("bn", 16)
    gamma, beta = _with_affine(layer, x)
    got = np.asarray(layer(x, training=True))
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    assert np.max(np.abs(got - ((x - mean) / np.sqrt(var + EPS) * gamma + beta))) < 1e-4


def test_epsilon_is_the_papers():
    for kind in ("bn", "gn", "ln", "in"):
        assert make_norm(kind, 16, groups=4 if kind == "gn" else None).epsilon == pytest.approx(1e-5)


def test_zero_init_and_identity():
    layer = make_norm("gn", 16, groups=4, zero_init=True)
    layer.build((None, 4, 4, 16))
    assert np.all(np.asarray(layer.gamma) == 0)
    x = np.ones((1, 2, 2, 3), "float32")
    assert np.array_equal(np.asarray(make_norm("none", 3)(x)), x)


def test_weight_decay_is_half_l2_on_gamma_and_beta():
    layer = make_norm("gn", 8, groups=2, weight_decay=1e-4)
    layer.build((None, 2, 2, 8))
    layer.gamma.assign(np.full(8, 2.0, "float32"))
    layer.beta.assign(np.full(8, 1.0, "float32"))
    layer(np.ones((1, 2, 2, 8), "float32"))
    assert float(sum(layer.losses)) == pytest.approx(1e-4 / 2 * (8 * 4 + 8 * 1), rel=1e-5)


@pytest.mark.parametrize("kwargs,numbers", [
    ({"groups": 32}, ("32", "16")), ({"groups": 5}, ("5", "16")), ({"channels_per_group": 3}, ("3", "16")),
    ({"groups": 0}, ("0", "16")),
])
def test_impossible_grouping_names_the_numbers(kwargs, numbers):
    with pytest.raises(ValueError) as e:
        make_norm("gn", 16, **kwargs)
    for n in numbers:
        assert n in str(e.value)


def test_groups_and_channels_per_group_are_exclusive():
    with pytest.raises(ValueError, match="not both"):
        resolve_groups("gn", 16, groups=4, channels_per_group=4)
    with pytest.raises(ValueError, match="unknown norm"):
        resolve_groups("wn", 16)


@pytest.mark.parametrize("groups", [1, 4, 16])
def test_group_norm_matches_keras_layer_values_and_gradients(x, groups):
    """Our GroupNorm against Keras' GroupNormalization (epsilon 1e-5): outputs and gradients of all inputs."""
    import keras
    import tensorflow as tf

    ours = make_norm("gn", 16, groups=groups)
    theirs = keras.layers.GroupNormalization(groups=groups, epsilon=EPS)
    gamma, beta = _with_affine(ours, x)
    theirs.build(x.shape)
    theirs.gamma.assign(gamma)
    theirs.beta.assign(beta)
    xt = tf.constant(x * 10 + 50)  # a large mean must not cost precision
    upstream = tf.constant(np.random.default_rng(3).normal(size=x.shape).astype("float32"))
    grads = []
    for layer in (ours, theirs):
        with tf.GradientTape() as tape:
            tape.watch(xt)
            out = layer(xt)
            loss = tf.reduce_sum(out * upstream)
        grads.append((out.numpy(), *[g.numpy() for g in tape.gradient(loss, [xt, layer.gamma.value,
                                                                              layer.beta.value])]))
    for a, b in zip(*grads):
        assert np.max(np.abs(a - b)) < 2e-4 * max(1.0, np.max(np.abs(b)))


def test_group_norm_survives_a_checkpoint(tmp_path):
    import keras

    inputs = keras.Input((4, 4, 8))
    model = keras.Model(inputs, make_norm("gn", 8, groups=2, zero_init=True, weight_decay=1e-4)(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    layer = loaded.layers[-1]
    assert layer.groups == 2 and layer.epsilon == EPS and not np.any(np.asarray(layer.gamma))
    assert len(loaded.losses) == 2
