"""A user's Keras model for tbpipe: a function that returns a functional Keras model.

tbpipe calls it with the keys of conf/model/functional.yaml and trains what it returns.
"""

from __future__ import annotations

import keras


def functional(units: int = 16, features: int = 3, seed: int = 0) -> keras.Model:
    """features in -> Dense(units, tanh) -> Dense(1): one number out."""
    inputs = keras.Input(shape=(features,), name="features")
    init = keras.initializers.GlorotUniform(seed=seed)  # weights: a function of the seed
    hidden = keras.layers.Dense(units, "tanh", kernel_initializer=init, name="hidden")
    out = keras.layers.Dense(1, kernel_initializer=init, name="out")
    return keras.Model(inputs, out(hidden(inputs)), name="mine")
