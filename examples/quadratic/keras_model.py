"""A user's Keras model for tbpipe: Keras 3 layers meet the same contract as a tf.Module.

Kept apart from quadratic.py so that runs which do not use it never import Keras.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class KerasMLP(keras.Model):
    """Dense(hidden, tanh) -> Dense(1). Its variables are histogrammed by their Keras paths,
    `keras_mlp/hidden/kernel`, ... (a Keras 3 variable's name alone is just `kernel`)."""

    def __init__(self, hidden: int = 16, seed: int = 0, name: str = "keras_mlp"):
        super().__init__(name=name)
        glorot = keras.initializers.GlorotUniform  # seeded: weights depend on the seed alone
        self.hidden = keras.layers.Dense(
            hidden, activation="tanh", kernel_initializer=glorot(seed=seed), name="hidden"
        )
        self.readout = keras.layers.Dense(
            1, kernel_initializer=glorot(seed=seed + 1), name="readout"
        )

    def call(self, x: tf.Tensor) -> tf.Tensor:
        """(N, 1) in, (N, 1) out; Keras builds the weights on the first call."""
        return self.readout(self.hidden(x))

    def slope(self, x: tf.Tensor) -> tf.Tensor:
        """The least-squares slope through the origin of the model's predictions."""
        y = self(x)
        return tf.reduce_sum(x * y) / tf.reduce_sum(x * x)

    def activations(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        """The hidden layer's N x D output."""
        return {"hidden": self.hidden(x)}
