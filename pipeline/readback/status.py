"""`tbpipe status DIR [--json]`: every job of a sweep (or a run): state, step, wall time.

DIR is a sweep dir, a run dir or a folder of them (`outputs/`: every run in it); `--json`
prints a list of objects (job, run_dir, state, step, steps_planned, seconds, setting,
reason, checkpoint_step, host, pid, main_metric, value, final).

Usable while the sweep runs, and fast on hundreds of jobs: it reads only small files
(multirun.yaml once, each job's metrics.json) and imports no TensorFlow. A sweep's jobs
are the ones its recorded overrides make (Hydra's basic sweeper: the cartesian product,
in Hydra's order; an Optuna search: `n_trials`), so a job that never started is listed
as `pending`. A run whose metrics.json still says `running` but whose process is gone is
`died` (`pipeline.runinfo.state_of`: the pid on this host, or no heartbeat from another
host for `runinfo.SILENT_FOR` seconds). Exit 0 only when every job completed.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.check.errors import EXIT_BAD_INPUT, OneLineParser
from pipeline.check.text_table import Column, number, text_table
from pipeline.runinfo import (
    COMPLETED,
    DIED,
    FAILED,
    METRICS_FILE,
    RUNNING,
    saved_checkpoints,
    state_of,
)

PROG = "tbpipe status"
SWEEP_FILE = "multirun.yaml"
#: a job dir's name starts with its number (pipeline/sweeps/naming.py)
JOB_NUMBER = re.compile(r"^(\d+)(?:_|$)")


@dataclass
class JobStatus:
    """One row of the table (and one object of `--json`)."""

    job: int
    run_dir: str | None  # None: the job has no dir yet
    state: str  # one of runinfo.STATES
    step: int | None  # steps reached (as of the last heartbeat while running)
    steps_planned: int | None
    seconds: float | None  # wall time: so far while running, until the end once ended
    setting: str  # the job's overrides, as typed
    reason: str | None = None
    checkpoint_step: int | None = None  # where `tbpipe resume` would go on from
    host: str | None = None
    pid: int | None = None
    main_metric: str | None = None  # the scalar its task is judged by (`test/accuracy`)
    value: float | None = None  # its last value, once the run ended
    final: dict[str, Any] | None = None  # every scalar's last value, `<writer>/<tag>`


def load_yaml(path: Path) -> Any:
    """A saved YAML file read as OmegaConf reads it, faster (PyYAML's C loader)."""
    from pipeline.compat import fast_yaml_loader

    return yaml.load(path.read_text(), Loader=fast_yaml_loader())


def read_metrics_file(run_dir: Path) -> tuple[dict[str, Any] | None, float | None]:
    """metrics.json and its mtime (the heartbeat), or (None, None) when there is none yet."""
    path = run_dir / METRICS_FILE
    try:
        return json.loads(path.read_text()), path.stat().st_mtime
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError):  # edited by hand, unreadable: a failed run, saying why
        return {"status": FAILED, "reason": f"{METRICS_FILE} cannot be read"}, None


def job_status(num: int, run_dir: Path | None, setting: str, planned: int | None) -> JobStatus:
    """The row of one job from its dir (None: not started)."""
    metrics, mtime = read_metrics_file(run_dir) if run_dir is not None else (None, None)
    state = state_of(metrics, mtime)
    metrics = metrics or {}
    row = JobStatus(
        job=num,
        run_dir=None if run_dir is None else str(run_dir),
        state=state,
        step=metrics.get("steps"),
        steps_planned=metrics.get("steps_planned", planned),
        seconds=metrics.get("seconds"),
        setting=setting,
        reason=metrics.get("reason"),
        # the newest complete checkpoint on disk: metrics.json names it a moment later
        checkpoint_step=newest_checkpoint(run_dir, metrics.get("checkpoint_step")),
        host=metrics.get("host"),
        pid=metrics.get("pid"),
        main_metric=metrics.get("main_metric"),
        value=(metrics.get("final") or {}).get(metrics.get("main_metric")),
        final=metrics.get("final"),
    )
    started, heard = metrics.get("started_at"), metrics.get("heartbeat_at")
    if state == RUNNING and started is not None:
        row.seconds = round(time.time() - started, 1)
    elif state == DIED:
        if started is not None and heard is not None:
            row.seconds = round(heard - started, 1)
        where = f"pid {row.pid} on {row.host}" if row.pid is not None else "its process"
        row.reason = f"metrics.json says running but {where} is gone"
        if mtime is not None and metrics.get("host") and row.pid is not None:
            row.reason += f" (last heard {time.time() - mtime:.0f} s ago)"
    return row


