"""A train/test split by fraction and seed, and standardisation by the train split alone."""

from __future__ import annotations

import math

import numpy as np

#: fewest rows a split leaves to train on (a mean and a spread need two)
MIN_TRAIN_ROWS = 2
#: fewest rows a data set may have: MIN_TRAIN_ROWS and one to test
MIN_ROWS = MIN_TRAIN_ROWS + 1


def count_test_rows(n_rows: int, test_fraction: float) -> int:
    """How many of `n_rows` go to the test split: the fraction rounded up, as
    scikit-learn's train_test_split does (0.2 of 442 rows: 89)."""
    return math.ceil(n_rows * test_fraction - 1e-9)  # 0.1 * 30 is 3.0000000000000004


def split_problem(n_rows: int, test_fraction: float) -> str | None:
    """Why `n_rows` cannot be split at `test_fraction`, in words; None when they can."""
    n_test = count_test_rows(n_rows, test_fraction)
    if n_test >= 1 and n_rows - n_test >= MIN_TRAIN_ROWS:
        return None
    if n_rows < MIN_ROWS:
        return f"{n_rows} rows are too few: a split needs {MIN_TRAIN_ROWS} to train on, 1 to test"
    most = (n_rows - MIN_TRAIN_ROWS) / n_rows
    return (
        f"leaves {n_rows - n_test} of the {n_rows} rows to train on; a split needs "
        f"{MIN_TRAIN_ROWS}: use a fraction above 0 and at most {math.floor(most * 1000) / 1000:g}"
    )


def split_rows(n_rows: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows): a pure function of the seed. Rows are drawn by a seeded
    permutation; each split keeps the rows in their order in the file."""
    problem = split_problem(n_rows, test_fraction)
    if problem is not None:
        raise ValueError(f"bad value data.test_fraction={test_fraction}: {problem}")
    order = np.random.default_rng(seed).permutation(n_rows)
    n_test = count_test_rows(n_rows, test_fraction)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def standardized(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both splits shifted and scaled by the train split's mean and standard deviation
    (per column or pixel), so nothing of the test split leaks into training. A constant
    column is only shifted."""
    mean = train.mean(axis=0, dtype=np.float64)
    std = train.std(axis=0, dtype=np.float64)
    std = np.where(std > 0, std, 1.0)
    return (train - mean) / std, (test - mean) / std
