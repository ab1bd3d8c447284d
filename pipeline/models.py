"""tbpipe's own models: the tutorial's (`tf.Module`s with ops under nested name scopes for the
GRAPHS view) and a Keras MLP whose layers are set in YAML.

A model is called on the features (N, ...) and returns what the task's loss takes. The
tutorial's models map (N, 1) to (N, 1) and expose, besides their trainable variables
(histogrammed by name):
- `slope(x)`: the estimated k, the slope the model implies on the points x;
- `activations(x)`: named hidden tensors worth a histogram (e.g. the N x D hidden output).
A user's model needs neither (docs/EXTENDING.md). Models know nothing of TensorBoard.
"""

from __future__ import annotations

import math

import tensorflow as tf


def least_squares_slope(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Slope of the best line through the origin: sum(x*y) / sum(x^2)."""
    with tf.name_scope("slope"):
        return tf.reduce_sum(x * y) / tf.reduce_sum(x * x)


class LinearModel(tf.Module):
    """y = k * x with a single weight k, the tutorial's model."""

    reusable_across_jobs = True  # no random ops in a step: one trace fits every job

    def __init__(self, k_init: float = 0.0, name: str = "linear"):
        super().__init__(name=name)
        with self.name_scope:
            self.k = tf.Variable(float(k_init), dtype=tf.float32, name="k")

    @tf.Module.with_name_scope
    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        with tf.name_scope("prediction"):
            return self.k * x

    def slope(self, x: tf.Tensor) -> tf.Tensor:
        """The weight itself is the estimate of k."""
        return tf.identity(self.k)

    def activations(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        """The predictions: a linear model has no hidden layer."""
        return {"prediction": self(x)}


_ACTIVATIONS = {"relu": tf.nn.relu, "tanh": tf.math.tanh}


class MLPModel(tf.Module):
    """One hidden layer (weights N(0, init_std^2), as in the tutorial) and a linear readout.

    The readout is scaled by 1/sqrt(hidden) so that a wide layer does not blow up the
    output and diverge at the default learning rate.
    """

    reusable_across_jobs = True  # no random ops in a step: one trace fits every job

    def __init__(
        self,
        hidden: int = 1000,
        activation: str = "relu",
        init_std: float = 1.0,
        seed: int = 0,
        name: str = "mlp",
    ):
        super().__init__(name=name)
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"model.activation={activation!r} is not known; use one of {sorted(_ACTIVATIONS)}"
            )
        self.activation = _ACTIVATIONS[activation]
        self.readout_scale = 1.0 / math.sqrt(hidden)
        # Stateless draws: the weights depend on the seed alone, not on op order.
        with self.name_scope:
            with tf.name_scope("hidden"):
                self.w_hidden = tf.Variable(
                    init_std * tf.random.stateless_normal([1, hidden], seed=[seed, 1]),
                    name="weights",
                )
                self.b_hidden = tf.Variable(tf.zeros([hidden]), name="biases")
            with tf.name_scope("readout"):
                self.w_out = tf.Variable(
                    tf.random.stateless_normal([hidden, 1], seed=[seed, 2]), name="weights"
                )
                self.b_out = tf.Variable(tf.zeros([1]), name="biases")

    @tf.Module.with_name_scope
    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        with tf.name_scope("prediction"):
            return self._readout(self._hidden(x))

    def _hidden(self, x: tf.Tensor) -> tf.Tensor:
        with tf.name_scope("hidden"):
            return self.activation(tf.matmul(x, self.w_hidden) + self.b_hidden)

    def _readout(self, h: tf.Tensor) -> tf.Tensor:
        with tf.name_scope("readout"):
            return self.readout_scale * tf.matmul(h, self.w_out) + self.b_out

    def slope(self, x: tf.Tensor) -> tf.Tensor:
        """The least-squares slope through the origin of the model's own predictions."""
        return least_squares_slope(x, self(x))

    def activations(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        """The hidden layer's N x D output (after the nonlinearity)."""
        with self.name_scope:
            return {"hidden": self._hidden(x)}


def keras_mlp(
    units: list[int] = (64,),
    activation: str = "relu",
    outputs: int = 1,
    seed: int = 0,
    name: str = "keras_mlp",
):
    """A Keras Sequential model: Flatten, Dense(u, activation) for each u in `units`, then
    Dense(outputs) with no activation (logits for a label loss, values for regression).

    Weights are Glorot-uniform, a pure function of `seed`; layers are named `hidden_1`,
    `hidden_2`, ..., `readout`, so their variables are histogrammed as
    `parameters/<name>/hidden_1/kernel`. Keras is imported only when this is called.
    """
    import keras

    def glorot(offset: int):
        return keras.initializers.GlorotUniform(seed=int(seed) + offset)

    layers = [keras.layers.Flatten(name="flatten")]
    for i, width in enumerate(units, start=1):
        layers.append(
            keras.layers.Dense(
                int(width), activation=activation, kernel_initializer=glorot(i), name=f"hidden_{i}"
            )
        )
    layers.append(keras.layers.Dense(int(outputs), kernel_initializer=glorot(0), name="readout"))
    return keras.Sequential(layers, name=name)


def layer_outputs(model, names: list[str], key: str):
    """A Keras model from `model`'s input to the outputs of its layers `names`, for their
    histograms; a ValueError naming `key` when the model cannot give them."""
    layers = {layer.name: layer for layer in getattr(model, "layers", None) or []}
    missing = [name for name in names if name not in layers]
    if missing:
        known = ", ".join(layers) or "none: not a Keras model"
        raise ValueError(
            f"bad value {key}={missing[0]}: the model has no such layer; its layers: {known}"
        )
    import keras

    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ValueError(
            f"bad value {key}={names}: layer outputs need a Sequential or functional Keras "
            "model; give a subclassed model an activations(x) method instead"
        )
    return keras.Model(inputs, [layers[name].output for name in names])
