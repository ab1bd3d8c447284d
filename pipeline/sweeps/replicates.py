"""What TensorBoard cannot do itself: one curve per setting averaged over its seeds, with a band.

TensorBoard draws one line per run; a noise x seed sweep is 15 overlapping lines. When a
sweep ends and some setting ran with several seeds, this writes, for each setting, an
aggregate run `mean/<setting>/<writer>` holding, at every step the jobs share, the mean of
each scalar tag over the setting's completed jobs, under the same tag (so it overlays the
jobs' own curves), and `spread/<tag>/mean|lower|upper` = the mean and mean -/+ one standard
deviation. A custom-scalars layout at the sweep root draws each tag as a margin chart (mean
with its band), one chart for every setting at once; its series name the `spread/` tags,
which only the mean runs hold, so the jobs' own runs do not clutter it. Everything is
computed from what the jobs wrote: the values their launcher held where it held them (the
stacked launcher writes its jobs from arrays), else their event files read back once
(board_plugin/sweep_view.SweepSeries, shared with the tab's digest), so it works under
every launcher.
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import socket
import struct
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.board_plugin.sweep_view import SweepSeries, read_job_series
from pipeline.runinfo import COMPLETED, framed
from pipeline.sweeps.naming import folder_settings
from pipeline.sweeps.scalar_events import step_widths

#: the aggregate runs' folder at the sweep root
MEAN_DIR = "mean"
#: prefix of the band tags; sorts after the lesson's groups in TIME SERIES
SPREAD = "spread"


def short_setting(setting: dict[str, Any]) -> str:
    """`noise_std-0.1_lr-0.5`: named as job folders are (pipeline/sweeps/naming.py)."""
    return folder_settings([(key, str(value)) for key, value in setting.items()]) or "all"


class SeedStatistics:
    """Mean and standard deviation over a setting's jobs, taken one job at a time.

    A seed summary of 200 jobs of 20,000 steps held every job's series at once (gigabytes
    of Python numbers); here each tag keeps, per step, only the running mean and sum of
    squared deviations (Welford's update, stable where the spread is tiny beside the
    mean), so memory is that of one job whatever the number of seeds. As before, only the
    writers, tags and steps that every job has are kept, and a step written twice counts
    with its last value.
    """

    def __init__(self) -> None:
        self.jobs = 0
        #: writer -> tag -> (steps, mean, sum of squared deviations), numpy arrays
        self.sums: dict[str, dict[str, tuple[Any, Any, Any]]] = {}

    def add_series(self, job: dict[str, dict[str, tuple[Any, Any]]]) -> None:
        """One job's series as sweep_view.JobSeries: writer -> tag -> (steps ascending,
        each step's last value), numpy arrays."""
        self.jobs += 1
        if self.jobs == 1:
            for writer, series in job.items():
                for tag, (steps, values) in series.items():
                    values = np.asarray(values, dtype=np.float64)
                    zeros = np.zeros_like(values)
                    self.sums.setdefault(writer, {})[tag] = (steps, values, zeros)
            return
        for writer in list(self.sums):
            tags = self.sums[writer]
            for tag in list(tags):
                points = job.get(writer, {}).get(tag)
                if points is None:  # not every job has it: left out, as before
                    del tags[tag]
                    continue
                steps, mean, squares = tags[tag]
                new_steps, values = points[0], np.asarray(points[1], dtype=np.float64)
                if new_steps is steps or np.array_equal(new_steps, steps):
                    shared = steps  # the same steps (every job of a sweep, mostly): no lookup
                else:
                    shared, kept, taken = np.intersect1d(steps, new_steps, return_indices=True)
                    mean, squares, values = mean[kept], squares[kept], values[taken]
                delta = values - mean
                mean = mean + delta / self.jobs
                tags[tag] = (shared, mean, squares + delta * (values - mean))
            if not tags:
                del self.sums[writer]

    def mean_and_band(self) -> dict[str, dict[str, list[tuple[int, float, float, float]]]]:
        """writer -> tag -> [(step, mean, mean - std, mean + std)] (std with n - 1)."""
        out: dict[str, dict[str, list[tuple[int, float, float, float]]]] = {}
        for writer in sorted(self.sums):
            for tag in sorted(self.sums[writer]):
                steps, mean, squares = self.sums[writer][tag]
                if self.jobs > 1:
                    std = np.sqrt(np.maximum(squares, 0.0) / (self.jobs - 1))
                else:
                    std = np.zeros_like(mean)
                out.setdefault(writer, {})[tag] = list(
                    zip(
                        steps.tolist(),
                        mean.tolist(),
                        (mean - std).tolist(),
                        (mean + std).tolist(),
                        strict=True,
                    )
                )
        return out


