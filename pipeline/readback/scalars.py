"""Every scalar of a run in one pass over its event files, by TensorBoard's own rules.

The one Python reader of scalars: `tbpipe report`, `api.read_run` and a sweep's mean runs
over seeds read through it. TensorBoard's `EventAccumulator` (readback/runs.py) migrates
every record, puts it through reservoirs and decodes it to a numpy array, histograms and
images included; here each record is walked and checked once (`runinfo.Records`: its
length and data CRC-32C, in C), parsed with TensorBoard's own Event proto, and only the
values of scalar tags are decoded: about a fifth of the accumulator's CPU time on the
same runs, measured side by side (docs/PERFORMANCE.md, "Reading runs back").

What the accumulator would give is what this gives (tests/test_scalars.py compares them
on real runs): event files in name order, a file read up to its first damaged record (the
damage reported, as `runs.check_event_files` words it), a tag's plugin from the first
metadata it carries, TF1 `simple_value`s as scalars, duplicates kept in step order, and
TensorBoard's purge of orphaned steps (a restart's SessionLog.START in version-2 files,
an out-of-order step in older ones).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tensorboard.backend.event_processing.event_util import ParseFileVersion
from tensorboard.compat.proto import event_pb2

from pipeline.readback.runs import (
    EVENT_FILE_MARK,
    SCALARS,
    DamagedEventFile,
    EventRecords,
    RunData,
    find_runs,
)

#: the plugin a TF1 value kind becomes when TensorBoard migrates it to a tensor
MIGRATED_PLUGINS = {"simple_value": SCALARS, "histo": "histograms", "image": "images"}
MIGRATED_PLUGINS["audio"] = "audio"
#: a writer's (re)start: in version-2 files, TensorBoard's sign of a restart
SESSION_START = event_pb2.SessionLog.START


@dataclass
class ScalarRun:
    """One run's scalar series and what stopped the reading of any of its files."""

    path: Path
    #: tag -> [(step, value)] in step order (steps written twice appear twice, as in TensorBoard)
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    #: event file -> why it could not be read to its end
    problems: dict[Path, str] = field(default_factory=dict)

    def as_run_data(self) -> RunData:
        """The same run as `runs.load_run(path, {SCALARS})` returns it."""
        import numpy as np

        series = {tag: [(s, np.float32(v)) for s, v in pts] for tag, pts in self.series.items()}
        return RunData(path=self.path, series={SCALARS: series} if series else {})


def read_scalars(path: str | Path, ends_only: bool = False) -> ScalarRun:
    """Every scalar tag of the run in `path` (e.g. `<run dir>/train`); `ends_only` keeps
    each tag's first and last step only (what a report shows)."""
    run = ScalarRun(path=Path(path))
    state = _Reading()
    for name in sorted(os.listdir(path)):
        file = Path(path) / name
        if EVENT_FILE_MARK in name and file.is_file():
            problem = state.read_file(file)
            if problem is not None:
                run.problems[file] = problem
    for tag, points in state.points.items():
        if state.plugin.get(tag) != SCALARS:
            continue
        points.sort(key=lambda point: point[0])  # stable: a step written twice keeps its order
        if ends_only and len(points) > 2:
            points = [points[0], points[-1]]
        steps, raws = zip(*points, strict=True) if points else ((), ())
        run.series[tag] = list(zip(steps, _numbers(raws), strict=True))
    return run


def load_scalar_runs(
    logdir: str | Path,
    ends_only: bool = False,
    known: dict[str, ScalarRun] | None = None,
    found: list[tuple[str, Path]] | None = None,
) -> list[tuple[str, RunData]]:
    """Every run under `logdir` with its scalars, as `runs.load_runs(logdir, {SCALARS},
    ends_only)` gives them, warning (DamagedEventFile) about each damaged file the same way.

    `known`: runs already read another way (TensorBoard's data server, `data_server.py`;
    the report's cache), taken as they are; `found`: `find_runs(logdir)`, if already walked."""
    read, left_out = read_scalar_runs(
        find_runs(logdir) if found is None else found, ends_only, known
    )
    warn_about(read, left_out)
    return [(name, run.as_run_data()) for name, run in read]


def read_scalar_runs(
    found: list[tuple[str, Path]], ends_only: bool = False, known: dict | None = None
) -> tuple[list[tuple[str, ScalarRun]], list[str]]:
    """Each run of `found` (name, path) read, or taken from `known` (name -> ScalarRun);
    and a line for each run left out because it could not be read at all."""
    read, left_out, known = [], [], known or {}
    for name, path in found:
        if name in known:
            read.append((name, known[name]))
            continue
        try:
            read.append((name, read_scalars(path, ends_only)))
        except Exception as error:  # e.g. a file we may not read
            left_out.append(f"{path}: run left out ({error})")
    return read, left_out


