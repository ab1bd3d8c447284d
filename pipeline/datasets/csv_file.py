"""A CSV file's columns as numbers: a header row names them, each further row is an example.

numpy reads the columns in one pass; when it refuses a cell, Python's csv reader finds the
first cell that is no finite number, so the line says which column, which line and what.
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path

import numpy as np

from pipeline.datasets.files import DataFileError, Table, choose, key_of


def read_csv(
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
        chosen = choose(header, features, target, "column", path)
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
                key, value = key_of(name, features, target)
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
