"""Data generators: each returns a `Dataset` of arrays, or `Streams` of tf.data pipelines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """Train and test points, arrays of shape (N, ...); `k_true` is the slope to recover
    (the tutorial's line), or None.

    `streams` is set by tbpipe when the data piece returned `Streams`: the arrays are then
    a bounded sample of each split (what the pictures and the model's checks see), and
    training and the test metrics read the streams.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    k_true: float | None = None
    streams: Streams | None = None


def data_extent(data: Dataset) -> tuple[float, float]:
    """The smallest and largest x of the train and test points: where the fit pictures
    draw their lines (here, not beside the plots: a process that only asks for pictures
    to be drawn need not load matplotlib)."""
    lo = float(min(data.x_train.min(), data.x_test.min()))
    hi = float(max(data.x_train.max(), data.x_test.max()))
    return lo, hi


@dataclass(frozen=True)
class Streams:
    """Train and test examples as tf.data pipelines, for data that does not fit in memory:
    each a `tf.data.Dataset` of (features, target) pairs, one example each (not batched).

    What a data piece's `generate()` may return instead of a `Dataset`. The run batches
    `train` by `trainer.batch_size` (whole batches: an epoch's last partial batch is left
    out) and repeats it epoch after epoch; shuffling belongs to the piece (seeded, so a
    run can be repeated; its state is saved in checkpoints with the iterator's position).
    The test metrics go over every example of `test`, read again each time they are
    recorded; the pictures use a bounded sample of each split.
    """

    train: Any  # tf.data.Dataset of (features, target)
    test: Any  # tf.data.Dataset of (features, target)
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


# -- real data: your file, and two small data sets scikit-learn ships -------------------
#: the one line a run of a bundled data set gives without scikit-learn
NEEDS_SCIKIT_LEARN = (
    "data={option} needs scikit-learn, which ships the data set: pip install 'tbpipe[datasets]'"
)
#: what DigitsData.shape may be
DIGIT_SHAPES = ("flat", "image")


@dataclass(frozen=True)
class FileData:
    """Your own data from a CSV or NPZ file, split into train and test rows by `seed`.

    CSV: a header row names the columns; `features` (null: every column but the target)
    and `target` name columns. NPZ (`numpy.savez`): they name arrays with one row per
    example; one feature array keeps its shape, several become columns side by side.
    `labels=True`: the target holds class labels (int32 (N,), for classification);
    otherwise it is what to predict (float32 (N, 1), or (N, T) from an NPZ array).
    `standardize` scales each feature to mean 0 and standard deviation 1 with the train
    split's statistics alone; `standardize_target` does the same to a regression target
    (the loss is then in the target's standard deviations). A relative `path` is read from
    the directory tbpipe was started in. The preflight reads the file through the same
    code (`pipeline.check.datafiles`), so a bad file is one line before TensorFlow loads.
    """

    reusable_across_jobs = True  # a pure function of the file and the seed; no TF random state

    path: str
    target: str
    features: Sequence[str] | None = None
    labels: bool = False
    test_fraction: float = 0.2
    seed: int = 0
    standardize: bool = True
    standardize_target: bool = False
    delimiter: str = ","

    def generate(self) -> Dataset:
        """Read the file, split its rows, scale; the same file and seed give the same arrays."""
        from pipeline.datasets.files import class_labels, read_table

        table = read_table(self.path, self.features, self.target, self.delimiter)
        y = class_labels(table.target, self.target) if self.labels else table.target
        return split_dataset(
            table.features, y, self.test_fraction, self.seed, self.standardize,
            self.standardize_target, labels=self.labels,
        )  # fmt: skip


@dataclass(frozen=True)
class DiabetesData:
    """scikit-learn's diabetes data, for regression: 442 patients, 10 measurements (age,
    sex, body mass index, blood pressure, six blood serum values) and, as the target, a
    measure of how the disease progressed a year later (25 to 346).

    The measurements are read unscaled (`load_diabetes(scaled=False)`) and standardised
    by the train split when `standardize` is true. Plain SGD on targets of a few hundred
    needs a tiny learning rate; `standardize_target` makes them mean 0, standard deviation
    1 (the loss and its errors are then in standard deviations; R^2 is unchanged).
    """

    reusable_across_jobs = True  # bundled data split by a numpy generator; no TF random state
    rows = 442  # the preflight checks the split and the batch size against these rows

    test_fraction: float = 0.2
    seed: int = 0
    standardize: bool = True
    standardize_target: bool = True

    def generate(self) -> Dataset:
        """Load the bundled data (no network), split by `seed` and scale."""
        found = bundled_tables("diabetes", "diabetes_data_raw.csv.gz", "diabetes_target.csv.gz")
        if found is not None:
            data, target = found
        else:
            bunch = scikit_learn_datasets("diabetes").load_diabetes(scaled=False)
            data, target = bunch.data, bunch.target
        return split_dataset(
            data, target, self.test_fraction, self.seed, self.standardize,
            self.standardize_target,
        )  # fmt: skip


@dataclass(frozen=True)
class DigitsData:
    """scikit-learn's 8x8 handwritten digits, for classification: 1,797 images, labels 0-9.

    Pixels are scaled from 0..16 to [0, 1]. `shape`: "flat" gives (N, 64) features for a
    dense model; "image" gives (N, 8, 8, 1) for a convolutional one.
    """

    reusable_across_jobs = True  # bundled data split by a numpy generator; no TF random state
    rows = 1797  # the preflight checks the split and the batch size against these rows

    test_fraction: float = 0.2
    seed: int = 0
    shape: str = "flat"

    def __post_init__(self) -> None:
        if self.shape not in DIGIT_SHAPES:
            raise ValueError(f"data.shape={self.shape!r} is not known; use one of {DIGIT_SHAPES}")

    def generate(self) -> Dataset:
        """Load the bundled images (no network), scale to [0, 1] and split by `seed`."""
        found = bundled_tables("digits", "digits.csv.gz")
        if found is not None:
            (table,) = found  # 64 pixel columns, then the label
            data, target = table[:, :-1], table[:, -1]
        else:
            bunch = scikit_learn_datasets("digits").load_digits()
            data, target = bunch.data, bunch.target
        pixels = data / 16.0
        if self.shape == "image":
            pixels = pixels.reshape(-1, 8, 8, 1)
        labels = target.astype(np.int32)
        return split_dataset(pixels, labels, self.test_fraction, self.seed, False, False, True)


@dataclass(frozen=True)
class ShardedFiles:
    """Your data as many CSV files (shards), read lazily through tf.data: for data that does
    not fit in memory. `train_files` and `test_files` are glob patterns (`data/train-*.csv`);
    each file has a header row naming the columns, then one row of numbers per example.

    The files are read in name order, one after another, through a shuffle buffer of
    `shuffle_buffer` examples seeded by `seed` (a new order each epoch, the same ones for
    the same seed). Features are used as they are (no standardisation: that would need a
    pass over all the data first). The preflight reads each pattern's first file header
    (`pipeline.check.datafiles`): a pattern that matches nothing, a column that does not
    exist, is one line before TensorFlow loads.
    """

    reusable_across_jobs = True  # the files and the seed alone fix what is read

    train_files: str
    test_files: str
    target: str
    features: Sequence[str] | None = None
    labels: bool = False
    seed: int = 0
    shuffle_buffer: int = 1000
    delimiter: str = ","

    def generate(self) -> Streams:
        """The two splits as tf.data pipelines over the files (nothing is read yet)."""
        from pipeline.datasets.shards import shard_streams

        return shard_streams(self)


def bundled_tables(option: str, *names: str) -> list[np.ndarray] | None:
    """The tables of a data set that ships inside scikit-learn, read with numpy as
    scikit-learn's own loader reads them, without importing scikit-learn (a large part of a
    run's start); None when scikit-learn keeps them elsewhere (its loader is used then)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(NEEDS_SCIKIT_LEARN.format(option=option))
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    paths = [folder / name for name in names]
    if not all(path.is_file() for path in paths):
        return None
    return [np.loadtxt(path, delimiter=None if "diabetes" in path.name else ",") for path in paths]


def scikit_learn_datasets(option: str):
    """`sklearn.datasets`, imported when a bundled set is loaded (scikit-learn is optional)."""
    try:
        from sklearn import datasets
    except ImportError:
        raise ImportError(NEEDS_SCIKIT_LEARN.format(option=option)) from None
    return datasets


def split_dataset(
    x: np.ndarray,
    y: np.ndarray,
    test_fraction: float,
    seed: int,
    standardize: bool,
    standardize_target: bool,
    labels: bool = False,
) -> Dataset:
    """A `Dataset` of `x` and `y` split by `seed`: features float32; the target int32
    class labels (N,) when `labels`, else float32 (N, 1) (an (N, T) target keeps its T)."""
    from pipeline.datasets.split import split_rows, standardized

    train, test = split_rows(len(x), test_fraction, seed)
    x_train, x_test = x[train], x[test]
    if standardize:
        x_train, x_test = standardized(x_train, x_test)
    if labels:
        y_train, y_test = y[train].astype(np.int32), y[test].astype(np.int32)
    else:
        y = y[:, None] if y.ndim == 1 else y
        y_train, y_test = y[train], y[test]
        if standardize_target:
            y_train, y_test = standardized(y_train, y_test)
        y_train, y_test = y_train.astype(np.float32), y_test.astype(np.float32)
    return Dataset(
        x_train=x_train.astype(np.float32),
        y_train=y_train,
        x_test=x_test.astype(np.float32),
        y_test=y_test,
        k_true=None,
    )
