"""One `tbpipe` run: its command line made ready before Hydra, its job run inside Hydra.

`prepare` turns the command line into the one Hydra runs (a `rerun` or `resume` expanded,
every check of pipeline/check/ passed, the run dir created for this process alone);
`run_job` is what Hydra calls for each job: start the run, hand the config to app.run, and
turn how it ended into what a sweeper minimises or the exit code of docs/ERRORS.md.
"""

from __future__ import annotations

import importlib
import logging
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from pipeline import stopping
from pipeline.check import rerun
from pipeline.check.claim import OWNER_LOCK, claim_dir
from pipeline.check.compose import path_override
from pipeline.check.errors import (
    EXIT_DIVERGED,
    EXIT_FAILED,
    BadInput,
    exit_code_for_signal,
    full_error_requested,
    one_line,
    report,
    signal_name,
)
from pipeline.check.preflight import OutputDir, check_command_line, composed_run
from pipeline.compat import BASIC_LAUNCHER, compose_run_once
from pipeline.runinfo import (
    COMPLETED,
    DIVERGED,
    FAILED,
    INTERRUPTED,
    METRICS_FILE,
    RESERVE_FILE,
    RESUME_ENV,
    RUNNING,
    ResumeFault,
    environment_values,
    is_disk_full,
    read_metrics,
    record_unfinished,
    redacted,
    release_reserve,
    start_run,
)
from pipeline.stopping import signal_of
from pipeline.sweeps import naming
from pipeline.sweeps.launchers import register_tbpipe_sweeper
from pipeline.sweeps.search import objective

#: Subcommands that become a Hydra run: the module's `command_line(argv)` says which.
#: (`resume` relaunches a run or sweep in its own dir: `prepare` hands it to its `plan`)
RUNS = {"rerun": "pipeline.check.rerun", "resume": "pipeline.sweeps.resume"}
#: what a job did, for <run dir>/tbpipe.log only (conf/config.yaml: hydra.job_logging)
job_log = logging.getLogger("tbpipe")


def prepare(argv: list[str]) -> tuple[list[str] | None, OutputDir | None]:
    """The command line Hydra runs for `tbpipe <argv>` and the output dir made for it.

    Raises BadInput before anything is created; (None, None) when `resume` finds nothing
    left to do (said on stdout).
    """
    if argv[:1] == ["resume"]:  # its dirs exist on purpose: resume checks what it relaunches
        from pipeline.sweeps.resume import begin, plan

        ready, output = plan(argv[1:]), None  # checks only: a refusal changes nothing
        if ready is None:
            return None, None
        begin(argv[1], ready)
    else:
        ready, output = _checked(argv)
    try:
        register_tbpipe_sweeper()  # hydra/sweeper=tbpipe, whatever the kind of install
    except ModuleNotFoundError as error:  # an install made before the plugin existed
        settle(output, error)
        raise BadInput(f"{error}: reinstall tbpipe (make setup, or pip install -e .)") from None
    return ready, output


def _checked(argv: list[str]) -> tuple[list[str], OutputDir | None]:
    """A new run or sweep (`rerun` expanded): checked, and its output dir created."""
    argv = rerun.plain_config_flags(argv)
    if argv[:1] and argv[0] in RUNS:
        argv = importlib.import_module(RUNS[argv[0]]).command_line(argv[1:])
    output = check_command_line(argv)
    if output is not None:  # created now, for this process alone (check/claim.py)
        claim_dir(output.path, output.key, hold=True)  # until this process ends
        if output.key == "hydra.run.dir":
            _start_new_run(output.path)
        if output.pinned:
            argv = [*argv, path_override(output.key, output.path)]
        if output.key == "hydra.run.dir":
            _compose_once(argv, output)
    return argv, output


def _compose_once(argv: list[str], output: OutputDir) -> None:
    """Hydra's start of this run takes the preflight's composition of the same command
    (the same config and errors: it was composed from the same files and overrides a
    moment ago) instead of composing it twice more (`compat.compose_run_once`)."""
    if not composed_run:
        return
    overrides, cfg = composed_run
    composed_run.clear()
    pinned = path_override(output.key, output.path) if output.pinned else None
    if argv != [*overrides, *([pinned] if pinned else [])]:
        return  # flags (--config-dir, -m): Hydra composes as it would
    if pinned:  # what the pinned override changes: the value, and the overrides recorded
        with read_write(cfg.hydra), open_dict(cfg.hydra):
            cfg.hydra.run.dir = output.path
            cfg.hydra.overrides.hydra.append(pinned)
    compose_run_once(argv, cfg)


def _start_new_run(run_dir: str) -> None:
    """metrics.json (`running`) from the moment the run dir exists; a dir that cannot
    even hold that (a full disk) is removed again and the run refused."""
    try:
        start_run(run_dir)
    except OSError as error:
        import shutil

        shutil.rmtree(run_dir, ignore_errors=True)  # created a moment ago, by this process
        raise BadInput(f"cannot write hydra.run.dir={run_dir}: {error.strerror}") from None


