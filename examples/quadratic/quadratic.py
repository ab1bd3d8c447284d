"""A user's own pieces for tbpipe: quadratic data, a two-parameter model and a sink.

This file lives outside tbpipe (see docs/EXTENDING.md). tbpipe finds it because its folder
is on PYTHONPATH (or is the current directory) and the configs in ./conf name these classes
in `_target_`. Run it with:

    cd examples/quadratic
    tbpipe --config-dir conf +experiment=quadratic_two_param
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from pipeline.data import Dataset
from pipeline.sinks.base import Experiment, Sink


@dataclass(frozen=True)
class QuadraticData:
    """y = a * x^2 + k_true * x + N(0, noise_std^2), x ~ U[x_low, x_high).

    `k_true` is the linear coefficient: the scalar sink's `k_error` is |k - k_true|.
    """

    a: float = 1.0
    k_true: float = 2.0
    noise_std: float = 0.1
    n_train: int = 200
    n_test: int = 100
    x_low: float = -1.0
    x_high: float = 1.0
    seed: int = 0

    def generate(self) -> Dataset:
        """The contract: a `pipeline.data.Dataset` of (N, 1) float32 arrays."""
        rng = np.random.default_rng(self.seed)
        x_train = rng.uniform(self.x_low, self.x_high, size=(self.n_train, 1))
        x_test = rng.uniform(self.x_low, self.x_high, size=(self.n_test, 1))
        return Dataset(
            x_train=x_train.astype(np.float32),
            y_train=self._y(x_train, rng).astype(np.float32),
            x_test=x_test.astype(np.float32),
            y_test=self._y(x_test, rng).astype(np.float32),
            k_true=float(self.k_true),
        )

    def _y(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.a * x**2 + self.k_true * x + self.noise_std * rng.standard_normal(x.shape)


class TwoParameterModel(tf.Module):
    """y = a * x^2 + k * x: two scalar weights, histogrammed as `quadratic/a` and `quadratic/k`."""

    def __init__(self, a_init: float = 0.0, k_init: float = 0.0, name: str = "quadratic"):
        super().__init__(name=name)
        with self.name_scope:
            self.a = tf.Variable(float(a_init), dtype=tf.float32, name="a")
            self.k = tf.Variable(float(k_init), dtype=tf.float32, name="k")

    @tf.Module.with_name_scope
    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        """(N, 1) in, (N, 1) out."""
        with tf.name_scope("prediction"):
            return self.a * tf.square(x) + self.k * x

    def slope(self, x: tf.Tensor) -> tf.Tensor:
        """The estimate of k: the linear coefficient itself (a scalar tensor)."""
        return tf.identity(self.k)

    def activations(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        """Named tensors worth a histogram: the curvature term a * x^2."""
        with self.name_scope:
            return {"curvature_term": self.a * tf.square(x)}


class CurvatureSink(Sink):
    """SCALARS: `curvature/a`, the a of the best parabola through any model's predictions.

    Works for every model (the MLP too): fits a * x^2 + k * x + c to the model's output on
    the training x by least squares, and writes |a - a_true| as `curvature/a_error`.
    """

    def __init__(self, a_true: float | None = None, every: int = 10, writer: str = "train"):
        super().__init__(writer=writer, every=every)
        self.a_true = a_true

    def record(self, experiment: Experiment, step: Any, stats: Mapping[str, Any]) -> None:
        x = experiment.tensors["x_train"]
        features = tf.concat([tf.square(x), x, tf.ones_like(x)], axis=1)
        a = tf.linalg.lstsq(features, experiment.model(x))[0, 0]
        with self.writer_of(experiment).as_default(step=step):
            tf.summary.scalar("curvature/a", a)
            if self.a_true is not None:
                tf.summary.scalar("curvature/a_error", tf.abs(a - self.a_true))
