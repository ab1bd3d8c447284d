"""`tbpipe resume DIR`: finish a stopped run or sweep (hydra.launcher.* overrides only).

    tbpipe resume <run dir | sweep dir> [hydra.launcher.KEY=VALUE ...]

A run goes on from its latest checkpoint (pipeline/checkpoints.py). A sweep is launched
again as Hydra launched it, same overrides, same sweep dir, so every job keeps its number
and dir name, whatever the launcher (basic, joblib, submitit); each job then does what
its state asks (`pipeline.app.run(resume=True)`): completed and diverged jobs are kept
as they are (their files are not touched), interrupted and died jobs go on from their
checkpoints, failed and missing ones run from the start. The summary at the end covers
every job.

Nothing is resumed when the result could differ from the sweep that was started: the
settings are composed again from the recorded overrides and compared with each job's
recorded config, and the versions in run.json with this tbpipe's. Either difference is
one line and exit 2, with nothing changed. Only `hydra.launcher.*` may be given (more
workers, another partition): they change where jobs run, not what they compute.

How the relaunch keeps finished jobs untouched: `hydra.output_subdir=null` stops Hydra
rewriting each job's .hydra/ (a job that runs again writes it if missing), and
`hydra.job.env_set.TBPIPE_RESUME=1` tells each job it may find its dir already there.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pipeline.check.compose import path_override, searchpath_override
from pipeline.check.errors import BadInput
from pipeline.check.rerun import config_flags
from pipeline.readback.status import (
    SWEEP_FILE,
    is_search,
    job_dirs,
    recorded_overrides,
    recorded_sweep,
    status_of,
)
from pipeline.runinfo import (
    COMPLETED,
    DIVERGED,
    RESUME_ENV,
    RUNNING,
)
from pipeline.sweeps.naming import STAGED_JOB_MARK

#: what `tbpipe resume` adds to the command it relaunches (and drops when it reads one back)
RELAUNCH = ("hydra.output_subdir=null", f"+hydra.job.env_set.{RESUME_ENV}=1")
#: recorded Hydra overrides that are replaced, not carried over
REPLACED = (
    "hydra.mode=",
    "hydra.run.dir=",
    "hydra.sweep.dir=",
    *(o[: o.rindex("=") + 1] for o in RELAUNCH),
)
#: states whose job is kept as it is
KEPT = (COMPLETED, DIVERGED)


def plan(argv: Sequence[str]) -> list[str] | None:
    """The `tbpipe` command line that resumes `argv[0]`, or None when nothing is left to do
    (said on stdout). Raises BadInput (one line) when it must not be resumed."""
    if not argv or argv[0].startswith("-"):
        raise BadInput("usage: tbpipe resume <run dir | sweep dir> [hydra.launcher.KEY=VALUE ...]")
    target, extra = Path(argv[0]), list(argv[1:])
    for override in extra:
        if not override.startswith("hydra.launcher."):
            raise BadInput(
                f"cannot resume with {override}: only hydra.launcher.* overrides are allowed "
                "(a resumed sweep keeps its settings; start a new sweep to change them)"
            )
    refuse_if_owned(target)
    if (target / ".hydra" / "config.yaml").is_file():
        if extra:
            raise BadInput(f"cannot resume {target} with {extra[0]}: a run dir has no launcher")
        return plan_run(target)
    try:
        recorded = recorded_sweep(target)
    except (ValueError, OSError):
        raise BadInput(
            f"cannot resume {target}: it holds neither a sweep ({SWEEP_FILE}) nor a run (.hydra/)"
        ) from None
    if is_search(recorded):
        sweeper = recorded["hydra"]["sweeper"]["_target_"].rsplit(".", 1)[-1]
        raise BadInput(
            f"cannot resume {target}: it is a search ({sweeper}); its trials are chosen "
            "from the study's history, which Hydra's Optuna sweeper keeps in memory only, "
            "so a resumed search would not run the same trials: start a new search"
        )
    return plan_sweep(target, extra)


def begin(target: str | Path, argv: list[str]) -> None:
    """Once `plan` said yes: hold the dir for this resume alone (a second `tbpipe resume`
    of it is refused while this one runs; pipeline/check/claim.py), then clear what the
    sweep's summary writes anew (its HParams config, so the sweep root keeps one)."""
    from pipeline.check.claim import claim_dir

    sweeping = argv[:1] == ["-m"]
    claim_dir(target, "hydra.sweep.dir" if sweeping else "hydra.run.dir", resuming=True)
    if sweeping:
        for old in Path(target).glob("*tfevents*"):
            old.unlink()
        for staged in Path(target).glob(f".*{STAGED_JOB_MARK}*"):
            shutil.rmtree(staged, ignore_errors=True)


def plan_run(run_dir: Path) -> list[str] | None:
    (row,) = status_of(run_dir)
    refuse_if_running(row)
    if row.state in KEPT:
        print(f"nothing to resume: {run_dir} {row.state} ({row.step} of {row.steps_planned})")
        return None
    hydra_cfg = OmegaConf.load(run_dir / ".hydra" / "hydra.yaml").hydra
    overrides = recorded_overrides(run_dir)
    flags, carried = config_flags(hydra_cfg), carried_overrides(hydra_cfg)
    check_settings(run_dir, flags, [*overrides, *carried])
    check_versions([run_dir])
    return [*flags, *overrides, *carried, path_override("hydra.run.dir", run_dir), *RELAUNCH]