def newest_checkpoint(run_dir: Path | None, recorded: int | None) -> int | None:
    """The step of the run's newest complete checkpoint on disk, else what metrics.json says."""
    found = saved_checkpoints(run_dir) if run_dir is not None else []
    return found[0] if found else recorded


def recorded_sweep(sweep_dir: Path) -> dict[str, Any]:
    """What the sweep recorded: multirun.yaml (Hydra's basic sweeper writes it), else the
    first job's .hydra/hydra.yaml and config.yaml (Hydra's Optuna sweeper writes none)."""
    if (sweep_dir / SWEEP_FILE).is_file():
        return load_yaml(sweep_dir / SWEEP_FILE)
    for _, run_dir in sorted(job_dirs(sweep_dir).items()):
        if (run_dir / ".hydra" / "hydra.yaml").is_file():
            config = load_yaml(run_dir / ".hydra" / "config.yaml") or {}
            return {**config, **load_yaml(run_dir / ".hydra" / "hydra.yaml")}
    raise ValueError(f"{sweep_dir} is neither a sweep dir (no {SWEEP_FILE}) nor a run dir")


def is_search(recorded: dict[str, Any]) -> bool:
    """A sweep whose jobs a search chose (an Optuna search), not a grid of the values given
    (Hydra's basic sweeper or tbpipe's, which numbers jobs the same way)."""
    from pipeline.check.schema import TBPIPE_SWEEPER
    from pipeline.compat import BASIC_SWEEPER

    sweeper = recorded["hydra"].get("sweeper") or {}
    return sweeper.get("_target_", BASIC_SWEEPER) not in (BASIC_SWEEPER, TBPIPE_SWEEPER)


def sweep_jobs(recorded: dict[str, Any]) -> list[tuple[int, list[str] | None]]:
    """Every job the sweep makes: (number, overrides), in job order. An Optuna search's
    trials are only known once run: their overrides are None."""
    overrides = [str(o) for o in recorded["hydra"]["overrides"]["task"]]
    sweeper = recorded["hydra"].get("sweeper") or {}
    if is_search(recorded):
        return [(num, None) for num in range(int(sweeper.get("n_trials") or 0))]
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from pipeline.compat import split_sweep

    parsed = OverridesParser.create().parse_overrides(overrides)
    jobs = [job for batch in split_sweep(parsed) for job in batch]
    return list(enumerate(list(job) for job in jobs))


def job_number(name: str) -> int | None:
    """The job number a job dir's name starts with (`12_noise_std=0.1`, `12`), else None."""
    match = JOB_NUMBER.match(name)
    return int(match.group(1)) if match else None


def job_dirs(sweep_dir: Path) -> dict[int, Path]:
    """The job dirs found in a sweep dir, by job number."""
    found = {}
    for path in sweep_dir.iterdir():
        num = job_number(path.name)
        if num is not None and path.is_dir():
            found[num] = path
    return found


def planned_steps(default: int | None, overrides: Sequence[str]) -> int | None:
    """trainer.steps of a job that has not started: its override, else the sweep's."""
    for override in overrides:
        key, _, value = override.partition("=")
        if key.lstrip("+~") == "trainer.steps" and value.isdigit():
            return int(value)
    return default


def sweep_status(sweep_dir: Path) -> list[JobStatus]:
    """A row for every job of the sweep, started or not, in job order."""
    recorded = recorded_sweep(sweep_dir)
    default_steps = (recorded.get("trainer") or {}).get("steps")
    dirs = job_dirs(sweep_dir)
    rows = []
    for num, overrides in sweep_jobs(recorded):
        run_dir = dirs.pop(num, None)
        if overrides is None and run_dir is not None:  # a trial that ran: its overrides
            overrides = recorded_overrides(run_dir)
        planned = planned_steps(default_steps, overrides or [])
        rows.append(job_status(num, run_dir, " ".join(overrides or []), planned))
    for num, run_dir in sorted(dirs.items()):  # dirs beyond what the overrides make
        setting = " ".join(recorded_overrides(run_dir))
        rows.append(job_status(num, run_dir, setting, None))
    return rows


