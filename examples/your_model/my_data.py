"""A user's data for tbpipe: a class whose generate() returns a pipeline.data.Dataset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.data import Dataset


@dataclass
class ThreeFeatures:
    """y = x . (1, -2, 0.5) + N(0, noise^2) for x of three standard-normal features."""

    n_train: int = 300
    n_test: int = 100
    noise: float = 0.1
    seed: int = 0

    def generate(self) -> Dataset:
        rng = np.random.default_rng(self.seed)
        x = rng.normal(size=(self.n_train + self.n_test, 3)).astype(np.float32)
        y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
        y = (y + self.noise * rng.normal(size=y.shape)).astype(np.float32)
        cut = self.n_train
        return Dataset(x_train=x[:cut], y_train=y[:cut], x_test=x[cut:], y_test=y[cut:])