def plan_sweep(sweep_dir: Path, launcher_overrides: list[str]) -> list[str] | None:
    recorded = OmegaConf.load(sweep_dir / SWEEP_FILE)
    rows = status_of(sweep_dir)
    for row in rows:
        refuse_if_running(row)
    if all(row.state in KEPT for row in rows) and (sweep_dir / "summary.csv").exists():
        print(f"nothing to resume: every job of {sweep_dir} ended ({len(rows)} jobs)")
        return None
    flags, carried = config_flags(recorded.hydra), carried_overrides(recorded.hydra)
    task = [str(o) for o in recorded.hydra.overrides.task]
    dirs = job_dirs(sweep_dir)
    check_job_dirs(sweep_dir, rows, dirs)
    for row in rows:
        if row.state not in KEPT and row.job in dirs and (dirs[row.job] / ".hydra").is_dir():
            job_overrides = recorded_overrides(dirs[row.job])
            check_settings(dirs[row.job], flags, [*job_overrides, *carried])
    check_versions(list(dirs.values()))
    sweep = path_override("hydra.sweep.dir", sweep_dir)
    return ["-m", *flags, *task, *carried, sweep, *launcher_overrides, *RELAUNCH]


def refuse_if_owned(target: Path) -> None:
    """Refuse a dir that a live tbpipe launches or resumes (its lock: check/claim.py), from
    the moment a sweep starts, before its first job has a dir; a job dir of such a sweep too."""
    from pipeline.check.claim import OWNER_LOCK, owner_of

    for held in (target, target.parent):
        owner = owner_of(held)
        if owner is not None and (held == target or (held / SWEEP_FILE).is_file()):
            whose = "it" if held == target else f"its sweep {held}"
            raise BadInput(
                f"cannot resume {target}: {whose} is still being run by {owner} "
                f"({held / OWNER_LOCK}); wait for it to end, or stop it first"
            )


def check_job_dirs(sweep_dir: Path, rows: Sequence[Any], dirs: dict[int, Path]) -> None:
    """A job dir that is a link, or that holds a run without its recorded settings
    (.hydra/), is refused in one line; an empty one is a job still to run."""
    for row in rows:
        job_dir = dirs.get(row.job)
        if job_dir is None:
            continue
        if job_dir.is_symlink():
            raise BadInput(
                f"cannot resume {sweep_dir}: job dir {job_dir.name} is a symbolic link (to "
                f"{job_dir.readlink()}); a resumed job writes only inside its sweep dir: "
                "put the job's own dir there, or remove the link to run the job again"
            )
        recorded = (job_dir / ".hydra" / "config.yaml").is_file()
        if row.state not in KEPT and not recorded and any(job_dir.iterdir()):
            raise BadInput(
                f"cannot resume {sweep_dir}: job dir {job_dir.name} has files but no "
                ".hydra/config.yaml, so its settings cannot be checked; remove the dir "
                "to run the job again"
            )


def refuse_if_running(row: Any) -> None:
    if row.state == RUNNING:
        where = f" (pid {row.pid} on {row.host})" if row.pid is not None else ""
        raise BadInput(
            f"cannot resume {row.run_dir}: it is still running{where}; "
            "stop it first, or wait (tbpipe status shows when it is done)"
        )


def carried_overrides(hydra_cfg: DictConfig) -> list[str]:
    """The recorded Hydra overrides (launcher, search path ...), less those resume replaces."""
    return [str(o) for o in hydra_cfg.overrides.hydra if not str(o).startswith(REPLACED)]


def check_settings(run_dir: Path, flags: list[str], overrides: list[str]) -> None:
    """Compose the run's config again from its overrides; refuse if it is not what ran."""
    recorded = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "config.yaml"))
    now = compose_again(flags, overrides)
    difference = first_difference(recorded, now)
    if difference is not None:
        key, was, is_now = difference
        raise BadInput(
            f"cannot resume {run_dir}: its settings differ from what it recorded "
            f"({key} was {was}, is now {is_now}: tbpipe's defaults or your configs changed); "
            "nothing was changed"
        )


def compose_again(flags: list[str], overrides: list[str]) -> dict[str, Any]:
    """The task config (no `hydra` node) these flags and overrides compose to today."""
    from hydra.types import RunMode

    from pipeline.check.compose import CONFIG_NAME, tbpipe_configs
    from pipeline.compat import compose_with_hydra

    options = dict(zip(flags[::2], flags[1::2], strict=True))
    overrides = list(overrides)
    if "--config-dir" in options:
        overrides.append(searchpath_override(options["--config-dir"]))
    with tbpipe_configs(options.get("--config-path")):
        cfg = compose_with_hydra(options.get("--config-name", CONFIG_NAME), overrides, RunMode.RUN)
    container = OmegaConf.to_container(cfg)
    container.pop("hydra", None)
    return container


def first_difference(was: Any, now: Any, key: str = "") -> tuple[str, Any, Any] | None:
    """The first dotted key whose value differs, with both values; None if equal."""
    if isinstance(was, dict) and isinstance(now, dict):
        for name in [*was, *(k for k in now if k not in was)]:
            sub = f"{key}.{name}" if key else str(name)
            if name not in was or name not in now:
                return sub, was.get(name, "(absent)"), now.get(name, "(absent)")
            found = first_difference(was[name], now[name], sub)
            if found is not None:
                return found
        return None
    return None if was == now else (key or "(config)", was, now)


def check_versions(run_dirs: Sequence[Path]) -> None:
    """Refuse when a run recorded other versions of tbpipe or of what shapes its numbers."""
    from pipeline.check.rerun import changed_versions

    for run_dir in run_dirs:  # a job that never got as far as run.json runs from the start
        for package, version, now in changed_versions(run_dir)[:1]:
            raise BadInput(
                f"cannot resume {run_dir}: it ran with {package} {version}, this is "
                f"{package} {now}; the numbers could differ, so nothing was changed"
            )
