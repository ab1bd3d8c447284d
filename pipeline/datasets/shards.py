"""CSV files matched by a glob pattern (shards), read lazily through tf.data (`data=shards`).

`shard_columns` finds the files and checks the columns each pattern's first file names,
with no TensorFlow: the preflight calls it, so a pattern that matches nothing or a column
that does not exist is one line before TensorFlow loads. `shard_streams` builds the run's
`pipeline.data.Streams` from the same answer, with TensorFlow's own CSV reader (an op, so
a checkpoint can save where the iterator is; a Python reader could not be saved).
"""

from __future__ import annotations

import csv
import glob
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.datasets.files import DataFileError, choose


@dataclass(frozen=True)
class Shards:
    """The files of one split, in name order, and the columns read from them."""

    files: list[str]
    columns: list[int]  # the indices of the chosen features, then the target
    width: int  # how many columns each file has


def shard_files(key: str, pattern: str) -> list[str]:
    """The files `pattern` matches, in name order; a relative pattern is read from the
    directory tbpipe was started in. None: a `DataFileError` naming `data.<key>`."""
    given = str(Path(pattern).expanduser())
    matched = sorted(path for path in glob.glob(given) if Path(path).is_file())
    if not matched:
        where = "" if Path(given).is_absolute() else f" (relative to {Path.cwd()})"
        raise DataFileError(
            key, pattern, f"no file matches{where}; give a glob of CSV files, e.g. data/part-*.csv"
        )
    return [str(Path(path).resolve()) for path in matched]


def shard_columns(
    key: str, pattern: str, features: Sequence[str] | None, target: str, delimiter: str
) -> Shards:
    """The files of `pattern` and the columns to read, checked against the first file's
    header row (every shard is expected to have the same one)."""
    files = shard_files(key, pattern)
    with open(files[0], newline="", encoding="utf-8-sig") as file:
        header = next(csv.reader(file, delimiter=delimiter), None)
    if not header:
        raise DataFileError(key, pattern, f"{files[0]} is empty; each shard starts with a header")
    header = [name.strip() for name in header]
    features = None if features is None else [str(name) for name in features]
    chosen = choose(header, features, target, "column", files[0])
    columns = [header.index(name) for name in [*chosen, target]]
    return Shards(files=files, columns=columns, width=len(header))


def shard_streams(data: Any) -> Any:
    """`pipeline.data.Streams` of a `ShardedFiles`: train shuffled through its buffer,
    test in file order; features float32 (N, F), targets float32 (N, 1) or int32 labels."""
    import tensorflow as tf

    from pipeline.data import Streams

    def examples(key: str, pattern: str) -> tf.data.Dataset:
        shards = shard_columns(key, pattern, data.features, data.target, data.delimiter)
        defaults = [tf.float32] * len(shards.columns)

        def read(path: tf.Tensor) -> tf.data.Dataset:
            return tf.data.experimental.CsvDataset(
                path,
                defaults,
                header=True,
                field_delim=data.delimiter,
                select_cols=sorted(shards.columns),
            )

        # CsvDataset gives the selected columns in file order: put them in the asked order
        order = [sorted(shards.columns).index(column) for column in shards.columns]

        def example(*values: tf.Tensor) -> tuple:
            picked = [values[i] for i in order]
            x = tf.stack(picked[:-1])
            y = tf.cast(picked[-1], tf.int32) if data.labels else tf.reshape(picked[-1], [1])
            return x, y

        files = tf.data.Dataset.from_tensor_slices(shards.files)
        return files.flat_map(read).map(example)

    train = examples("train_files", data.train_files)
    if data.shuffle_buffer and data.shuffle_buffer > 1:
        train = train.shuffle(int(data.shuffle_buffer), seed=int(data.seed))
    return Streams(train=train, test=examples("test_files", data.test_files))
