"""The data a run will read, checked before TensorFlow loads.

`data=file`: the file is read through the run's own reader (`pipeline.datasets.files`):
a missing file, a column or array that does not exist, a value that is no number, class
labels that are not whole numbers, too few rows for the split, each give one line naming
the key. `data=diabetes|digits`: scikit-learn, which ships them, must be installed. Then
the split must leave rows to train on, and `trainer.batch_size` fit in them. A sweep reads
each file once (the result is kept while the file is unchanged). `data=shards`: each glob
must match files, the first file's header must hold the columns named, and a batch size
must be set (tf.data input trains on mini-batches); the rows are not read.
"""

from __future__ import annotations

import functools
import importlib.util

from omegaconf import DictConfig, OmegaConf

from pipeline.check.errors import BadInput
from pipeline.check.validate import check_batch_size

#: the `_target_`s whose data come from a file, and from scikit-learn (option name, rows)
FILE_DATA = "pipeline.data.FileData"
#: the `_target_` whose data are CSV shards read through tf.data, and the keys it needs
SHARDED_FILES = "pipeline.data.ShardedFiles"
SHARDS_NEEDED = {
    "train_files": "a glob of the training CSV files, e.g. data.train_files='data/train-*.csv'",
    "test_files": "a glob of the test CSV files, e.g. data.test_files='data/test-*.csv'",
    "target": "the column that holds what to predict",
}
BUNDLED = {
    "pipeline.data.DiabetesData": ("diabetes", 442),
    "pipeline.data.DigitsData": ("digits", 1797),
}
#: what a missing `data=file` key must name
NEEDED = {
    "path": "the .csv or .npz file to read, e.g. data.path=houses.csv",
    "target": "the column (CSV) or array (NPZ) that holds what to predict",
}


def check_data(cfg: DictConfig) -> None:
    """Raise `BadInput` (one line) when the run's data cannot be read or split as given."""
    data = cfg.get("data")
    if not isinstance(data, DictConfig):
        return
    target = data.get("_target_")
    if target == SHARDED_FILES:
        _check_shards(data, cfg.trainer.get("batch_size"))
        return
    if target == FILE_DATA:
        rows, source = _check_file(data), f"data.path={data.path}"
    elif target in BUNDLED:
        option, rows = BUNDLED[target]
        if importlib.util.find_spec("sklearn") is None:
            from pipeline.data import NEEDS_SCIKIT_LEARN

            raise BadInput(NEEDS_SCIKIT_LEARN.format(option=option))
        source = f"data={option}"
    else:
        return
    from pipeline.datasets.split import count_test_rows, split_problem

    problem = split_problem(rows, data.test_fraction)
    if problem is not None:
        raise BadInput(f"bad value data.test_fraction={data.test_fraction}: {problem}")
    n_train = rows - count_test_rows(rows, data.test_fraction)
    where = f" ({source}: {rows} rows, test_fraction {data.test_fraction:g})"
    check_batch_size(cfg.trainer.get("batch_size"), n_train, where)


def _check_file(data: DictConfig) -> int:
    """The rows of the file `data` names; `BadInput` if it cannot give a Dataset."""
    from pipeline.datasets.files import DataFileError, locate

    for key, what in NEEDED.items():
        if OmegaConf.is_missing(data, key):
            raise BadInput(f"missing value data.{key}: data=file needs it; name {what}")
    if data.labels and data.standardize_target:
        raise BadInput(
            "bad value data.standardize_target=true: class labels (data.labels=true) are "
            "not scaled; set it false"
        )
    features = data.features
    features = None if features is None else tuple(str(name) for name in features)
    try:
        full = locate(data.path)
        stat = full.stat()
        return _rows(
            str(full), stat.st_mtime_ns, stat.st_size, data.path, features,
            data.target, bool(data.labels), data.delimiter,
        )  # fmt: skip
    except DataFileError as error:
        raise BadInput(str(error)) from None


def _check_shards(data: DictConfig, batch_size: int | None) -> None:
    """`BadInput` when a glob of `data=shards` matches no file or a column is not in the
    first file's header; the rows themselves are read by the run, lazily."""
    from pipeline.datasets.files import DataFileError
    from pipeline.datasets.shards import shard_columns

    for key, what in SHARDS_NEEDED.items():
        if OmegaConf.is_missing(data, key):
            raise BadInput(f"missing value data.{key}: data=shards needs it; name {what}")
    features = data.features
    features = None if features is None else [str(name) for name in features]
    try:
        for key in ("train_files", "test_files"):
            shard_columns(key, str(data[key]), features, str(data.target), data.delimiter)
    except DataFileError as error:
        raise BadInput(str(error)) from None
    if batch_size is None:
        raise BadInput(
            "missing value trainer.batch_size: data=shards reads its files through tf.data "
            "and trains on mini-batches; set one, e.g. trainer.batch_size=32"
        )


@functools.lru_cache(maxsize=64)
def _rows(
    full: str, mtime_ns: int, size: int, path: str, features: tuple[str, ...] | None,
    target: str, labels: bool, delimiter: str,
) -> int:  # fmt: skip
    """Read the file as the run will; kept per file version, so a sweep reads it once."""
    from pipeline.datasets.files import class_labels, read_table

    table = read_table(path, features, target, delimiter)
    if labels:
        class_labels(table.target, target)
    return len(table.target)
