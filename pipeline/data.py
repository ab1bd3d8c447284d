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


#: how the noise of runs that differ in noise_std relates (LinearData.noise_draw)
NOISE_DRAWS = ("shared", "independent")


@dataclass(frozen=True)
class LinearData:
    """y = k_true * x + N(0, noise_std^2), x ~ U[x_low, x_high): the tutorial's data.

    `noise_draw` says how runs that differ only in noise_std relate. "shared" (default):
    one standard-normal draw per seed, scaled by noise_std (common random numbers): a noise
    sweep compares the levels on the same noise pattern, so |k - k_true| is exactly
    proportional to noise_std. "independent": each noise level draws its own noise (the
    x values stay the same), so |k - k_true| scatters around its expected size, the
    slope's standard error, as it would in separate experiments.
    """

    reusable_across_jobs = True  # numpy's generator seeded from the config; no TF random state

    k_true: float = 2.0
    noise_std: float = 0.1
    n_train: int = 200
    n_test: int = 100
    x_low: float = -1.0
    x_high: float = 1.0
    seed: int = 0
    noise_draw: str = "shared"

    def __post_init__(self) -> None:
        if self.noise_draw not in NOISE_DRAWS:
            raise ValueError(
                f"data.noise_draw={self.noise_draw!r} is not known; use one of {NOISE_DRAWS}"
            )

    def generate(self) -> Dataset:
        """Draw the points; the same seed always gives the same arrays."""
        rng = np.random.default_rng(self.seed)
        x_train = self._draw_x(rng, self.n_train)
        x_test = self._draw_x(rng, self.n_test)
        noise = rng if self.noise_draw == "shared" else self._own_noise_generator()
        y_train = self.k_true * x_train + self.noise_std * noise.standard_normal(x_train.shape)
        y_test = self.k_true * x_test + self.noise_std * noise.standard_normal(x_test.shape)
        return Dataset(
            x_train=x_train.astype(np.float32),
            y_train=y_train.astype(np.float32),
            x_test=x_test.astype(np.float32),
            y_test=y_test.astype(np.float32),
            k_true=float(self.k_true),
        )

    def _own_noise_generator(self) -> np.random.Generator:
        """A generator seeded by the seed and the noise level's exact bits: each noise
        level draws its own noise, and the same level always the same draw."""
        level = int(np.float64(self.noise_std).view(np.uint64))
        return np.random.default_rng([self.seed, level])

    def _draw_x(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.x_low, self.x_high, size=(n, 1))