def warn_about(read: list[tuple[str, ScalarRun]], left_out: list[str]) -> None:
    """The warnings (DamagedEventFile) `runs.load_runs` gives: runs left out, then each
    damaged file in path order."""
    import warnings

    for line in left_out:
        warnings.warn(line, DamagedEventFile, stacklevel=3)
    problems = {file: problem for _, run in read for file, problem in run.problems.items()}
    for event_file, problem in sorted(problems.items()):
        warnings.warn(f"{event_file}: {problem}", DamagedEventFile, stacklevel=3)


class _Reading:
    """What TensorBoard's accumulator tracks while it reads a run's files, scalars only."""

    def __init__(self) -> None:
        self.plugin: dict[str, str] = {}  # tag -> plugin of its first metadata
        self.points: dict[str, list[tuple[int, object]]] = {}  # tag -> (step, raw value)
        self.version_2 = False  # file_version >= 2: restarts are marked by SessionLog.START
        self.seen_session_start = False
        self.most_recent_step = -1

    def read_file(self, file: Path) -> str | None:
        """Read one event file's records in order; why it stops early, or None."""
        records = EventRecords(file)
        for event in records:
            self.take(event)
        return records.problem

    def take(self, event) -> None:
        """One event, as `EventAccumulator._ProcessEvent` takes it (scalars kept raw).

        TensorBoard drops the steps a restarted writer writes again (purge_orphaned_data):
        from a second SessionLog.START on in version-2 files, else from a summary whose
        step goes back, for that summary's tags."""
        if event.WhichOneof("what") != "summary":
            self.take_other(event)
            return
        step = event.step
        if step < self.most_recent_step and not self.version_2:
            tags = {value.tag for value in event.summary.value}
            self.drop_from(step, {t: p for t, p in self.points.items() if t in tags})
        self.most_recent_step = step
        plugin, points = self.plugin, self.points
        for value in event.summary.value:
            kind, tag = value.WhichOneof("value"), value.tag
            if tag not in plugin:
                if kind in MIGRATED_PLUGINS:
                    plugin[tag] = MIGRATED_PLUGINS[kind]
                elif value.HasField("metadata"):
                    plugin[tag] = value.metadata.plugin_data.plugin_name
            if kind == "tensor":
                raw = value.tensor
                tag = tag or value.node_name
            elif kind == "simple_value":
                raw = value.simple_value
            elif kind in MIGRATED_PLUGINS:  # a TF1 histogram, image or audio clip
                raw = None
            else:
                continue
            if tag in points:
                points[tag].append((step, raw))
            else:
                points[tag] = [(step, raw)]

    def take_other(self, event) -> None:
        """An event without a summary: the file's version, or a (re)start of its writer."""
        if event.HasField("file_version"):
            version = ParseFileVersion(event.file_version)
            self.version_2 = bool(version and version >= 2)
        elif self.version_2 and event.session_log.status == SESSION_START:
            if self.seen_session_start:
                self.drop_from(event.step, self.points)
            self.seen_session_start = True

    @staticmethod
    def drop_from(step: int, points: dict[str, list]) -> None:
        for series in points.values():
            series[:] = [point for point in series if point[0] < step]


#: TensorFlow's dtype enum -> (struct format in native order, as numpy reads tensor_content;
#: its size; the repeated field a proto may hold the value in instead)
SCALAR_FIELDS = {1: ("=f", 4, "float_val"), 2: ("=d", 8, "double_val")}  # DT_FLOAT, DT_DOUBLE


def _numbers(raws: Sequence[object]) -> list[float]:
    """A tag's values, as `_number` decodes each; in one numpy call when every value is
    one float32 (or float64) in `tensor_content`, as TF2's writers store them."""
    import numpy as np

    kinds = {type(raw) for raw in raws}
    if len(kinds) == 1 and not issubclass(kinds.pop(), float | type(None)):
        dtypes = {raw.dtype for raw in raws}
        contents = [raw.tensor_content for raw in raws]
        form = SCALAR_FIELDS.get(dtypes.pop()) if len(dtypes) == 1 else None
        if form is not None and all(len(content) == form[1] for content in contents):
            return np.frombuffer(b"".join(contents), dtype=form[0]).tolist()
    return [_number(raw) for raw in raws]


def _number(value: object) -> float:
    """A scalar's value as TensorBoard decodes it (`tensor_util.make_ndarray`), as a float."""
    if isinstance(value, float):  # a TF1 simple_value (a float32 in the proto)
        return value
    kind = SCALAR_FIELDS.get(value.dtype)
    if kind is not None:
        form, size, repeated = kind
        content = value.tensor_content
        if len(content) == size:  # one value: what tf.summary.scalar writes
            return struct.unpack(form, content)[0]
        values = getattr(value, repeated)
        if not content and len(values) == 1 and not value.tensor_shape.dim:
            return values[0]  # a 0-d tensor made by make_tensor_proto
    from tensorboard.util import tensor_util

    return float(tensor_util.make_ndarray(value))
