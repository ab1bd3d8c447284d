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
from dataclasses import dataclass
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
    at this wall time: the layout's records (`layout_of`) with the values, the wall time
    and each record's data checksum set."""
    if len(steps) == 0 or not tags:
        return b""
    layout = layout_of(tuple(tags), steps)
    wall_time = np.frombuffer(struct.pack("<d", time.time()), dtype=np.uint8)
    values = np.concatenate([np.asarray(c, dtype="<f4") for c in columns])[layout.order]
    value_bytes = values.view(np.uint8).reshape(-1, 4)
    # each record's data checksum: the layout's, changed by its value's and wall time's bytes
    changes = layout.value_changes[layout.value_tables + value_bytes]
    walls = np.bitwise_xor.reduce(layout.wall_changes[:, _EIGHT, wall_time], axis=1)
    crc = layout.crc ^ walls[layout.kind_of]
    crc ^= changes[:, 0] ^ changes[:, 1] ^ changes[:, 2] ^ changes[:, 3]
    masked = ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(MASK_DELTA)
    crc_bytes = masked.astype("<u4").view(np.uint8).reshape(-1, 4)
    records = layout.records.copy()
    first = 0  # the kind's first record in `order`
    for start, rows, row_bytes, data_at, value_at, crc_at in layout.kinds:
        view = records[start : start + rows * row_bytes].reshape(rows, row_bytes)
        view[:, data_at + 1 : data_at + 9] = wall_time  # the Event's first field, after its key
        view[:, value_at : value_at + 4] = value_bytes[first : first + rows]
        view[:, crc_at : crc_at + 4] = crc_bytes[first : first + rows]
        first += rows
    return records.tobytes()


#: TFRecord's checksum mask: the CRC rotated right by 15 bits plus this
MASK_DELTA = 0xA282EAD8
_FOUR, _EIGHT = np.arange(4), np.arange(8)


@dataclass(frozen=True)
class Layout:
    """The framed records of some tags at some steps with every wall time and value zero,
    and where in them what a job's records change: each record's value (4 bytes), its wall
    time (8 bytes) and its data's checksum (4 bytes). A kind of record (a tag, and its
    step's width) lies at a fixed column of the rows of a run of steps of one width, one row
    a step. A CRC-32C is affine in its data, so a record's checksum is the layout's xor, for
    each changed byte, a table entry of that byte at its column
    (`runinfo._byte_crc_tables`), one table a kind (one length, the value at one column)."""

    records: np.ndarray  # (bytes,) uint8
    #: each kind's (first byte of its run, rows, bytes a row, and its Event's, its value's,
    #: its checksum's column in a row), in the order of its records below
    kinds: list[tuple[int, int, int, int, int, int]]
    order: np.ndarray  # (n,) each record's value: index into the tags' columns, end to end
    kind_of: np.ndarray  # (n,) each record's kind
    crc: np.ndarray  # (n,) uint32: each record's data checksum, unmasked
    value_tables: np.ndarray  # (n, 4) where each value byte's table starts in value_changes
    value_changes: np.ndarray  # (kinds * 4 * 256,) uint32: a value byte's change to the CRC
    wall_changes: np.ndarray  # (kinds, 8, 256) uint32: a wall-time byte's change


#: the layouts of the tags and steps written lately (a sweep's jobs share a few)
_layouts: dict[tuple, Layout] = {}
LAYOUTS_KEPT = 16


def layout_of(tags: tuple[str, ...], steps: np.ndarray) -> Layout:
    """The `Layout` of `tags` at `steps` (not empty), made once (by `runinfo.framed`, from
    each tag's `scalar_payloads`) for the tags and steps of many jobs."""
    steps = np.asarray(steps, dtype=np.int64)
    key = (tags, steps.tobytes())
    found = _layouts.get(key)
    if found is not None:
        return found
    from pipeline.runinfo import _byte_crc_tables

    runs, kinds, order, crcs, value_changes, wall_changes = [], [], [], [], [], []
    offset = 0  # where the run's records start
    for start, stop, width in runs_of_step_width(steps):
        rows = steps[start:stop]
        zeros = np.zeros(len(rows), dtype="<f4")
        framed_tags = [framed(scalar_payloads(tag, bytes(8), width, rows, zeros)) for tag in tags]
        row_bytes = sum(records.shape[1] for records in framed_tags)
        column = 0  # where the tag's record starts in a row of the run (a step's records)
        for number, (tag, records) in enumerate(zip(tags, framed_tags, strict=True)):
            length = records.shape[1] - 16  # the Event's, after the record's first 12 bytes
            value_column = event_template(tag, width)[1]
            data_at = column + 12
            kinds.append(
                (offset, len(rows), row_bytes, data_at, data_at + value_column, data_at + length)
            )
            order.append(number * len(steps) + np.arange(start, stop))
            masked = records[:, -4:].copy().view("<u4")[:, 0] - np.uint32(MASK_DELTA)
            crcs.append((masked << np.uint32(15)) | (masked >> np.uint32(17)))  # unmasked
            tables = _byte_crc_tables(length)
            value_changes.append(tables[value_column : value_column + 4])
            wall_changes.append(tables[1:9])
            column += records.shape[1]
        runs.append(np.hstack(framed_tags).reshape(-1))
        offset += row_bytes * len(rows)
    kind_of = np.concatenate([np.full(rows, kind) for kind, (_, rows, *_) in enumerate(kinds)])
    layout = Layout(
        records=np.concatenate(runs),
        kinds=kinds,
        order=np.concatenate(order),
        kind_of=kind_of,
        crc=np.concatenate(crcs),
        value_tables=kind_of[:, None] * 1024 + _FOUR * 256,
        value_changes=np.stack(value_changes).reshape(-1),
        wall_changes=np.stack(wall_changes),
    )
    if len(_layouts) >= LAYOUTS_KEPT:
        _layouts.pop(next(iter(_layouts)))
    _layouts[key] = layout
    return layout


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