def setting_statistics(
    job_dirs: Sequence[Path], series: SweepSeries | None = None
) -> SeedStatistics:
    """The mean and spread of a setting's jobs, one job at a time: from `series` (the
    launcher's values, or the event files read once for every reader), else reading each
    job's event files."""
    statistics = SeedStatistics()
    for job_dir in job_dirs:
        statistics.add_series(series.of(job_dir) if series else read_job_series(job_dir))
    return statistics


def write_replicate_runs(
    sweep_dir: Path,
    groups: Sequence[dict[str, Any]],
    rows: Sequence[dict[str, Any]],
    series: SweepSeries | None = None,
    finals: dict[str, dict[str, tuple[int, float]]] | None = None,
) -> list[str]:
    """The aggregate runs and the margin-chart layout; returns the runs written.

    Only settings with at least one completed job get a run; a setting whose every job
    failed has nothing to average. An earlier `mean/` (a resumed sweep) is replaced.
    `series`: the jobs' scalars as the sweep's end has them (none: each job's files read).
    `finals`, if given, gets each run's final scalars as a reader will read them (run ->
    tag -> (last step, value as float32)): the report cache's, without reading them back.
    """
    dirs = {row["job"]: Path(sweep_dir) / row["dir"] for row in rows}
    completed = {row["job"] for row in rows if row.get("status") == COMPLETED}
    shutil.rmtree(Path(sweep_dir) / MEAN_DIR, ignore_errors=True)
    written, tags = [], set()
    for group in groups:
        members = [dirs[job] for job in group["jobs"] if job in completed]
        if not members:
            continue
        aggregated = setting_statistics(members, series).mean_and_band()
        for writer_name, by_tag in aggregated.items():
            run = f"{MEAN_DIR}/{short_setting(group['setting'])}/{writer_name}"
            tags.update(by_tag)
            write_mean_events(Path(sweep_dir) / run, by_tag)
            written.append(run)
            if finals is not None:
                finals[run] = final_values(by_tag)
    if written:
        _write_layout(Path(sweep_dir), sorted(tags))
    return written


def final_values(
    by_tag: dict[str, list[tuple[int, float, float, float]]],
) -> dict[str, tuple[int, float]]:
    """Each tag of a mean run (`_mean_events`) at its last step, as its event file reads
    back: the float32 each value is written as."""
    out = {}
    for tag, points in by_tag.items():
        if points:
            step, mean, lower, upper = points[-1]
            names = (tag, f"{SPREAD}/{tag}/mean", f"{SPREAD}/{tag}/lower", f"{SPREAD}/{tag}/upper")
            for name, value in zip(names, (mean, mean, lower, upper), strict=True):
                out[name] = (step, float(np.float32(value)))
    return out


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
    first = framed(np.frombuffer(opening.SerializeToString(), dtype=np.uint8)[None])
    path.write_bytes(first.tobytes() + mean_records(by_tag))
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
        records.append(framed(payloads))
    if len(records) == 1:
        return records[0].tobytes()
    taken = [0] * len(records)
    parts = []
    for kind in kind_of_row.tolist():  # every event in step order
        parts.append(records[kind][taken[kind]].tobytes())
        taken[kind] += 1
    return b"".join(parts)


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


def _write_layout(sweep_dir: Path, tags: Sequence[str]) -> None:
    """CUSTOM SCALARS: one margin chart per tag, drawing each setting's mean and band."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.custom_scalar import layout_pb2, metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    from pipeline.compat import write_events_with_c_crc

    write_events_with_c_crc()  # its checksum in C, not Python
    charts = [
        layout_pb2.Chart(
            title=f"{tag}: mean over seeds, band = mean ± 1 std",
            margin=layout_pb2.MarginChartContent(
                series=[
                    layout_pb2.MarginChartContent.Series(
                        value=f"{SPREAD}/{tag}/mean",
                        lower=f"{SPREAD}/{tag}/lower",
                        upper=f"{SPREAD}/{tag}/upper",
                    )
                ]
            ),
        )
        for tag in tags
    ]
    layout = layout_pb2.Layout(
        category=[layout_pb2.Category(title="seeds: mean and spread per setting", chart=charts)]
    )
    tensor = tensor_util.make_tensor_proto(layout.SerializeToString())
    summary = summary_pb2.Summary(
        value=[
            summary_pb2.Summary.Value(
                tag=metadata.CONFIG_SUMMARY_TAG,
                tensor=tensor,
                metadata=metadata.create_summary_metadata(),
            )
        ]
    )
    writer = EventFileWriter(str(sweep_dir))
    try:
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=0, summary=summary))
    finally:
        writer.close()
