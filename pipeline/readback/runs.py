"""Read runs back from their event files with TensorBoard's own reader.

No training code is imported here. TF2 stores every summary as a tensor, so we use
`plugin_event_accumulator` with no sample limit (the legacy reader keeps only a few
samples per tag) and sort tags by the plugin that wrote them.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.util import tensor_util

from pipeline.runinfo import EVENT_FILE_MARK, Records

# TensorBoard's loader logs every file it finishes at INFO ("No path found after ..."):
# under Hydra's logging in a sweep's launching process that would flood the summary.
logging.getLogger("tensorboard").setLevel(logging.WARNING)

#: TensorBoard's summary plugins, as they name themselves in the event files.
SCALARS, HISTOGRAMS, IMAGES, TEXT, GRAPHS, HPARAMS = (
    "scalars",
    "histograms",
    "images",
    "text",
    "graphs",
    "hparams",
)


@dataclass
class RunData:
    """Everything one TensorBoard run (one directory of event files) holds, by plugin."""

    path: Path
    #: plugin name -> tag -> list of (step, numpy value)
    series: dict[str, dict[str, list[tuple[int, np.ndarray]]]] = field(default_factory=dict)
    graph: object | None = None  # a GraphDef, if the run has one

    def tags(self, plugin: str) -> list[str]:
        return sorted(self.series.get(plugin, {}))

    def scalars(self, tag: str) -> list[tuple[int, float]]:
        """(step, value) pairs of a scalar tag, in step order."""
        return [(step, float(value)) for step, value in self.series[SCALARS][tag]]

    def histograms(self, tag: str) -> list[tuple[int, np.ndarray]]:
        """(step, buckets) pairs; buckets is a (B, 3) array of [left, right, count]."""
        return self.series[HISTOGRAMS][tag]

    def images(self, tag: str) -> list[tuple[int, bytes]]:
        """(step, encoded image bytes) pairs; the first image of each step."""
        return [(step, bytes(value[2])) for step, value in self.series[IMAGES][tag]]

    def texts(self, tag: str) -> list[tuple[int, str]]:
        return [(step, value.item().decode()) for step, value in self.series[TEXT][tag]]


def load_run(
    path: str | Path, plugins: Collection[str] | None = None, ends_only: bool = False
) -> RunData:
    """Load every summary in one run directory (e.g. `<run dir>/train`), or only those of
    `plugins` (e.g. {SCALARS}: images and histograms are then not decoded); `ends_only`
    keeps each tag's first and last step (what a report shows), decoding nothing else."""
    accumulator = pea.EventAccumulator(str(path), size_guidance={pea.TENSORS: 0})
    accumulator.Reload()
    run = RunData(path=Path(path))
    for tag in accumulator.Tags().get(pea.TENSORS, []):
        plugin = accumulator.SummaryMetadata(tag).plugin_data.plugin_name
        if plugins is not None and plugin not in plugins:
            continue
        events = sorted(accumulator.Tensors(tag), key=lambda e: e.step)
        if ends_only and len(events) > 2:
            events = [events[0], events[-1]]
        run.series.setdefault(plugin, {})[tag] = [
            (e.step, tensor_util.make_ndarray(e.tensor_proto)) for e in events
        ]
    if accumulator.Tags().get(pea.GRAPH) and (plugins is None or GRAPHS in plugins):
        run.graph = accumulator.Graph()
    return run


def share_between(buckets: np.ndarray, low: float, high: float) -> float:
    """Share of a histogram's mass in (low, high), assuming values spread evenly in a bucket."""
    left, right, count = buckets[:, 0], buckets[:, 1], buckets[:, 2]
    width = np.maximum(right - left, 1e-12)
    overlap = np.clip(np.minimum(right, high) - np.maximum(left, low), 0.0, None) / width
    # zero-width buckets (all values equal) count fully when their value is inside
    point = (right - left) <= 1e-12
    overlap = np.where(point, ((left > low) & (left < high)).astype(float), overlap)
    total = count.sum()
    return float((overlap * count).sum() / total) if total else float("nan")


class DamagedEventFile(UserWarning):
    """An event file that is truncated or malformed: TensorBoard silently stops reading it."""