def interrupted_before_training(run_dir: str, stop: KeyboardInterrupt) -> int:
    """A signal before training: metrics.json says so; returns the exit code it calls for."""
    name = signal_name(signal_of(stop))
    record_unfinished(run_dir, INTERRUPTED, f"interrupted by {name} before training")
    job_log.info("ended: interrupted by %s before training", name)
    report(f"interrupted before training; nothing to keep in {run_dir}")
    return exit_code_for_signal(signal_of(stop))


#: what tbpipe puts in a new run dir before Hydra runs its job (check/claim.py, start_run)
BOOKKEEPING = {METRICS_FILE, RESERVE_FILE, OWNER_LOCK}


def settle(output: OutputDir | None, error: BaseException | None = None) -> None:
    """After Hydra returned, however it did: a new run dir never stays `running`.

    A dir whose job never started (Hydra stopped first: a missing `--config-dir`, an
    exception before the job) holds only what tbpipe put there: it goes. One that a job
    began in and that still says `running` (HYDRA_FULL_ERROR=1 let an error out before it
    was recorded) is marked failed. Either way its reserve goes."""
    if output is None or output.key != "hydra.run.dir":
        if output is not None:  # a sweep dir that Hydra never wrote into goes too
            _remove_if_only(Path(output.path), {OWNER_LOCK})
        return
    run_dir = Path(output.path)
    try:
        status = read_metrics(run_dir).get("status")
    except (OSError, ValueError):
        status = None  # gone, or nothing readable to correct
    if status in (None, RUNNING) and _remove_if_only(run_dir, BOOKKEEPING):
        return  # a dir that says how it ended (interrupted at start-up) stays
    if status == RUNNING:
        why = one_line(error) if error is not None else "it ended before its job reported"
        record_unfinished(run_dir, FAILED, why)
    release_reserve(run_dir)


def _remove_if_only(folder: Path, names: set[str]) -> bool:
    """Remove `folder` when it holds nothing but `names`; whether it did."""
    try:
        if not {entry.name for entry in folder.iterdir()} <= names:
            return False
        import shutil

        shutil.rmtree(folder)
    except OSError:
        return False
    return True


def _forget_saved_override(run_dir: str, task: list[str]) -> None:
    """A rerun's .hydra/ records the overrides it was given, as any run's does: without
    the `+saved_run=config` that laid the saved values (config.yaml holds them all)."""
    saved = Path(run_dir) / ".hydra"
    if (saved / "overrides.yaml").is_file():
        OmegaConf.save(OmegaConf.create(task), saved / "overrides.yaml")
    if (saved / "hydra.yaml").is_file():
        recorded = OmegaConf.load(saved / "hydra.yaml")
        recorded.hydra.overrides.task = task
        OmegaConf.save(recorded, saved / "hydra.yaml")


def save_hydra_files(run_dir: str | Path, cfg: DictConfig, hydra_cfg: Any, overrides: Any) -> None:
    """.hydra/config.yaml, hydra.yaml and overrides.yaml, as a command-line run leaves them:
    for a run from Python (api.py), and for a job `tbpipe resume` runs for the first time
    (resume turns Hydra's own writing off, so finished jobs keep their files untouched)."""
    saved = Path(run_dir) / ".hydra"
    saved.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, saved / "config.yaml")
    OmegaConf.save(OmegaConf.create({"hydra": hydra_cfg}), saved / "hydra.yaml")
    OmegaConf.save(OmegaConf.create(list(overrides)), saved / "overrides.yaml")


