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

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.board_plugin.sweep_view import SweepSeries, read_job_series
from pipeline.runinfo import COMPLETED
from pipeline.sweeps.mean_events import SPREAD, write_mean_events
from pipeline.sweeps.naming import folder_settings

#: the aggregate runs' folder at the sweep root
MEAN_DIR = "mean"


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
    with np.errstate(over="ignore"):  # a mean past float32's range reads back as inf
        for tag, points in by_tag.items():
            if not points:
                continue
            step, mean, lower, upper = points[-1]
            names = (tag, *(f"{SPREAD}/{tag}/{part}" for part in ("mean", "lower", "upper")))
            for name, value in zip(names, (mean, mean, lower, upper), strict=True):
                out[name] = (step, float(np.float32(value)))
    return out


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