def find_runs(logdir: str | Path) -> list[tuple[str, Path]]:
    """Every TensorBoard run under `logdir`: (name, path) of each folder holding event files.

    Runs are named as TensorBoard names them, by their path relative to `logdir`
    ("." for `logdir` itself), so names match what the dashboard shows. Symlinked
    folders are followed, as TensorBoard follows them; a folder reached a second time
    (a symlink loop) is not entered again (`symlink_loops` names them).
    """
    root = Path(logdir)
    return sorted((folder.relative_to(root).as_posix(), folder) for folder in _walk(root)[0])


def symlink_loops(logdir: str | Path) -> list[Path]:
    """Folders under `logdir` that lead back to one already walked (TensorBoard would walk
    them again, up to 40 levels deep, listing the same runs under longer names)."""
    return _walk(Path(logdir))[1]


def _walk(root: Path) -> tuple[list[Path], list[Path]]:
    """(folders holding event files, folders skipped as already seen), symlinks followed."""
    import os

    seen: set[tuple[int, int]] = set()
    runs, loops = [], []
    for folder, subfolders, files in os.walk(root, followlinks=True):
        try:
            info = os.stat(folder)
        except OSError:  # a dangling link
            subfolders[:] = []
            continue
        if (info.st_dev, info.st_ino) in seen:
            loops.append(Path(folder))
            subfolders[:] = []
            continue
        seen.add((info.st_dev, info.st_ino))
        if any(
            EVENT_FILE_MARK in name and os.path.isfile(os.path.join(folder, name)) for name in files
        ):
            runs.append(Path(folder))
    return runs, loops


def check_event_files(paths: list[Path]) -> dict[Path, str]:
    """Why TensorBoard cannot read each damaged file to its end; whole files are left out.

    TensorBoard's loader swallows a truncated or corrupt record and quietly stops, so
    damage would otherwise go unnoticed. An event file is a TFRecord file: each record is
    a length, its CRC, the data (an Event proto) and the data's CRC. We walk the records
    ourselves (`runinfo.Records`) and check both CRCs with google-crc32c (in C; TensorBoard's
    own CRC is Python), so no TensorFlow is needed to say where a file goes wrong.
    """
    return {path: problem for path in paths if (problem := _structure_problem(path))}


def check_event_file(path: str | Path) -> str | None:
    """Why TensorBoard cannot read `path` to its end, or None when every record is whole."""
    return check_event_files([Path(path)]).get(Path(path))


def _structure_problem(path: Path) -> str | None:
    """Walk the records: each length and its CRC, each record whole, its data's CRC, an Event."""
    records = EventRecords(path)
    for _ in records:
        pass
    return records.problem


class EventRecords:
    """The Events of one event file in order, up to its first damaged record.

    The records are walked by `runinfo.Records` (the one TFRecord framing), both CRCs
    checked; where a record is damaged or its data is not an Event it stops, as
    TensorBoard's loader does, and `problem` says why.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.problem: str | None = None

    def __iter__(self):
        from tensorboard.compat.proto import event_pb2

        records = Records(self.path.read_bytes())
        parse = event_pb2.Event.FromString
        for offset, _, data in records:
            try:
                event = parse(data)
            except Exception:  # protobuf's DecodeError: the bytes are not an Event
                records.stop(offset, "malformed: {}", "is not an Event")
                break
            yield event
        self.problem = records.problem


def load_runs(
    logdir: str | Path, plugins: Collection[str] | None = None, ends_only: bool = False
) -> list[tuple[str, RunData]]:
    """Load every run under `logdir` (as `load_run` does), warning (DamagedEventFile) about
    each damaged file.

    A damaged file does not stop the others: its readable records are still loaded, as
    TensorBoard would show them; a run that cannot be loaded at all is left out.
    """
    import warnings

    found = find_runs(logdir)
    event_files = [f for _, folder in found for f in sorted(folder.glob(f"*{EVENT_FILE_MARK}*"))]
    for event_file, problem in sorted(check_event_files(event_files).items()):
        warnings.warn(f"{event_file}: {problem}", DamagedEventFile, stacklevel=2)
    loaded = []
    for name, folder in found:
        try:
            loaded.append((name, load_run(folder, plugins, ends_only)))
        except Exception as error:
            warnings.warn(f"{folder}: run left out ({error})", DamagedEventFile, stacklevel=2)
    return loaded


def final_scalars(run: RunData) -> dict[str, tuple[int, float]]:
    """Each scalar tag's last (step, value): what the run ended with."""
    finals = {}
    for tag in run.tags(SCALARS):
        points = run.scalars(tag)
        if points:
            finals[tag] = points[-1]
    return finals
