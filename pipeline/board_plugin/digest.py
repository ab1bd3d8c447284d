"""The tab's table and curves of a sweep, kept in the user's cache while its jobs' files stay.

Opening the tab of a large sweep otherwise reads every job's overrides and metrics.json and
every run's event files, and loads SciPy for the intervals, each time a TensorBoard starts
(docs/PERFORMANCE.md, "TensorBoard plugin", has the figures). The sweep writes this digest
as it ends (`remember`, beside the report cache: `$TBPIPE_CACHE_DIR/board/`, else the report
cache's default root; the curves only where its event files are few enough bytes); the tab
reads it and checks it against the stamps of each job's files:
`.hydra/overrides.yaml`, metrics.json and the event files of train/ and test/ (size, mtime,
ctime, inode, as readback.report_cache stamps them). A job whose files changed is read again,
and only the settings it belongs to have their curves computed again. The file's first line
carries a SHA-256 of the rest: a digest edited by hand or cut short is not used, the sweep is
read afresh. What cannot be read or written there is read afresh: the page is the same either
way (tests/test_board_plugin.py).

Only the standard library and readback's stamps are imported here: the tab of an unchanged
sweep needs neither NumPy's bands nor Hydra's override parser.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from pipeline.readback.report_cache import cache_path, file_stamps

log = logging.getLogger(__name__)
#: bump when what the digest holds changes: older files are then ignored
FORMAT = 1
#: the first word of a digest file, then FORMAT and the SHA-256 of the body
MARK = "tbpipe-board-digest"
#: the writers a tbpipe run has (conf/writer/): their folders are TensorBoard runs
WRITERS = ("train", "test")
#: event-file bytes up to which a sweep's end reads the curves into the digest too (a
#: 1,000-job sweep of tiny jobs has ~6 MB); past it the sweep would read every event file
#: once more after its seed summary did, and the tab's first reading does it instead
#: (TensorBoard's start reads ahead)
CURVES_AT_SWEEP_END = 64 * 2**20
#: seconds a walk over the jobs' files answers for: the page asks for the table and then the
#: curves, and the walk is most of what an unchanged sweep costs
STAMPS_KEPT_FOR = 1.0


def job_dirs(logdir: Path) -> list[Path]:
    """The runs the page groups, each a folder Hydra gave a `.hydra/`: `logdir` itself, or
    a sweep's job dirs, or the single runs below (`outputs/<date>/<time>`)."""
    logdir = Path(logdir)
    if (logdir / ".hydra" / "overrides.yaml").exists():
        return [logdir]
    for depth in ("*", "*/*", "*/*/*"):  # a sweep; a day's runs; outputs/ or multirun/
        found = sorted(logdir.glob(f"{depth}/.hydra/overrides.yaml"))
        if found:
            return [path.parent.parent for path in found]
    return []


def run_name(job: Path, logdir: Path) -> str:
    """A job as the page names it: its folder relative to the logdir (`.` for the logdir)."""
    return job.relative_to(logdir).as_posix() if job != Path(logdir) else "."


def stamps(logdir: Path) -> dict[str, list]:
    """run -> what changes when the job's row or curves change, for the jobs `job_dirs`
    finds, in its order: the stamps of the job's overrides.yaml and metrics.json (its row),
    then of each writer's event files (its curves). Walked with plain strings: a 1,000-job
    sweep is checked on every request, and pathlib would cost most of the check."""
    root = os.fspath(logdir)
    if os.path.exists(os.path.join(root, ".hydra", "overrides.yaml")):
        return {".": _job_stamp(root)}
    level = [""]
    for _ in range(3):  # as job_dirs: a sweep; a day's runs; outputs/ or multirun/
        level = [
            f"{parent}{entry.name}"
            for parent in level
            for entry in _folders(os.path.join(root, parent))
        ]
        found = {}
        for run in level:
            stamp = _stat(os.path.join(root, run, ".hydra", "overrides.yaml"))
            if stamp is not None:
                found[run] = stamp
        if found:
            runs = sorted(found, key=lambda run: run.split("/"))
            return {run: _job_stamp(os.path.join(root, run), found[run]) for run in runs}
        level = [f"{run}/" for run in level]
    return {}


def _job_stamp(job: str, overrides: list | None = None) -> list:
    if overrides is None:
        overrides = _stat(os.path.join(job, ".hydra", "overrides.yaml"))
    metrics = _stat(os.path.join(job, "metrics.json"))
    return [overrides, metrics] + [file_stamps(os.path.join(job, w)) for w in WRITERS]


def _folders(path: str) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as entries:
            return [e for e in entries if not e.name.startswith(".") and e.is_dir()]
    except OSError:
        return []


