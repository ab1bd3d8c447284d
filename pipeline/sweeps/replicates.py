"""What TensorBoard cannot do itself: one curve per setting averaged over its seeds, with a band.

TensorBoard draws one line per run; a noise x seed sweep is 15 overlapping lines. When a
sweep ends and some setting ran with several seeds, this writes, for each setting, an
aggregate run `mean/<setting>/<writer>` holding, at every step the jobs share, the mean of
each scalar tag over the setting's completed jobs, under the same tag (so it overlays the
jobs' own curves), and `spread/<tag>/mean|lower|upper` = the mean and mean -/+ one standard
deviation. A custom-scalars layout at the sweep root draws each tag as a margin chart (mean
with its band), one chart for every setting at once; its series name the `spread/` tags,
which only the mean runs hold, so the jobs' own runs do not clutter it. Everything is
computed from what the jobs wrote, read back with TensorBoard's reader, so it works
under every launcher.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.compat import write_events_with_c_crc
from pipeline.readback.runs import find_runs
from pipeline.readback.scalars import read_scalars
from pipeline.runinfo import COMPLETED
from pipeline.sweeps.naming import folder_settings

#: the aggregate runs' folder at the sweep root
MEAN_DIR = "mean"
#: prefix of the band tags; sorts after the lesson's groups in TIME SERIES
SPREAD = "spread"


def short_setting(setting: dict[str, Any]) -> str:
    """`noise_std-0.1_lr-0.5`: named as job folders are (pipeline/sweeps/naming.py)."""
    return folder_settings([(key, str(value)) for key, value in setting.items()]) or "all"


def job_series(job_dir: Path) -> dict[str, dict[str, dict[int, float]]]:
    """writer (train, test, ...) -> tag -> step -> value, for every scalar a job wrote."""
    out: dict[str, dict[str, dict[int, float]]] = {}
    for name, path in find_runs(job_dir):
        if name == ".":
            continue  # the job root holds only its HParams session
        series = read_scalars(path).series  # scalars only, not the whole accumulator
        if series:
            out[name] = {tag: dict(points) for tag, points in series.items()}
    return out


def mean_and_band(jobs: Sequence[dict[str, dict[str, dict[int, float]]]]) -> dict:
    """writer -> tag -> [(step, mean, lower, upper)] over the steps every job has.

    numpy over a (jobs, steps) array per tag: `statistics.stdev`'s exact fractions took
    seconds for a thousand seeds."""
    import numpy as np

    out: dict[str, dict[str, list[tuple[int, float, float, float]]]] = {}
    writers = set.intersection(*(set(job) for job in jobs))
    for writer in sorted(writers):
        tags = set.intersection(*(set(job[writer]) for job in jobs))
        for tag in sorted(tags):
            steps = sorted(set.intersection(*(set(job[writer][tag]) for job in jobs)))
            values = np.array([[job[writer][tag][step] for step in steps] for job in jobs])
            mean = values.mean(axis=0)
            std = values.std(axis=0, ddof=1) if len(jobs) > 1 else np.zeros_like(mean)
            out.setdefault(writer, {})[tag] = [
                (step, float(m), float(m - d), float(m + d))
                for step, m, d in zip(steps, mean, std, strict=True)
            ]
    return out


def write_replicate_runs(
    sweep_dir: Path, groups: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]]
) -> list[str]:
    """The aggregate runs and the margin-chart layout; returns the runs written.

    Only settings with at least one completed job get a run; a setting whose every job
    failed has nothing to average. An earlier `mean/` (a resumed sweep) is replaced.
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
        aggregated = mean_and_band([job_series(job) for job in members])
        for writer_name, series in aggregated.items():
            run = f"{MEAN_DIR}/{short_setting(group['setting'])}/{writer_name}"
            writer = EventFileWriter(str(Path(sweep_dir) / run))
            try:
                for tag, points in series.items():
                    tags.add(tag)
                    for step, mean, lower, upper in points:
                        for name, value in (
                            (tag, mean),
                            (f"{SPREAD}/{tag}/mean", mean),
                            (f"{SPREAD}/{tag}/lower", lower),
                            (f"{SPREAD}/{tag}/upper", upper),
                        ):
                            writer.add_event(_scalar_event(name, value, step))
            finally:
                writer.close()
            written.append(run)
    if written:
        _write_layout(Path(sweep_dir), sorted(tags))
    return written


def _scalar_event(tag: str, value: float, step: int) -> Any:
    """A TF2-style scalar (a float32 tensor with the scalars plugin's metadata)."""
    import numpy as np
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.scalar import metadata
    from tensorboard.util import tensor_util

    summary = summary_pb2.Summary(
        value=[
            summary_pb2.Summary.Value(
                tag=tag,
                tensor=tensor_util.make_tensor_proto(np.float32(value)),
                metadata=metadata.create_summary_metadata(display_name=tag, description=""),
            )
        ]
    )
    return event_pb2.Event(wall_time=time.time(), step=step, summary=summary)


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
