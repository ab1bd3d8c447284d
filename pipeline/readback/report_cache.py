"""What `tbpipe report` read of each run last time, reused while its event files are unchanged.

Kept for its measured gain: a report of a sweep that has not changed since its last
report (or since the sweep ended: a sweep fills it, `remember`) reads no event file, and
takes about half the CPU time of a first report through the data server, measured side by
side in docs/PERFORMANCE.md, "Reading runs back" (with the command). Each run's final
scalars, and why any of its files could not be read to its end, are kept in one JSON file
per logdir in the user's cache (`$TBPIPE_CACHE_DIR`, else `$XDG_CACHE_HOME/tbpipe`, else
~/.cache/tbpipe), keyed by each event file's name, size, mtime, ctime and inode: a write
changes the size or the ctime (which no one can set back), a replaced file its inode. Each
entry carries a checksum of what it holds: one edited by hand is not shown, but read again. Files
are stat'ed before they are read, so one that grows meanwhile is read again next time.
What cannot be read or written there is read afresh; the report is the same either way
(tests/test_report_reader.py). A sweep fills it for its own dir as it ends (`remember`),
taking the final scalars of the runs its process has just written as it wrote them
(tests/test_summary_cache.py) and reading the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from pipeline.readback import data_server
from pipeline.readback.runs import EVENT_FILE_MARK, RunData, find_runs
from pipeline.readback.scalars import ScalarRun, read_scalar_runs, warn_about
from pipeline.runinfo import user_cache_dir

#: bump when what an entry holds changes: older files are then ignored
FORMAT = 2
#: the server reads the whole logdir, several times faster than the Python reader reads the
#: runs left, and costs a start: it is started when more is left than this share of the
#: logdir's bytes plus MIN_SERVER_BYTES
SERVER_SHARE = 1 / 6
MIN_SERVER_BYTES = 2 * 2**20


#: a run's final scalars as the process that wrote it knows them: tag -> (step, value)
Finals = Mapping[str, tuple[int, float]]


def load_final_scalars(
    logdir: str | Path, server: str | None = None, written: Mapping[str, Finals] | None = None
) -> list[tuple[str, RunData]]:
    """Each run under `logdir` with each scalar tag's last step, with the same warnings, as
    `data_server.load_final_scalars` gives them; unchanged runs come from the cache.
    `written`: run name -> its final scalars, from the process that has just written the
    run (`written_runs`): taken instead of reading its event file."""
    found = find_runs(logdir)
    stamps = {name: file_stamps(path) for name, path in found}
    paths = dict(found)
    cache_file = cache_path(logdir)
    entries = _read(cache_file) if cache_file is not None else {}
    remembered = {name: _run(paths[name], entries.get(name), stamps[name]) for name in paths}
    known = {name: run for name, run in remembered.items() if run is not None}
    unread = {name: stamps[name] for name in paths if name not in known}
    known |= written_runs(paths, stamps, {n: f for n, f in (written or {}).items() if n in unread})
    left = {name: files for name, files in unread.items() if name not in known}
    if worth_a_server(left, stamps):
        files = {name: [paths[name] / file[0] for file in stamps[name] or ()] for name in paths}
        known |= data_server.serve_final_scalars(logdir, files, server, wanted=set(left))
    read, left_out = read_scalar_runs(found, ends_only=True, known=known)
    if cache_file is not None and unread:
        entries = {name: _entry(run, stamps[name]) for name, run in read if stamps[name]}
        _write(cache_file, entries)
    warn_about(read, left_out)
    return [(name, run.as_run_data()) for name, run in read]


def remember(logdir: str | Path, written: Mapping[str, Finals] | None = None) -> None:
    """Read `logdir`'s final scalars into the cache now: a sweep does it as it ends, so that
    even the first `tbpipe report` of it reads no event file. `written`: the runs whose
    final scalars the sweep's process holds (the jobs its launcher wrote from arrays, the
    mean runs), not read back. Says nothing: the report tells of damaged files, and a
    failure here only leaves the reading to the report."""
    import logging
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            load_final_scalars(logdir, written=written)
        except Exception as error:  # noqa: BLE001  never a reason to fail a finished sweep
            logging.getLogger(__name__).debug("report cache of %s not filled: %s", logdir, error)


def written_runs(
    paths: Mapping[str, Path], stamps: Mapping[str, list | None], written: Mapping[str, Finals]
) -> dict[str, ScalarRun]:
    """The runs of `written` as reading them would give them (each tag's last step): those
    whose folder holds one event file, the one its writer has just closed. A folder with
    more (an earlier attempt's file beside it, read in name order) is read."""
    runs = {}
    for name, finals in written.items():
        files = stamps.get(name)
        if name in paths and files is not None and len(files) == 1:
            series = {tag: [(int(step), float(value))] for tag, (step, value) in finals.items()}
            runs[name] = ScalarRun(path=paths[name], series=series)
    return runs


def file_stamps(path: Path) -> list[list] | None:
    """[name, size, mtime_ns, ctime_ns, inode] of each event file of the run in `path`, in
    name order (as the readers take them); None if they cannot be listed (gone meanwhile)."""
    stamps = []
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if EVENT_FILE_MARK in entry.name and entry.is_file():
                    info = entry.stat()
                    stamp = [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]
                    stamps.append([entry.name, *stamp])
    except OSError:
        return None
    return sorted(stamps)


def worth_a_server(unread: dict[str, list], stamps: dict[str, list]) -> bool:
    """Whether the runs left to read are enough bytes to start the server on the logdir."""
    left = sum(file[1] for files in unread.values() for file in files or ())
    total = sum(file[1] for files in stamps.values() for file in files or ())
    return left > SERVER_SHARE * total + MIN_SERVER_BYTES


def cache_path(logdir: str | Path, kind: str = "report") -> Path | None:
    """The cache file of `logdir` (named by its resolved path) among the `kind` files (the
    report's; `board`: the tbpipe tab's digest), or None without a home."""
    root = user_cache_dir()
    if root is None:
        return None
    name = hashlib.sha256(os.fsencode(Path(logdir).resolve())).hexdigest()[:32]
    return Path(root) / kind / f"{name}.json"


def _entry(run: ScalarRun, stamps: list[list]) -> dict:
    """A run as the cache keeps it: its files' stamps, each tag's last step and value (the
    float32's exact hex: NaN and infinities stay strict JSON), its files' problems."""
    entry = {
        "files": stamps,
        "scalars": {
            tag: [points[-1][0], points[-1][1].hex()] for tag, points in run.series.items()
        },
        "problems": {file.name: problem for file, problem in run.problems.items()},
    }
    return {**entry, "checksum": checksum(entry)}


def checksum(entry: dict) -> str:
    """SHA-256 of an entry's files, scalars and problems: a value edited in the cache file
    (by hand, or by a broken disk) no longer matches it, and the run is read afresh."""
    kept = {key: entry.get(key) for key in ("files", "scalars", "problems")}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def _run(path: Path, entry: object, stamps: list[list] | None) -> ScalarRun | None:
    """The run in `path` as the cache kept it, or None if its files changed since (or the
    entry is not one this module wrote)."""
    try:
        if stamps is None or entry["files"] != stamps or entry["checksum"] != checksum(entry):
            return None
        scalars = entry["scalars"].items()
        series = {tag: [(int(step), float.fromhex(value))] for tag, (step, value) in scalars}
        problems = {path / name: str(problem) for name, problem in entry["problems"].items()}
    except (TypeError, KeyError, ValueError, AttributeError):
        return None
    return ScalarRun(path=path, series=series, problems=problems)


def _read(cache_file: Path) -> dict:
    try:
        document = json.loads(cache_file.read_text())
    except (OSError, ValueError):  # none yet, unreadable, or cut short
        return {}
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return {}
    runs = document.get("runs")
    return runs if isinstance(runs, dict) else {}


def _write(cache_file: Path, entries: dict) -> None:
    """Replace the cache file in one rename (a report running alongside reads old or new)."""
    document = json.dumps({"format": FORMAT, "runs": entries}, allow_nan=False)
    temporary = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(document)
        os.replace(temporary, cache_file)
    except OSError:  # a read-only or full disk: the next report reads afresh
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