def recorded_overrides(run_dir: Path) -> list[str]:
    """A run's overrides, from the .hydra/overrides.yaml Hydra wrote (empty if none)."""
    try:
        return [str(o) for o in load_yaml(run_dir / ".hydra" / "overrides.yaml") or []]
    except OSError:
        return []


def status_of(path: Path) -> list[JobStatus]:
    """Rows for a sweep dir (every job) or a run dir (one row). ValueError: neither."""
    if (path / METRICS_FILE).is_file() or (path / ".hydra").is_dir():
        return [job_status(0, path, " ".join(recorded_overrides(path)), None)]
    return sweep_status(path)


def folder_status(folder: Path) -> list[JobStatus]:
    """A row for every run under a folder of runs (e.g. `outputs/`, or `multirun/` with its
    sweeps), numbered in path order; ValueError when it holds none."""
    rows = []
    for found in runs_under(folder):
        found_rows = status_of(found)
        for row in found_rows:
            row.job = len(rows)
            rows.append(row)
    if not rows:
        raise ValueError(f"{folder} is neither a sweep dir ({SWEEP_FILE}) nor a run dir")
    return rows


def runs_under(folder: Path) -> list[Path]:
    """The run dirs and sweep dirs under `folder`, in path order (neither is looked into)."""
    found = []
    for parent, children, files in os.walk(folder):
        children.sort()
        here = Path(parent)
        marked = METRICS_FILE in files or SWEEP_FILE in files or ".hydra" in children
        if here != folder and marked:
            found.append(here)
            children.clear()
    return found


def table(rows: Sequence[JobStatus], folder: Path | None = None) -> str:
    """The rows as text (with the main metric's last value, once a job ended), then how
    many jobs are in each state. `folder`: rows of a folder of runs, each named by its
    dir inside it instead of its setting."""
    metric = next((row.main_metric for row in rows if row.main_metric), "result")
    columns = [
        Column("job", ">", 4),
        Column("state", "<", 11),
        Column("step", ">", 19),
        Column("wall s", ">", 8),
        Column(metric, ">", 14),
        Column("run" if folder is not None else "setting"),
    ]
    cells = []
    for row in rows:
        step = f"{'-' if row.step is None else row.step} / {row.steps_planned or '-'}"
        shown = row.setting or "(defaults)"
        if folder is not None and row.run_dir is not None:
            shown = os.path.relpath(row.run_dir, folder)
        cells.append(
            [str(row.job), row.state, step, number(row.seconds), number(row.value, 4), shown]
        )
    lines = [text_table(columns, cells)]
    lines += [f"job {row.job} {row.state}: {row.reason}" for row in rows if row.reason]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    tally = ", ".join(f"{n} {state}" for state, n in counts.items())
    lines.append(f"{len(rows)} job{'s' if len(rows) != 1 else ''}: {tally}")
    return "\n".join(lines)


def _parser() -> OneLineParser:
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument(
        "dir", type=Path, help="a sweep dir (multirun/...), a run dir, or a folder of them"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list of the jobs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table (or JSON); 0 when every job completed, 1 otherwise, 2 on bad input."""
    args = _parser().parse_args(argv)
    folder = None
    try:
        rows = status_of(args.dir)
    except ValueError:  # neither a sweep dir nor a run dir: a folder of them?
        try:
            rows, folder = folder_status(args.dir), args.dir
        except (ValueError, OSError) as error:
            print(f"{PROG}: {error}; give a sweep dir, a run dir or a folder of them",
                  file=sys.stderr)  # fmt: skip
            return EXIT_BAD_INPUT
    except OSError as error:
        print(f"{PROG}: {error}; give a sweep dir, a run dir or a folder of them", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps([asdict(row) for row in rows], indent=2, allow_nan=False))
    else:
        print(table(rows, folder))
    return 0 if rows and all(row.state == COMPLETED for row in rows) else 1
