"""An NPZ file's arrays (numpy.savez) as numbers, read without unpickling anything.

One feature array keeps its shape (images stay (N, H, W, C)); several are flattened to
columns and put side by side.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from pipeline.datasets.files import DataFileError, Table, choose, key_of, typed


def read_npz(full: Path, path: str, features: list[str] | None, target: str) -> Table:
    try:
        with np.load(full, allow_pickle=False) as npz:  # never unpickle a file's objects
            names = list(npz.files)
            chosen = choose(names, features, target, "array", path)
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
                typed(features),
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
    key, value = key_of(name, features, target)
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
