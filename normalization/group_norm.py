"""Group Normalization (Wu & He 2018) computed per channel first, then per group.

Numerically the paper's formula, as Keras' ``GroupNormalization`` with epsilon 1e-5 is (the tests check both against
a NumPy reference); it reduces over (H, W) on the 4-D tensor before grouping the (N, C) statistics, instead of
reshaping the activations to 5-D, and applies the result as one per-(sample, channel) scale and offset. On CPU that
made seed_cnn's training step 1.2x faster at batch 32 and 1.5x at batch 2 (``make bench``, section gn).
"""
from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="gnsweep")
class GroupNorm(keras.layers.Layer):
    """GN over NHWC inputs: ``groups`` contiguous channel groups, biased variance, per-channel gamma and beta."""

    def __init__(self, groups: int, epsilon: float = 1e-5, gamma_initializer="ones", beta_initializer="zeros",
                 gamma_regularizer=None, beta_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)
        self.epsilon = float(epsilon)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.gamma_regularizer = keras.regularizers.get(gamma_regularizer)
        self.beta_regularizer = keras.regularizers.get(beta_regularizer)

    def build(self, input_shape):
        channels = input_shape[-1]
        if len(input_shape) != 4 or channels is None or channels % self.groups:
            raise ValueError(f"groups {self.groups} does not divide the {channels} channels of input "
                             f"{tuple(input_shape)} (NHWC expected)")
        # autocast=False: under a mixed policy gamma and beta stay float32, as the statistics do (Keras' BN does the same)
        self.gamma = self.add_weight(shape=(channels,), name="gamma", initializer=self.gamma_initializer,
                                     regularizer=self.gamma_regularizer, autocast=False)
        self.beta = self.add_weight(shape=(channels,), name="beta", initializer=self.beta_initializer,
                                    regularizer=self.beta_regularizer, autocast=False)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        n, c, g = ops.shape(x)[0], x.shape[-1], self.groups
        per_channel = ops.mean(x, axis=(1, 2))  # (N, C)
        mean = ops.repeat(ops.mean(ops.reshape(per_channel, (n, g, c // g)), axis=-1), c // g, axis=-1)
        centered = x - mean[:, None, None, :]
        var = ops.mean(ops.reshape(ops.mean(ops.square(centered), axis=(1, 2)), (n, g, c // g)), axis=-1)
        scale = ops.repeat(ops.rsqrt(var + self.epsilon), c // g, axis=-1) * self.gamma  # (N, C)
        out = centered * scale[:, None, None, :] + self.beta
        return ops.cast(out, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "epsilon": self.epsilon,
                "gamma_initializer": keras.initializers.serialize(self.gamma_initializer),
                "beta_initializer": keras.initializers.serialize(self.beta_initializer),
                "gamma_regularizer": keras.regularizers.serialize(self.gamma_regularizer),
                "beta_regularizer": keras.regularizers.serialize(self.beta_regularizer)}
