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
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.board_plugin.sweep_view import SweepSeries, read_job_series
from pipeline.compat import write_events_with_c_crc
from pipeline.runinfo import COMPLETED
from pipeline.sweeps.naming import folder_settings

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
        import numpy as np

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
        import numpy as np

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
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    write_events_with_c_crc()  # thousands of events: their checksums in C, not Python
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
            writer = EventFileWriter(str(Path(sweep_dir) / run))
            try:
                for event in _mean_events(by_tag):
                    writer.add_event(event)
            finally:
                writer.close()
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
    import numpy as np

    out = {}
    for tag, points in by_tag.items():
        if points:
            step, mean, lower, upper = points[-1]
            names = (tag, f"{SPREAD}/{tag}/mean", f"{SPREAD}/{tag}/lower", f"{SPREAD}/{tag}/upper")
            for name, value in zip(names, (mean, mean, lower, upper), strict=True):
                out[name] = (step, float(np.float32(value)))
    return out


def _mean_events(
    by_tag: dict[str, list[tuple[int, float, float, float]]],
) -> Iterator[Any]:
    """One event per step holding, for each tag with that step, its mean under the tag and
    `spread/<tag>/mean|lower|upper`: each a TF2-style scalar (a float32 0-d tensor with the
    scalars plugin's metadata, as `tf.summary.scalar` writes it). TensorBoard reads the
    same tags, steps and values as from one event per value, at a quarter of the records.
    Each value is its name's value proto (tag, metadata, a float32 0-d tensor: what
    `make_tensor_proto` builds) parsed from its bytes made once, the number appended:
    faster than building the value and copying its metadata in, and the same bytes."""
    from tensorboard.compat.proto import event_pb2, summary_pb2

    parse = summary_pb2.Summary.Value.FromString
    at_step: dict[int, list[Any]] = {}
    for tag, points in by_tag.items():
        names = (tag, f"{SPREAD}/{tag}/mean", f"{SPREAD}/{tag}/lower", f"{SPREAD}/{tag}/upper")
        templates = [_scalar_value(name) for name in names]
        for step, mean, lower, upper in points:
            values = at_step.setdefault(step, [])
            for template, value in zip(templates, (mean, mean, lower, upper), strict=True):
                proto = parse(template)
                proto.tensor.float_val.append(value)
                values.append(proto)
    for step in sorted(at_step):
        event = event_pb2.Event(wall_time=time.time(), step=step)
        event.summary.value.extend(at_step.pop(step))
        yield event


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