class SweepDigest:
    """The tab's views of one logdir: from the digest where the jobs' files are unchanged,
    read (through sweep_view and readback) where they changed; the digest then rewritten."""

    def __init__(self, logdir: str | Path, series: Any = None, rows: Any = None):
        self.logdir = Path(logdir)
        #: the jobs' scalars as a sweep's end has them (sweep_view.SweepSeries), or None:
        #: the curves read each job's event files
        self.series = series
        #: run -> its job's row as a sweep's end read it (`sweep_view.read_job_row` without
        #: `run` and `path`), or None: each job's files are read
        self.rows = rows or {}
        self.file = cache_path(self.logdir, kind="board")
        self._document: dict[str, Any] | None = None  # the digest as last read or written
        self._walked: tuple[float, dict[str, list]] | None = None  # (when, stamps)

    def stamps(self) -> dict[str, list]:
        """run -> the stamps of every job of the logdir (`stamps`), in the page's order;
        the page's second request (the curves, right after the table) takes the first's."""
        now = time.monotonic()
        if self._walked is None or now - self._walked[0] > STAMPS_KEPT_FOR:
            self._walked = (now, stamps(self.logdir))
        return self._walked[1]

    def table(self, stamps: dict[str, list] | None = None) -> dict[str, Any]:
        """`sweep_view.sweep_view` of the jobs: the settings table and the jobs left out."""
        stamps = self.stamps() if stamps is None else stamps
        document = self._read()
        key = _key([[run, stamp[:2]] for run, stamp in stamps.items()])
        kept = document.get("table")
        if isinstance(kept, dict) and kept.get("key") == key:
            return kept["view"]
        from pipeline.board_plugin.sweep_view import sweep_view

        view = sweep_view(self._rows(document, stamps))
        document["table"] = {"key": key, "view": view}
        self._write(document)
        return view

    def curves(self, stamps: dict[str, list] | None = None) -> dict[str, Any]:
        """`{"charts": tags, "curves": setting -> tag -> mean and bands}` over each
        setting's completed jobs; a setting whose jobs are unchanged is not read again."""
        stamps = self.stamps() if stamps is None else stamps
        document = self._read()
        key = _key(list(stamps.items()))
        kept = document.get("curves")
        if not (isinstance(kept, dict) and kept.get("key") == key):
            kept = {"key": key, "settings": self._settings_curves(document, stamps)}
            document["curves"] = kept
            self._write(document)
        curves = {label: setting["curves"] for label, setting in kept["settings"].items()}
        return {"charts": sorted({tag for c in curves.values() for tag in c}), "curves": curves}

    def _settings_curves(self, document: dict, stamps: dict[str, list]) -> dict[str, dict]:
        from pipeline.board_plugin.sweep_view import completed_by_setting, curves

        before = (document.get("curves") or {}).get("settings") or {}
        settings = {}
        for label, done in completed_by_setting(self._rows(document, stamps)).items():
            key = _key([[row["run"], stamps[row["run"]][2:]] for row in done])
            if isinstance(before.get(label), dict) and before[label].get("key") == key:
                settings[label] = before[label]
            else:
                paths = [row["path"] for row in done]
                settings[label] = {"key": key, "curves": curves(paths, self.series)}
        return settings

    def _rows(self, document: dict, stamps: dict[str, list]) -> list[dict[str, Any]]:
        """Every job's row (`sweep_view.read_job_row`), kept ones taken from the digest."""
        from pipeline.board_plugin.sweep_view import read_job_row

        jobs = document.get("jobs") if isinstance(document.get("jobs"), dict) else {}
        rows, kept = [], {}
        for run, stamp in stamps.items():
            path = self.logdir / run
            entry = jobs.get(run)
            if isinstance(entry, dict) and entry.get("stamp") == stamp[:2]:
                row = dict(entry["row"])
            elif run in self.rows:
                row = {**self.rows[run], "run": run}
            else:
                row = read_job_row(path, self.logdir)
                row.pop("path")
            kept[run] = {"stamp": stamp[:2], "row": row}
            rows.append({**row, "path": path})
        document["jobs"] = kept
        return rows

    def _read(self) -> dict[str, Any]:
        """The digest (once a process), or an empty one if there is none to trust."""
        if self._document is None:
            self._document = _load(self.file) if self.file is not None else {}
        return self._document

    def _write(self, document: dict[str, Any]) -> None:
        """Replace the digest in one rename (a TensorBoard reading it sees old or new)."""
        self._document = document
        if self.file is None:
            return
        try:
            body = json.dumps(document, allow_nan=False, default=str)
        except ValueError:  # a value JSON cannot hold strictly: kept in memory only
            return
        temporary = self.file.with_name(f"{self.file.name}.{os.getpid()}.tmp")
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            with open(temporary, "w") as out:
                out.write(f"{MARK} {FORMAT} {_sha256(body)}\n{body}")
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.file)
        except OSError:  # a read-only or full disk: the next TensorBoard reads afresh
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)


def remember(sweep_dir: str | Path, series: Any = None, rows: Any = None) -> None:
    """Write the digest of `sweep_dir` now: a sweep does it as it ends, so that even the
    first TensorBoard of it shows the tab without reading an event file (the curves of a
    sweep of more than CURVES_AT_SWEEP_END bytes of events are left to the tab). `series`:
    the jobs' scalars as the sweep's end has them (sweep_view.SweepSeries: held by its
    launcher, or read once for the seed-mean runs), so no event file is read twice;
    `rows`: run -> its job's row as the sweep's end read it (readback.jobs.read_sweep's
    `config_free`), so no job is read twice. Says nothing: a failure here only leaves the
    reading to the tab."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            digest = SweepDigest(sweep_dir, series, rows)
            stamps = digest.stamps()
            digest.table(stamps)
            if event_bytes(stamps) <= CURVES_AT_SWEEP_END:
                digest.curves(stamps)
        except Exception as error:  # noqa: BLE001  never a reason to fail a finished sweep
            log.debug("tab digest of %s not written: %s", sweep_dir, error)


def event_bytes(stamps: dict[str, list]) -> int:
    """The size of every event file `stamps` names."""
    return sum(f[1] for stamp in stamps.values() for files in stamp[2:] for f in files or ())


def _load(file: Path) -> dict[str, Any]:
    try:
        head, body = file.read_text().split("\n", 1)
        mark, form, checksum = head.split(" ")
        if mark != MARK or form != str(FORMAT) or checksum != _sha256(body):
            return {}
        document = json.loads(body)
    except (OSError, ValueError):  # none yet, unreadable, cut short or edited
        return {}
    return document if isinstance(document, dict) else {}


def _stat(path: str) -> list[int] | None:
    try:
        info = os.stat(path)
    except OSError:  # not written (yet)
        return None
    return [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]


def _key(value: Any) -> str:
    return _sha256(json.dumps(value))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
