"""A data file named by `data.path` read into a feature array and a target array, or one
line saying why not: the names it holds checked against `features` and `target`, then
read by `csv_file` or `npz_file`. Every error is a `DataFileError` whose one line names
the key of `data`, the value given and what is allowed.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.datasets.split import MIN_ROWS, MIN_TRAIN_ROWS

#: the kinds of file read, by suffix
SUFFIXES = (".csv", ".npz")
#: the most names of columns or arrays a message lists
LISTED = 12
#: class labels are 0 .. MAX_LABEL (a label is an index into the model's outputs)
MAX_LABEL = 100_000


class DataFileError(ValueError):
    """`bad value data.<key>=<value>: <why>`, on one line."""

    def __init__(self, key: str, value: object, why: str):
        self.key, self.value = f"data.{key}", value
        super().__init__(f"bad value data.{key}={value}: {why}")


@dataclass(frozen=True)
class Table:
    """What a file holds: features (N, ...) and target (N,) or (N, T), as float64."""

    features: np.ndarray
    target: np.ndarray


def locate(path: str) -> Path:
    """The file `path` names; a relative path is read from the current directory (where
    tbpipe was started: it never changes directory)."""
    given = Path(path).expanduser()
    full = given if given.is_absolute() else Path.cwd() / given
    if given.suffix.lower() not in SUFFIXES:
        raise DataFileError(
            "path",
            path,
            "must name a .csv file (a header row, then numbers) or a .npz file (numpy.savez)",
        )
    if not full.is_file():
        where = "" if given.is_absolute() else f" (relative paths are read from {Path.cwd()})"
        what = "is a directory" if full.is_dir() else "no such file"
        raise DataFileError("path", path, f"{what}{where}; name a .csv or .npz file")
    return full


def read_table(
    path: str, features: Sequence[str] | None, target: str, delimiter: str = ","
) -> Table:
    """The features and the target of the file at `path` (see the module's docstring)."""
    full = locate(path)
    features = None if features is None else [str(name) for name in features]
    if full.suffix.lower() == ".npz":
        from pipeline.datasets.npz_file import read_npz

        table = read_npz(full, path, features, target)
    else:
        from pipeline.datasets.csv_file import read_csv

        table = read_csv(full, path, features, target, delimiter)
    if len(table.target) < MIN_ROWS:
        raise DataFileError(
            "path",
            path,
            f"holds {len(table.target)} rows; a train/test split "
            f"needs at least {MIN_ROWS} ({MIN_TRAIN_ROWS} to train on, 1 to test)",
        )
    return table


def class_labels(target: np.ndarray, target_name: str) -> np.ndarray:
    """The target as int32 class labels (N,); each must be a whole number 0 .. MAX_LABEL."""
    if target.ndim == 2 and target.shape[1] == 1:
        target = target[:, 0]
    if target.ndim != 1:
        shape = "(N, " + ", ".join(str(d) for d in target.shape[1:]) + ")"
        raise DataFileError(
            "target",
            target_name,
            f"labels=true, but it has shape {shape}; "
            "class labels are one whole number per row, shape (N,)",
        )
    bad = np.flatnonzero((target != np.round(target)) | (target < 0) | (target > MAX_LABEL))
    if bad.size:
        raise DataFileError(
            "target",
            target_name,
            f"labels=true, but row {bad[0] + 1} holds {target[bad[0]]:g}; class labels are "
            f"whole numbers 0, 1, 2, ... up to {MAX_LABEL} (for a number to predict, set "
            "data.labels=false)",
        )
    return target.astype(np.int32)


def listing(names: Sequence[str], kind: str) -> str:
    shown = ", ".join(names[:LISTED])
    more = f", ... ({len(names)} {kind}s)" if len(names) > LISTED else ""
    return shown + more


def typed(features: Sequence[str] | None) -> str:
    """`data.features` as the user would type it."""
    return "null" if features is None else "[" + ",".join(features) + "]"


def unknown(name: str, names: list[str], kind: str, path: str) -> str:
    """`no column 'prize' in houses.csv (its columns: ...); did you mean 'price'?`."""
    close = difflib.get_close_matches(name, names, n=1)
    guess = f"; did you mean {close[0]!r}?" if close else ""
    return f"no {kind} {name!r} in {path} (its {kind}s: {listing(names, kind)}){guess}"


def key_of(name: str, features: list[str] | None, target: str) -> tuple[str, str]:
    """The key of `data` (and its value as typed) that chose column or array `name`."""
    return ("target", target) if name == target else ("features", typed(features))


def choose(
    names: list[str], features: list[str] | None, target: str, kind: str, path: str
) -> list[str]:
    """The feature names to read, after checking that every name given exists."""
    if target not in names:
        raise DataFileError("target", target, unknown(target, names, kind, path))
    if features is None:
        chosen = [name for name in names if name != target]
        if not chosen:
            raise DataFileError(
                "features",
                "null",
                f"{path} has no {kind} but the target "
                f"{target!r}; a model needs at least one feature",
            )
        return chosen
    if not features:
        raise DataFileError(
            "features",
            "[]",
            f"must name at least one {kind}, or be null for every {kind} but the target",
        )
    for name in features:
        if name not in names:
            raise DataFileError("features", typed(features), unknown(name, names, kind, path))
    if target in features:
        raise DataFileError(
            "features",
            typed(features),
            f"lists the target {target!r}; a {kind} is a feature or the target, not both",
        )
    if len(set(features)) < len(features):
        twice = next(name for name in features if features.count(name) > 1)
        raise DataFileError("features", typed(features), f"names {twice!r} twice")
    return features
