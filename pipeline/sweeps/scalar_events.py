"""A job's scalar event files built at once with numpy: the bytes `tf.summary.scalar` writes.

A stacked job's scalars are known before they are written: for each tag a column of
float32 values at known steps. TensorFlow's summary writers would write them one op at a
time (a writer created per file, a kernel call per event); here each file is built whole.
Every scalar Event of one tag whose step takes as many bytes has the same bytes but for the
step and the value, so a template (serialised by protobuf, with the metadata of
TensorBoard's own scalar plugin) is repeated over rows and those bytes are set per row; the
records are framed by `runinfo.framed`, the project's one TFRecord framing. The file is
named as TensorFlow names a summary file and starts with its `brain.Event:2` event; each
Event equals TensorFlow's byte for byte but for its wall time, one time a file
(tests/test_scalar_events.py). Beside a job's other summaries (its histograms, images: built
by pipeline/sweeps/sink_events.py) the scalars follow them in the same file: a directory
keeps one event file, as TensorBoard reads a run's.
"""

from __future__ import annotations

import functools
import itertools
import os
import socket
import struct
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from pipeline.runinfo import framed, framed_record

#: what TensorFlow's event writer puts in a file's first event
FILE_VERSION = "brain.Event:2"
WRITER_SOURCE = "tensorflow.core.util.events_writer"
#: the `<n>` of a file's name: one count a process, as TensorFlow's summary writers keep
_file_numbers = itertools.count()


def write_scalar_files(
    run_dir: Path,
    writer_dirs: Mapping[str, str],
    steps: np.ndarray,
    values: Mapping[str, np.ndarray],
    before: Mapping[str, bytes] | None = None,
) -> list[Path]:
    """One event file per writer (`train`, `test`, under `run_dir / writer_dirs[writer]`)
    holding `values` (`<writer>/<tag>` -> float32 column, one value a step of `steps`) as
    `tf.summary.scalar` on that writer would: for each step in order, each of the writer's
    tags in the order of `values`; after `before[writer]`, the framed records of the
    writer's other summaries (pipeline/sweeps/sink_events.py), if any. Returns the files."""
    before = dict(before or {})
    files = []
    for writer, directory, records in scalar_records(run_dir, writer_dirs, steps, values):
        files.append(new_event_file(directory, before.pop(writer, b"") + records))
    for writer, records in before.items():  # a writer with no scalars
        files.append(new_event_file(run_dir / str(writer_dirs[writer]), records))
    return files


def new_event_file(directory: Path, records: bytes) -> Path:
    """A new event file in `directory` (made if need be), named as TensorFlow's writer
    names one now, holding its first event then `records` (framed); its path."""
    seconds = int(time.time())
    directory.mkdir(parents=True, exist_ok=True)
    name = f"events.out.tfevents.{seconds:010d}.{socket.gethostname()}"
    path = directory / f"{name}.{os.getpid()}.{next(_file_numbers)}.v2"
    first = framed_record(first_event(seconds))
    path.write_bytes(first + records)
    return path


def scalar_records(
    run_dir: Path,
    writer_dirs: Mapping[str, str],
    steps: np.ndarray,
    values: Mapping[str, np.ndarray],
) -> Iterable[tuple[str, Path, bytes]]:
    """Each writer, its directory and its scalar events' records, framed, in order."""
    layout: dict[str, list[str]] = {}
    for name in values:
        writer, _, tag = name.partition("/")
        layout.setdefault(writer, []).append(tag)
    steps = np.asarray(steps, dtype=np.int64)
    for writer, tags in layout.items():
        columns = [np.asarray(values[f"{writer}/{tag}"], dtype=np.float32) for tag in tags]
        yield writer, run_dir / str(writer_dirs[writer]), records_of(tags, steps, columns)


def records_of(tags: list[str], steps: np.ndarray, columns: list[np.ndarray]) -> bytes:
    """The framed records of `columns[i][row]` under `tags[i]` at `steps[row]`, row by row,
    at this wall time."""
    wall_time = struct.pack("<d", time.time())
    parts = []
    for start, stop, width in runs_of_step_width(steps):
        rows = steps[start:stop]
        parts.append(
            np.hstack(
                [
                    framed(scalar_payloads(tag, wall_time, width, rows, column[start:stop]))
                    for tag, column in zip(tags, columns, strict=True)
                ]
            ).tobytes()
        )
    return b"".join(parts)


