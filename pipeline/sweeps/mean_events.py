"""A seed-mean run's event file built at once with numpy: the events protobuf builds.

A mean run (pipeline/sweeps/replicates.py) holds one event a step: for each tag with that
step, its mean under the tag and `spread/<tag>/mean|lower|upper`, each a TF2-style scalar
(a float32 0-d tensor with the scalars plugin's metadata, its number in `float_val`).
Written through TensorBoard's event writer, that is a protobuf message built and
serialised a step; here, as pipeline/sweeps/scalar_events.py does for a job's own
scalars, the events alike (as many bytes for the step, the same tags) are one template
repeated over rows with their steps and values set in place, and the records are framed
by `runinfo.framed`. Each event equals protobuf's byte for byte but for its wall time, one
time a file (tests/test_summary_mean_events.py); the file is named and opened as
TensorBoard's event writer names and opens one.
"""

from __future__ import annotations

import functools
import itertools
import os
import socket
import struct
import time
from pathlib import Path

import numpy as np

from pipeline.runinfo import framed_record
from pipeline.sweeps.scalar_events import step_widths

#: prefix of the band tags; sorts after the lesson's groups in TIME SERIES
SPREAD = "spread"


def write_mean_events(directory: Path, by_tag: dict[str, list[MeanPoint]]) -> Path:
    """A mean run's event file as TensorBoard's own event writer (`EventFileWriter`) names
    and opens it, then one event per step (`mean_records`); returns the file."""
    from tensorboard.compat.proto import event_pb2

    seconds = time.time()
    directory.mkdir(parents=True, exist_ok=True)
    name = f"events.out.tfevents.{int(seconds):010d}.{socket.gethostname()}"
    path = directory / f"{name}.{os.getpid()}.{next(_file_numbers)}"
    opening = event_pb2.Event(wall_time=seconds, file_version=FILE_VERSION)
    opening.source_metadata.writer = WRITER_SOURCE
    path.write_bytes(framed_record(opening.SerializeToString()) + mean_records(by_tag))
    return path


#: a mean run's point: (step, mean, mean - std, mean + std)
MeanPoint = tuple[int, float, float, float]
#: what TensorBoard's event writer puts in a file's first event
FILE_VERSION = "brain.Event:2"
WRITER_SOURCE = "tensorboard.summary.writer.event_file_writer"
#: the `<n>` of a mean run's file name: one count a process
_file_numbers = itertools.count()


def mean_records(by_tag: dict[str, list[MeanPoint]]) -> bytes:
    """The framed records of a mean run: one event per step holding, for each tag with that
    step, its mean under the tag and `spread/<tag>/mean|lower|upper`, each a TF2-style
    scalar (a float32 0-d tensor with the scalars plugin's metadata, its number in
    `float_val`). TensorBoard reads the same tags, steps and values as from one event per
    value, at a quarter of the records. Built at once with numpy: events whose steps take
    as many bytes and that hold the same names have the same bytes but for the step and
    the values (`mean_event_template`); one wall time for all."""
    names: list[str] = []
    for tag in by_tag:
        names += [tag, f"{SPREAD}/{tag}/mean", f"{SPREAD}/{tag}/lower", f"{SPREAD}/{tag}/upper"]
    every = [np.asarray([p[0] for p in points], dtype=np.int64) for points in by_tag.values()]
    steps = np.unique(np.concatenate(every)) if every else np.zeros(0, dtype=np.int64)
    if len(steps) == 0:
        return b""
    values = np.zeros((len(steps), len(names)), dtype=np.float32)
    present = np.zeros((len(steps), len(names)), dtype=bool)
    for index, (tag_steps, points) in enumerate(zip(every, by_tag.values(), strict=True)):
        if len(points):
            at = np.searchsorted(steps, tag_steps)
            columns = np.asarray([(m, m, low, up) for _, m, low, up in points], dtype=np.float64)
            with np.errstate(over="ignore"):  # past float32's range: infinite, as protobuf
                values[at, 4 * index : 4 * index + 4] = columns.astype(np.float32)
            present[at, 4 * index : 4 * index + 4] = True
    # the events alike: as many bytes for the step, the same names
    kinds, kind_of_row = np.unique(
        np.hstack([step_widths(steps)[:, None], present]).astype(np.uint8),
        axis=0,
        return_inverse=True,
    )
    kind_of_row = kind_of_row.reshape(-1)
    wall_time = np.frombuffer(struct.pack("<d", time.time()), dtype=np.uint8)
    records: list[np.ndarray] = []
    for kind, (width, *has) in enumerate(kinds.tolist()):
        rows = np.flatnonzero(kind_of_row == kind)
        held = np.flatnonzero(has)
        template, offsets = mean_event_template(tuple(names[i] for i in held), width)
        payloads = np.empty((len(rows), len(template)), dtype=np.uint8)
        payloads[:] = np.frombuffer(template, dtype=np.uint8)
        payloads[:, 1:9] = wall_time
        unsigned = steps[rows].astype(np.uint64)
        for byte in range(width):  # the step's varint, after the wall time and the step's key
            bits = (unsigned >> np.uint64(7 * byte)) & np.uint64(0x7F)
            payloads[:, 10 + byte] = bits | np.uint64(0x80 if byte < width - 1 else 0)
        numbers = np.ascontiguousarray(values[rows][:, held], dtype="<f4").view(np.uint8)
        for column, offset in enumerate(offsets):
            payloads[:, offset : offset + 4] = numbers[:, 4 * column : 4 * column + 4]
        records.append(framed_each(payloads))
    if len(records) == 1:
        return records[0].tobytes()
    taken = [0] * len(records)
    parts = []
    for kind in kind_of_row.tolist():  # every event in step order
        parts.append(records[kind][taken[kind]].tobytes())
        taken[kind] += 1
    return b"".join(parts)


