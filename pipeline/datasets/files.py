"""A CSV or NPZ file read into a feature array and a target array, or one line saying why not.

CSV: a header row naming the columns, then one row per example; `features` and `target`
name columns. NPZ (numpy.savez): `features` and `target` name arrays, each with one row
per example; one feature array is kept in its shape (images stay (N, H, W, C)), several
are flattened to columns and put side by side. Every error is a `DataFileError` whose one
line names the key of `data`, the value given and what is allowed.
"""

from __future__ import annotations

import csv
import difflib
import math
import warnings
import zipfile
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
        table = _read_npz(full, path, features, target)
    else:
        table = _read_csv(full, path, features, target, delimiter)
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


def _listing(names: Sequence[str], kind: str) -> str:
    shown = ", ".join(names[:LISTED])
    more = f", ... ({len(names)} {kind}s)" if len(names) > LISTED else ""
    return shown + more


def _typed(features: Sequence[str] | None) -> str:
    """`data.features` as the user would type it."""
    return "null" if features is None else "[" + ",".join(features) + "]"


def _unknown(name: str, names: list[str], kind: str, path: str) -> str:
    """`no column 'prize' in houses.csv (its columns: ...); did you mean 'price'?`."""
    close = difflib.get_close_matches(name, names, n=1)
    guess = f"; did you mean {close[0]!r}?" if close else ""
    return f"no {kind} {name!r} in {path} (its {kind}s: {_listing(names, kind)}){guess}"


def _key_of(name: str, features: list[str] | None, target: str) -> tuple[str, str]:
    """The key of `data` (and its value as typed) that chose column or array `name`."""
    return ("target", target) if name == target else ("features", _typed(features))


def _choose(
    names: list[str], features: list[str] | None, target: str, kind: str, path: str
) -> list[str]:
    """The feature names to read, after checking that every name given exists."""
    if target not in names:
        raise DataFileError("target", target, _unknown(target, names, kind, path))
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
            raise DataFileError("features", _typed(features), _unknown(name, names, kind, path))
    if target in features:
        raise DataFileError(
            "features",
            _typed(features),
            f"lists the target {target!r}; a {kind} is a feature or the target, not both",
        )
    if len(set(features)) < len(features):
        twice = next(name for name in features if features.count(name) > 1)
        raise DataFileError("features", _typed(features), f"names {twice!r} twice")
    return features


# -- CSV ------------------------------------------------------------------------------
def _read_csv(
    full: Path, path: str, features: list[str] | None, target: str, delimiter: str
) -> Table:
    with open(full, newline="", encoding="utf-8-sig") as file:
        header = next(csv.reader(file, delimiter=delimiter), None)
    if not header:
        raise DataFileError(
            "path",
            path,
            "the file is empty; a CSV file starts with a header row that names its columns",
        )
    header = [name.strip() for name in header]
    try:
        chosen = _choose(header, features, target, "column", path)
    except DataFileError as error:
        if len(header) == 1 and len(header[0]) > 1:  # perhaps another delimiter
            hint = f" (read with data.delimiter={delimiter!r}: is the file's another?)"
            why = str(error).split(": ", 1)[1] + hint
            raise DataFileError(error.key.removeprefix("data."), error.value, why) from None
        raise
    columns = [header.index(name) for name in [*chosen, target]]
    try:
        with warnings.catch_warnings():  # a file of no rows is reported below, once
            warnings.simplefilter("ignore", UserWarning)
            values = np.loadtxt(
                full,
                delimiter=delimiter,
                skiprows=1,
                usecols=columns,
                dtype=np.float64,
                ndmin=2,
                comments=None,
                quotechar='"',
                encoding="utf-8-sig",
            )
    except ValueError:
        values = None
    if values is None or not np.isfinite(values).all():
        _first_bad_cell(full, path, header, chosen, features, target, delimiter)
    if values is None:  # loadtxt refused what Python's csv reads: say so, not why
        raise DataFileError("path", path, "cannot read it as CSV with numbers in the columns")
    if len(values) == 0:
        raise DataFileError("path", path, "has a header row but no rows of data")
    return Table(features=values[:, :-1], target=values[:, -1])