def run_job(cfg: DictConfig) -> float:
    """One Hydra job: what a sweeper minimises, or `sys.exit` with the code of how it ended."""
    from pipeline import app
    from pipeline.sweeps.stacked import replay_trainer

    hydra_cfg = HydraConfig.get()
    run_dir = hydra_cfg.runtime.output_dir
    task = list(hydra_cfg.overrides.task)
    command = rerun.command_for(task) or shlex.join(["tbpipe", *task])
    if rerun.SAVED in task:  # how a rerun lays the saved values: not one of its settings
        task = [override for override in task if override != rerun.SAVED]
        _forget_saved_override(run_dir, task)
    sweeping = hydra_cfg.mode == RunMode.MULTIRUN
    resuming = os.environ.get(RESUME_ENV) == "1"  # `tbpipe resume`: the dir may exist
    if resuming and (kept := app.ended_for_good(Path(run_dir))) is not None:
        # completed or diverged before: every file of it stays as is
        return job_objective(kept, cfg)
    if resuming and not (Path(run_dir) / ".hydra" / "overrides.yaml").exists():
        save_hydra_files(run_dir, cfg, hydra_cfg, hydra_cfg.overrides.task)
    shown = redacted(command, environment_values(cfg))  # a secret read from the environment
    job_log.info("started: %s (run dir %s)", shown, run_dir)
    stopping.plan_steps(int(cfg.trainer.steps))  # a signal after the last step: see `_ended`
    try:
        if not resuming:  # a resumed job's dir says how it stands (a finished one stays as is)
            start_run(run_dir, cfg.trainer.steps)  # metrics.json from the start, the reserve
        metrics = app.run(
            cfg,
            run_dir,
            command=command,
            overrides=task,
            checked=True,
            resume=resuming,
            label=naming.label_of(task, hydra_cfg.job.config.override_dirname.exclude_keys),
            trainer=replay_trainer(),  # None but under hydra/launcher=stacked
        )
    except KeyboardInterrupt as stop:
        sys.exit(interrupted_before_training(run_dir, stop))
    except ResumeFault as error:  # the run is as it was before: not marked failed
        job_log.error("not resumed: %s", error)
        report(str(error))
        if sweeping:
            return job_objective({}, cfg)
        sys.exit(EXIT_FAILED)
    except Exception as error:
        if full_error_requested():  # the traceback follows; metrics.json says failed first
            reason = record_unfinished(run_dir, FAILED, one_line(error))
            job_log.error("ended: failed: %s", reason)
            raise
        return job_objective(_failed(error, run_dir, sweeping, hydra_cfg), cfg)
    finally:
        after = stopping.signal_after_steps()
    result = job_objective(_ended(metrics, run_dir, sweeping), cfg)
    if after is not None:  # the run completed; the signal still stops what comes next
        name = signal_name(after)
        job_log.info("%s received after the run's last step: stopping here", name)
        if sweeping:
            report(f"{name} received after the last step of {app.display_path(run_dir)} "
                   "(completed): the sweep stops here")  # fmt: skip
            sys.exit(exit_code_for_signal(after))
    return result


def _failed(error: Exception, run_dir: str, sweeping: bool, hydra_cfg: Any) -> dict:
    """An exception out of the run: recorded as `failed`; a sweep goes on with the next job
    (no metrics to judge it by)."""
    if is_disk_full(error):
        # the launching process stops the sweep; a launcher's worker ends its job only
        in_worker = hydra_cfg.launcher.get("_target_") != BASIC_LAUNCHER
        stop_on_full_disk(run_dir, sweeping, stop=not (sweeping and in_worker))
        return {}
    reason = record_unfinished(run_dir, FAILED, one_line(error))
    job_log.error("ended: failed: %s", reason)
    report(f"run failed: {reason} (HYDRA_FULL_ERROR=1 shows the traceback)")
    if sweeping:
        return {}  # one failed job must not stop the others
    sys.exit(EXIT_FAILED)


def _ended(metrics: dict[str, Any], run_dir: str, sweeping: bool) -> dict:
    """A run that trained: its summary line, or why it stopped and the exit code for that;
    the metrics a sweeper judges it by."""
    from pipeline import app

    job_log.info(
        "ended: %s after %s of %s steps in %s s (training %s s)%s",
        metrics["status"], metrics["steps"], metrics["steps_planned"], metrics["seconds"],
        metrics["train_seconds"], f": {metrics['reason']}" if metrics.get("reason") else "",
    )  # fmt: skip
    if metrics["status"] == COMPLETED:
        line = app.summary_line(metrics, run_dir)
        job_log.info("%s", line)
        print(line, flush=True)
        return metrics
    report(f"run {metrics['status']}: {metrics['reason']} | logs: {app.display_path(run_dir)}")
    if metrics["status"] == INTERRUPTED:  # stops a sweep too: the user asked to stop
        sys.exit(exit_code_for_signal(signal.Signals[metrics["signal"]]))
    if sweeping:
        return {}
    sys.exit(EXIT_DIVERGED if metrics["status"] == DIVERGED else EXIT_FAILED)


def stop_on_full_disk(run_dir: str, sweeping: bool, stop: bool = True) -> None:
    """A full disk ends the run (and a sweep: every later job would fail the same way)
    with one line; metrics.json says `failed` where it can still be written (the run
    dir's reserve is given up for it); a sweep prints what ran. `stop=False` (a
    launcher's worker process) only ends this job."""
    reason = f"the disk is full (No space left on device) under {run_dir}; events so far are kept"
    try:
        reason = record_unfinished(run_dir, FAILED, reason)
        where = "metrics.json says failed"
    except OSError:
        where = "not even metrics.json could be written"
    report(f"run failed: {reason} ({where}); free some space and run it again")
    if not stop:
        return
    if sweeping:
        from pipeline.sweeps.summary import read_sweep, table

        sweep_dir = HydraConfig.get().sweep.dir
        rows = read_sweep(sweep_dir)
        print(f"\nsweep stopped: the disk is full; what ran ({len(rows)} jobs) in {sweep_dir}:")
        print(table(rows), flush=True)
    sys.exit(EXIT_FAILED)


def job_objective(metrics: dict[str, Any], cfg: DictConfig) -> float:
    """What this job returns to the sweeper: the config's `objective` scalar, or the worst
    value the sweeper's direction allows for a job that gave none (`{}`)."""
    direction = HydraConfig.get().sweeper.get("direction", "minimize")
    return objective(metrics, cfg.get("objective"), str(direction).lower() == "maximize")
