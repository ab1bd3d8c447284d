"""Data generators: each returns a `Dataset` of float32 column vectors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """Train and test points, each an (N, 1) float32 array; `k_true` is the slope to recover."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    k_true: float | None = None


@dataclass(frozen=True)
class LinearData:
    """y = k_true * x + N(0, noise_std^2), x ~ U[x_low, x_high): the tutorial's data."""

    reusable_across_jobs = True  # numpy's generator seeded from the config; no TF random state

    k_true: float = 2.0
    noise_std: float = 0.1
    n_train: int = 200
    n_test: int = 100
    x_low: float = -1.0
    x_high: float = 1.0
    seed: int = 0

    def generate(self) -> Dataset:
        """Draw the points; the same seed always gives the same arrays."""
        rng = np.random.default_rng(self.seed)
        x_train = self._draw_x(rng, self.n_train)
        x_test = self._draw_x(rng, self.n_test)
        y_train = self.k_true * x_train + self.noise_std * rng.standard_normal(x_train.shape)
        y_test = self.k_true * x_test + self.noise_std * rng.standard_normal(x_test.shape)
        return Dataset(
            x_train=x_train.astype(np.float32),
            y_train=y_train.astype(np.float32),
            x_test=x_test.astype(np.float32),
            y_test=y_test.astype(np.float32),
            k_true=float(self.k_true),
        )

    def _draw_x(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.x_low, self.x_high, size=(n, 1))