def first_event(seconds: int) -> bytes:
    """The Event TensorFlow's writer opens a file with: its version, at the whole second
    that the file's name carries."""
    from tensorboard.compat.proto import event_pb2

    event = event_pb2.Event(wall_time=float(seconds), file_version=FILE_VERSION)
    event.source_metadata.writer = WRITER_SOURCE
    return event.SerializeToString()


def step_widths(steps: np.ndarray) -> np.ndarray:
    """How many bytes each step takes in an Event: none for step 0 (protobuf leaves a zero
    out), else its varint's length (7 bits a byte; a negative step as its 64-bit pattern)."""
    unsigned = steps.astype(np.uint64)
    widths = (unsigned > 0).astype(np.int64)
    for group in range(1, 10):
        widths += unsigned >= np.uint64(1) << np.uint64(7 * group)
    return widths


def runs_of_step_width(steps: np.ndarray) -> Iterable[tuple[int, int, int]]:
    """(start, stop, width): the rows of `steps`, in order, in runs of one step width."""
    if len(steps) == 0:
        return []
    widths = step_widths(steps)
    starts = [0, *(np.flatnonzero(np.diff(widths)) + 1).tolist()]
    stops = [*starts[1:], len(steps)]
    return [(start, stop, int(widths[start])) for start, stop in zip(starts, stops, strict=True)]


def scalar_payloads(
    tag: str, wall_time: bytes, width: int, steps: np.ndarray, column: np.ndarray
) -> np.ndarray:
    """The Events of `tag` at `steps` (each `width` bytes as a varint) with `column`'s
    values, at one wall time: (rows, length) uint8, a row an Event's bytes."""
    template, value_at = event_template(tag, width)
    payloads = np.empty((len(steps), len(template)), dtype=np.uint8)
    payloads[:] = np.frombuffer(template, dtype=np.uint8)
    payloads[:, 1:9] = np.frombuffer(wall_time, dtype=np.uint8)
    unsigned = steps.astype(np.uint64)
    for byte in range(width):  # the step's varint, after the wall time and the step's key
        bits = (unsigned >> np.uint64(7 * byte)) & np.uint64(0x7F)
        payloads[:, 10 + byte] = bits | np.uint64(0x80 if byte < width - 1 else 0)
    payloads[:, value_at : value_at + 4] = (
        np.ascontiguousarray(column, dtype="<f4").view(np.uint8).reshape(-1, 4)
    )
    return payloads


@functools.cache
def event_template(tag: str, width: int) -> tuple[bytes, int]:
    """A scalar Event of `tag` as TensorFlow's summary writer serialises it (the value a
    float32 0-d tensor's content, the scalars plugin's metadata), its wall time at bytes
    1-8, its step's varint `width` bytes long from byte 10, and where its value's 4 bytes
    are."""
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2
    from tensorboard.plugins.scalar import metadata

    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=bytes(4))
    tensor.tensor_shape.SetInParent()  # a 0-d tensor: an empty shape, written
    value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
    without_metadata = value.SerializeToString()
    value.metadata.CopyFrom(metadata.create_summary_metadata(None, None))
    metadata_field = value.SerializeToString()[len(without_metadata) :]
    step = 0 if width == 0 else 1 << (7 * (width - 1))  # a step of that width
    event = event_pb2.Event(wall_time=1.0, step=step)  # a wall time of 0 would be left out
    event.summary.value.append(value)
    serialised = event.SerializeToString()
    value_at = len(serialised) - len(metadata_field) - 4
    if not (
        serialised[0] == 0x09  # the wall time's key (a double) first
        and (width == 0 or serialised[9] == 0x10)  # the step's key (a varint) next
        and serialised.endswith(bytes(4) + metadata_field)  # the value, then its metadata
    ):
        raise AssertionError(f"unexpected layout of a scalar Event of {tag!r}")
    return serialised, value_at
