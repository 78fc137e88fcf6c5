"""XLA: every model and norm trains one step compiled with ``jit_compile=True`` (as on GPUs), and a model that XLA
cannot compile trains without it, with a warning, instead of failing its trial."""
import numpy as np
import pytest

from trainer import TrainSettings, TrialConfig
from trainer.precision import dtype_policy
from trainer.train import compile_model
from trainer.xla import fit_falling_back


def one_xla_step(model_name, norm, size, precision="float32", batch=2):
    import keras

    from trainer.models import build_model

    groups = {"resnet8": 8, "resnet20": 8}.get(model_name, 32) if norm == "gn" else None
    trial = TrialConfig(model=model_name, norm=norm, batch_size=batch, groups=groups,
                        train=TrainSettings(epochs=1, precision=precision))
    keras.utils.set_random_seed(0)
    with dtype_policy(precision):
        model = build_model(model_name, norm=norm, num_classes=10, input_shape=(size, size, 3), groups=groups)
    compile_model(model, trial, steps_per_epoch=1)
    model.jit_compile = True  # as on a GPU, whatever the CPU default is for this model
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, size, size, 3)).astype("float32")
    y = rng.integers(0, 10, size=batch).astype("int32")
    before = [w.copy() for w in model.get_weights()]
    logs = model.fit(x, y, batch_size=batch, epochs=1, verbose=0).history
    assert model.jit_compile is True and np.isfinite(logs["loss"][-1])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # the step trained


@pytest.mark.slow  # XLA compiles take seconds each on a loaded 2-core machine
@pytest.mark.parametrize("norm", ["bn", "gn", "ln", "in", "none"])
def test_every_norm_compiles_with_xla(norm):
    one_xla_step("seed_cnn", norm, 16)  # the lightest model: what is compiled here is the norm


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_compiles_with_xla(precision):
    one_xla_step("seed_cnn", "gn", 16, precision)


@pytest.mark.slow
def test_a_resnet_compiles_with_xla():
    one_xla_step("resnet8", "gn", 16)


@pytest.mark.slow
@pytest.mark.parametrize("model_name,norm,size", [("resnet20", "in", 16), ("resnet18", "gn", 16),
                                                  ("resnet50", "gn", 32)])  # BN is compiled above, on seed_cnn
def test_every_model_compiles_with_xla(model_name, norm, size):
    one_xla_step(model_name, norm, size)


def py_layer_model():
    """A classifier with a NumPy callback inside: XLA has no kernel for PyFunc, plain TensorFlow runs it."""
    import keras
    import tensorflow as tf

    class NumpyDouble(keras.layers.Layer):
        def call(self, x):
            y = tf.numpy_function(lambda a: a * 2, [x], tf.float32)
            y.set_shape(x.shape)
            return y

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(NumpyDouble()(inputs)))
    model.compile(keras.optimizers.SGD(0.1), "mse", jit_compile=True)
    return model


def test_a_model_xla_cannot_compile_trains_without_it_and_says_so():
    model = py_layer_model()
    x, y = np.ones((8, 4), "float32"), np.zeros((8, 2), "float32")
    with pytest.warns(UserWarning, match=r"trial-x: XLA cannot compile the training step \(.*PyFunc.*\); "
                                         r"training without XLA"):
        logs = fit_falling_back(model, lambda: model.fit(x, y, batch_size=4, epochs=2, verbose=0), "trial-x")
    assert model.jit_compile is False and len(logs.history["loss"]) == 2
    assert logs.history["loss"][1] < logs.history["loss"][0]
    model.evaluate(x, y, verbose=0)  # the other step functions were rebuilt without XLA too


def test_other_errors_are_not_mistaken_for_xla():
    model = py_layer_model()

    def fail():
        raise ValueError("batch 4096 is larger than the 1437 training images")

    with pytest.raises(ValueError, match="larger than"):
        fit_falling_back(model, fail, "trial-x")
    assert model.jit_compile is True
