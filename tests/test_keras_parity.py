"""tbpipe's compiled loop computes what Keras computes: the digits model trained by tbpipe's
loop and by Keras's `train_on_batch`, from the same initial weights on the same mini-batches,
ends with the same weights (benchmarks/keras_fit.py does the same for whole runs)."""

from __future__ import annotations

from importlib.util import find_spec

import numpy as np
import pytest

from pipeline.data import DigitsData
from pipeline.models import keras_mlp
from pipeline.optimizers import SGD, Adam
from pipeline.sinks.base import Experiment
from pipeline.tasks import Task
from pipeline.tensorflow_quiet import import_tensorflow
from pipeline.train import CompiledLoop, minibatches

pytestmark = [
    # trains with Keras beside tbpipe (a second compiled training each test): in
    # `make test`, not `make test-fast`
    pytest.mark.slow,
    # looked up, not imported: every pytest-xdist worker collects this file
    pytest.mark.skipif(find_spec("sklearn") is None, reason="needs scikit-learn"),
]
STEPS, BATCH = 30, 32


def trained_by_tbpipe(data, optimizer, tmp_path) -> list[np.ndarray]:
    """The digits model after STEPS of tbpipe's loop (no sinks) on mini-batches of 32."""
    tf = import_tensorflow()
    splits = ("x_train", "y_train", "x_test", "y_test")
    tensors = {name: tf.constant(getattr(data, name)) for name in splits}
    model = keras_mlp(units=[64], outputs=10, seed=0)
    model(tensors["x_train"])  # built, as tbpipe's model check builds it
    optimizer.build(model.trainable_variables)
    task = Task(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    loop = CompiledLoop(model, optimizer, [], task)
    experiment = Experiment(model, data, tensors, {}, lambda: None, "", "", tmp_path, task=task)
    batches = minibatches(tensors["x_train"], tensors["y_train"], BATCH, seed=0)
    reached, finite, _ = loop(experiment, 0, STEPS, batches, tuple(next(batches)))
    assert (reached, finite) == (STEPS, True)
    return model.get_weights()


def trained_by_keras(data, optimizer) -> list[np.ndarray]:
    """The same model, batches and steps through Keras's own training step."""
    import keras

    tf = import_tensorflow()
    model = keras_mlp(units=[64], outputs=10, seed=0)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=loss)
    batches = minibatches(tf.constant(data.x_train), tf.constant(data.y_train), BATCH, seed=0)
    for _ in range(STEPS):
        x, y = next(batches)
        model.train_on_batch(x, y)
    return model.get_weights()


def largest_difference(ours: list[np.ndarray], theirs: list[np.ndarray]) -> float:
    assert [w.shape for w in ours] == [w.shape for w in theirs]
    return max(float(np.max(np.abs(a - b))) for a, b in zip(ours, theirs, strict=True))


def test_gradient_descent_steps_give_keras_weights_to_float32_rounding(tmp_path):
    import keras

    data = DigitsData(seed=0).generate()
    ours = trained_by_tbpipe(data, SGD(learning_rate=0.1), tmp_path)
    theirs = trained_by_keras(data, keras.optimizers.SGD(learning_rate=0.1))
    start = keras_mlp(units=[64], outputs=10, seed=0)
    start.build((None, 64))
    moved = largest_difference(ours, start.get_weights())
    assert moved > 0.05  # the steps changed the weights ...
    assert largest_difference(ours, theirs) < 1e-6  # ... as Keras changes them


def test_adam_steps_give_keras_adam_weights_once_both_round_one_minus_beta_alike(tmp_path):
    """The same update (alpha = lr sqrt(1 - b2^t) / (1 - b1^t), epsilon added to sqrt(v)),
    but TF's kernel takes 1 - beta in float32 (1 - 0.999f = 0.00099999) where Keras rounds
    the Python 1 - 0.999 to float32 (0.001): given the betas as their float32 values, Keras
    computes what the kernel computes."""
    import keras

    data = DigitsData(seed=0).generate()
    ours = trained_by_tbpipe(data, Adam(learning_rate=0.01, epsilon=1e-7), tmp_path)
    b1, b2 = (float(np.float32(beta)) for beta in (0.9, 0.999))
    alike = keras.optimizers.Adam(learning_rate=0.01, beta_1=b1, beta_2=b2, epsilon=1e-7)
    assert largest_difference(ours, trained_by_keras(data, alike)) < 1e-6
    plain = keras.optimizers.Adam(learning_rate=0.01, epsilon=1e-7)
    assert 1e-6 < largest_difference(ours, trained_by_keras(data, plain)) < 1e-4