def framed_each(payloads: np.ndarray) -> np.ndarray:
    """`runinfo.framed(payloads)`, each record's checksum computed on its own: a mean run's
    events are long and of a few lengths each, where framed's tables (one a length, made
    from 8 checksums a byte) would cost more than a C checksum a record."""
    from pipeline.compat import masked_crc32c

    count, length = payloads.shape
    records = np.empty((count, length + 16), dtype=np.uint8)
    if count:
        head = framed_record(payloads[0].tobytes())[:12]  # the length and its checksum
        records[:, :12] = np.frombuffer(head, dtype=np.uint8)
        records[:, 12:-4] = payloads
        checksums = [masked_crc32c(row.tobytes()) for row in payloads]
        records[:, -4:] = np.asarray(checksums, dtype="<u4").view(np.uint8).reshape(count, 4)
    return records


#: a float32 whose four bytes all differ from zero's: where a value's bytes are in an event
_MARKER = struct.unpack("<f", bytes([1, 2, 3, 4]))[0]


@functools.cache
def mean_event_template(names: tuple[str, ...], width: int) -> tuple[bytes, list[int]]:
    """An event of a mean run holding `names` (each value `_scalar_value` with its number
    appended to `float_val`, as protobuf serialises it): its wall time at bytes 1-8, its
    step's varint `width` bytes long from byte 10, and where each value's 4 bytes are."""
    from tensorboard.compat.proto import event_pb2, summary_pb2

    step = 0 if width == 0 else 1 << (7 * (width - 1))  # a step of that width
    event = event_pb2.Event(wall_time=1.0, step=step)  # a wall time of 0 would be left out
    for name in names:
        value = summary_pb2.Summary.Value.FromString(_scalar_value(name))
        value.tensor.float_val.append(0.0)
        event.summary.value.append(value)
    serialised = event.SerializeToString()
    zero = np.frombuffer(serialised, dtype=np.uint8)
    offsets = []
    for value in event.summary.value:
        value.tensor.float_val[0] = _MARKER
        marked = np.frombuffer(event.SerializeToString(), dtype=np.uint8)
        value.tensor.float_val[0] = 0.0
        changed = np.flatnonzero(marked != zero).tolist()
        if len(marked) != len(zero) or changed != list(range(changed[0], changed[0] + 4)):
            raise AssertionError(f"unexpected layout of a mean event of {names!r}")
        offsets.append(changed[0])
    if not (serialised[0] == 0x09 and (width == 0 or serialised[9] == 0x10)):
        raise AssertionError(f"unexpected layout of a mean event of {names!r}")
    return serialised, offsets


@functools.lru_cache(maxsize=1024)
def _scalar_value(tag: str) -> bytes:
    """`tag`'s scalar value without its number: the scalars plugin's metadata and an empty
    float32 0-d tensor, serialized once per tag, not once per event."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.compat.proto.types_pb2 import DT_FLOAT
    from tensorboard.plugins.scalar import metadata

    value = summary_pb2.Summary.Value(
        tag=tag, metadata=metadata.create_summary_metadata(display_name=tag, description="")
    )
    value.tensor.dtype = DT_FLOAT
    value.tensor.tensor_shape.SetInParent()
    return value.SerializeToString()