def _first_bad_cell(
    full: Path,
    path: str,
    header: list[str],
    chosen: list[str],
    features: list[str] | None,
    target: str,
    delimiter: str,
) -> None:
    """Raise the `DataFileError` for the first cell that is no finite number."""
    wanted = [(name, header.index(name)) for name in [*chosen, target]]
    with open(full, newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file, delimiter=delimiter)
        next(reader)
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            for name, index in wanted:
                key, value = _key_of(name, features, target)
                if index >= len(row):
                    raise DataFileError(
                        key,
                        value,
                        f"line {line} of {path} has {len(row)} "
                        f"fields, the header {len(header)}; no value of {name!r}",
                    )
                cell = row[index].strip()
                try:
                    number = float(cell)
                except ValueError:
                    number = None
                if number is None or not math.isfinite(number):
                    shown = f"{cell!r}" + (" (empty)" if not cell else "")
                    hint = "; list the columns to use in data.features" if value == "null" else ""
                    raise DataFileError(
                        key,
                        value,
                        f"column {name!r} holds {shown} on line {line} of {path}; feature and "
                        f"target columns must hold finite numbers only{hint}",
                    )


# -- NPZ ------------------------------------------------------------------------------
def _read_npz(full: Path, path: str, features: list[str] | None, target: str) -> Table:
    try:
        with np.load(full, allow_pickle=False) as npz:  # never unpickle a file's objects
            names = list(npz.files)
            chosen = _choose(names, features, target, "array", path)
            arrays = {
                name: _numeric(npz, name, path, features, target) for name in [*chosen, target]
            }
    except DataFileError:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError):
        raise DataFileError("path", path, "is not an NPZ file (numpy.savez writes one)") from None
    except OSError as error:
        raise DataFileError("path", path, f"cannot be read: {error.strerror or error}") from None
    rows = len(arrays[target])
    for name in chosen:
        if len(arrays[name]) != rows:
            raise DataFileError(
                "features",
                _typed(features),
                f"array {name!r} has {len(arrays[name])} rows, the target {target!r} {rows}; "
                "each array holds one row per example",
            )
    if rows == 0:
        raise DataFileError("path", path, "its arrays have no rows")
    if arrays[target].ndim > 2:
        raise DataFileError(
            "target",
            target,
            f"has shape {arrays[target].shape}; a target is "
            "one number per row (N,) or several (N, T)",
        )
    if len(chosen) == 1:
        x = arrays[chosen[0]]
        x = x[:, None] if x.ndim == 1 else x
    else:
        x = np.concatenate([arrays[name].reshape(rows, -1) for name in chosen], axis=1)
    return Table(features=x, target=arrays[target])


def _numeric(npz, name: str, path: str, features: list[str] | None, target: str) -> np.ndarray:
    """Array `name` as float64, or the `DataFileError` saying why it is no numbers."""
    key, value = _key_of(name, features, target)
    try:
        array = npz[name]
    except ValueError:  # object arrays need pickle, which is never used
        raise DataFileError(
            key, value, f"array {name!r} of {path} holds Python objects; arrays must hold numbers"
        ) from None
    if array.dtype.kind not in "biuf":
        raise DataFileError(
            key,
            value,
            f"array {name!r} of {path} holds {array.dtype} "
            "values, not numbers; arrays must hold numbers",
        )
    if array.ndim == 0:
        raise DataFileError(
            key,
            value,
            f"array {name!r} of {path} is a single number; arrays hold one row per example",
        )
    array = array.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(array.reshape(len(array), -1)).all(axis=1))
    if bad.size:
        raise DataFileError(
            key,
            value,
            f"array {name!r} of {path} holds a NaN or infinite "
            f"value in row {bad[0] + 1}; arrays must hold finite numbers",
        )
    return array
