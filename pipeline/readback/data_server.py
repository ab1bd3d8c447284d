"""Every run's final scalars through TensorBoard's own data server ("rustboard").

Kept for its measured gain: `tbpipe report` of a sweep reads every event in Python
otherwise (`scalars.py`); the data server, the Rust reader the dashboard itself uses
(package tensorboard-data-server), reads a 100-job default sweep's first report in about a
quarter of the Python reader's CPU time, measured side by side in docs/PERFORMANCE.md,
"Reading runs back" (with the command). We start it once on the logdir (`--reload once`,
127.0.0.1, a free port), wait for its load cycle, and ask it through TensorBoard's own
client (`GrpcDataProvider`); the server's flags and that client are not documented, so
both are in pipeline/compat.py, tested there.

What it gives must be what the Python reader gives (tests/test_report_reader.py compares
them), so only runs where the two agree by construction are taken from the server:
- runs with one event file (a restart's second file brings TensorBoard's SessionLog
  purge, which only the Python reader follows);
- files the server read without a warning (`--checksum`: every record's CRCs, as the
  Python reader checks them) and that end on a whole record (the server stops silently
  at a truncated one, taking the file for one still being written);
- runs the server lists.
Every other run, and every run when the server is missing or fails, is read by the
Python reader, so warnings and rows stay the same. One known difference: in a single
version-2 file whose steps go back without a restart marker, the server (as the
dashboard) keeps the steps written last; the Python reader also keeps the older, higher
steps, and reports the highest.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from pipeline.compat import DATA_SERVER_LOADED, data_server_client, data_server_command
from pipeline.readback.runs import SCALARS, RunData, find_runs
from pipeline.readback.scalars import ScalarRun, load_scalar_runs
from pipeline.runinfo import EVENT_FILE_MARK, ends_on_a_whole_record

#: what the server keeps of each series: the last scalar (it always keeps the latest
#: record), nothing of TensorBoard's other plugins; it still reads every record, but does
#: not keep and convert 100 histograms and 10 images a tag
KEEP = "scalars=1," + ",".join(
    f"{plugin}=0"
    for plugin in ("histograms", "images", "audio", "text", "hparams", "graphs", "pr_curves")
)


def load_final_scalars(logdir: str | Path, server: str | None = None) -> list[tuple[str, RunData]]:
    """Each run under `logdir` with each scalar tag's last step, as
    `scalars.load_scalar_runs(logdir, ends_only=True)` ends them, with the same warnings;
    `server` is the data server's binary (default: the installed one)."""
    found = find_runs(logdir)
    served = serve_final_scalars(logdir, {name: event_files(path) for name, path in found}, server)
    return load_scalar_runs(logdir, ends_only=True, known=served, found=found)


def serve_final_scalars(
    logdir: str | Path,
    files: dict[str, list[Path]],
    server: str | None = None,
    wanted: set[str] | None = None,
) -> dict[str, ScalarRun]:
    """The runs (of `wanted`, default all) the server can answer for, with each scalar tag's
    last step; `files`: every run's event files (name -> `event_files`); {} without a server."""
    single = {
        name: run_files[0]
        for name, run_files in files.items()
        if len(run_files) == 1 and (wanted is None or name in wanted)
    }
    every_file = [file for run_files in files.values() for file in run_files]
    binary = server if server is not None else installed_server()
    if not single or binary is None:
        return {}
    return read_through_server(logdir, binary, single, every_file)


def installed_server() -> str | None:
    """The data server binary TensorBoard would start, or None when it is not installed."""
    try:
        from tensorboard_data_server import server_binary
    except ImportError:
        return None
    binary = server_binary()
    return binary if binary and os.access(binary, os.X_OK) else None


def event_files(path: Path) -> list[Path]:
    """A run's event files, as the Python reader lists them (name order, files only)."""
    return [
        path / name
        for name in sorted(os.listdir(path))
        if EVENT_FILE_MARK in name and (path / name).is_file()
    ]


def read_through_server(
    logdir: str | Path, binary: str, single: dict[str, Path], every_file: list[Path]
) -> dict[str, ScalarRun]:
    """run name -> ScalarRun (last step of each scalar tag) for the runs of `single` (name ->
    its one event file) that the server read whole; {} when the server fails. `every_file`:
    the logdir's event files (a warning naming one not in `single` is no news)."""
    with tempfile.TemporaryDirectory(prefix="tbpipe-report-") as tmp:
        port_file = Path(tmp) / "port"
        try:
            process = subprocess.Popen(
                data_server_command(binary, logdir, port_file, KEEP),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
            )
        except OSError:  # not executable, not found
            return {}
        try:
            # the server loads in its own threads; meanwhile, the files' ends are checked here
            whole = {name: file for name, file in single.items() if ends_on_a_whole_record(file)}
            warnings_seen = _wait_for_load(process)
            if warnings_seen is None or not port_file.is_file():
                return {}
            trusted = _trusted(whole, warnings_seen, every_file)
            if trusted is None:
                return {}
            return _ask(int(port_file.read_text()), trusted)
        except Exception:  # noqa: BLE001 - any failure of the server: the Python reader reads
            return {}
        finally:
            process.stdin.close()
            process.stderr.close()
            process.wait()


def _wait_for_load(process: subprocess.Popen) -> list[str] | None:
    """The server's warning lines up to the end of its load cycle; None if it ended first."""
    warnings_seen = []
    for line in process.stderr:
        if DATA_SERVER_LOADED in line:
            return warnings_seen
        if " INFO " not in line:
            warnings_seen.append(line)
    return None


def _trusted(
    whole: dict[str, Path], warnings_seen: list[str], every_file: list[Path]
) -> dict[str, Path] | None:
    """The runs of `whole` no warning names ("Read error in <file>: ...", e.g. a bad CRC or
    a NaN wall time); None when a warning names no event file we know (e.g. "While loading
    log directory: ..."): which runs it concerns, it does not say."""
    ours = {str(file): name for name, file in whole.items()}
    others = [str(file) for file in every_file]
    named = set()
    for line in warnings_seen:
        hits = {name for path, name in ours.items() if path in line}
        if not hits and not any(path in line for path in others):
            return None
        named |= hits
    return {name: file for name, file in whole.items() if name not in named}


def _ask(port: int, runs: dict[str, Path]) -> dict[str, ScalarRun]:
    """Each run's last scalar values, from the server on `port`, through TensorBoard's client."""
    import grpc

    address = f"127.0.0.1:{port}"
    with grpc.insecure_channel(address) as channel:
        provider = data_server_client(address, channel)
        listed = {run.run_name for run in provider.list_runs(None, experiment_id="")}
        last = provider.read_last_scalars(None, experiment_id="", plugin_name=SCALARS)
    served = {}
    for name, file in runs.items():
        if name not in listed:
            continue  # e.g. a file without one whole event: the Python reader says why
        series = {
            tag: [(datum.step, float(np.float32(datum.value)))]  # the float32 written
            for tag, datum in last.get(name, {}).items()
        }
        served[name] = ScalarRun(path=file.parent, series=series)
    return served
