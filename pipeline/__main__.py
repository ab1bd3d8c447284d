"""`tbpipe` / `python -m pipeline`: the Hydra entrypoint. A doorway; the work is in app.py.

Before Hydra runs anything, the command line is checked (pipeline/check/preflight.py), so a bad
override is one line on stderr within a second. How each kind of failure ends (message,
exit code) is listed in docs/ERRORS.md.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import shlex
import signal
import sys
from importlib.metadata import version as package_version
from pathlib import Path
from typing import NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

import pipeline.sweeps  # noqa: F401  registers `tbpipe.job_dir` (names job dirs) and sweep checks
from pipeline.check import rerun
from pipeline.check.claim import claim_dir
from pipeline.check.compose import path_override
from pipeline.check.errors import (
    EXIT_BAD_INPUT,
    EXIT_DIVERGED,
    EXIT_FAILED,
    BadInput,
    exit_code_for_signal,
    full_error_requested,
    one_line,
    report,
)
from pipeline.check.preflight import check_command_line
from pipeline.compat import exit_without_teardown
from pipeline.runinfo import (
    COMPLETED,
    DIVERGED,
    FAILED,
    INTERRUPTED,
    RESUME_ENV,
    environment_values,
    is_disk_full,
    record_unfinished,
    redacted,
    start_run,
    versions,
)
from pipeline.stopping import signal_of, stop_before_training_on_sigterm
from pipeline.sweeps import naming
from pipeline.sweeps.launchers import register_tbpipe_sweeper

#: how many jobs ran in this process (not in a launcher's workers)
_jobs_run_here = 0
#: what a job did, for <run dir>/tbpipe.log only (conf/config.yaml: hydra.job_logging)
job_log = logging.getLogger("tbpipe")


@hydra.main(version_base="1.3", config_path="pkg://pipeline.conf", config_name="config")
def _task(cfg: DictConfig) -> float | None:
    from pipeline import app

    global _jobs_run_here
    _jobs_run_here += 1

    hydra_cfg = HydraConfig.get()
    run_dir = hydra_cfg.runtime.output_dir
    task = list(hydra_cfg.overrides.task)
    command = rerun.command_for(task) or shlex.join(["tbpipe", *task])
    sweeping = hydra_cfg.mode == RunMode.MULTIRUN
    resuming = os.environ.get(RESUME_ENV) == "1"  # `tbpipe resume`: the dir may exist
    if resuming and (kept := app.ended_for_good(Path(run_dir))) is not None:
        # completed or diverged before: every file of it, its log included, stays as it is
        done = kept["status"] == COMPLETED and kept.get("test_loss") is not None
        return kept["test_loss"] if done else math.inf
    if resuming:
        save_hydra_files(run_dir, cfg, hydra_cfg)
    shown = redacted(command, environment_values(cfg))  # a secret read from the environment
    job_log.info("started: %s (run dir %s)", shown, run_dir)
    try:
        if not resuming:  # a resumed job's dir says how it stands (a finished one stays as is)
            start_run(run_dir, cfg.trainer.steps)  # metrics.json from the start, the reserve
        metrics = app.run(
            cfg,
            run_dir,
            command=command,
            overrides=hydra_cfg.overrides.task,
            checked=True,
            resume=resuming,
            label=naming.label_of(task, hydra_cfg.job.config.override_dirname.exclude_keys),
        )
    except KeyboardInterrupt as stop:
        name = signal.Signals(signal_of(stop)).name
        record_unfinished(run_dir, INTERRUPTED, f"interrupted by {name} before training")
        job_log.info("ended: interrupted by %s before training", name)
        report(f"interrupted before training; nothing to keep in {run_dir}")
        sys.exit(exit_code_for_signal(signal_of(stop)))
    except Exception as error:
        if full_error_requested():
            raise
        if is_disk_full(error):
            # the launching process stops the sweep; a launcher's worker ends its job only
            in_worker = "BasicLauncher" not in str(hydra_cfg.launcher.get("_target_", ""))
            stop_on_full_disk(run_dir, sweeping, stop=not (sweeping and in_worker))
            return math.inf
        reason = record_unfinished(run_dir, FAILED, one_line(error))
        job_log.error("ended: failed: %s", reason)
        report(f"run failed: {reason} (HYDRA_FULL_ERROR=1 shows the traceback)")
        if sweeping:
            return math.inf  # one failed job must not stop the others
        sys.exit(EXIT_FAILED)
    job_log.info(
        "ended: %s after %s of %s steps in %s s (training %s s)%s",
        metrics["status"], metrics["steps"], metrics["steps_planned"], metrics["seconds"],
        metrics["train_seconds"], f": {metrics['reason']}" if metrics.get("reason") else "",
    )  # fmt: skip
    if metrics["status"] == COMPLETED:
        job_log.info("%s", app.summary_line(metrics, run_dir))
        print(app.summary_line(metrics, run_dir), flush=True)
        return metrics["test_loss"]  # what a sweeper (e.g. Optuna) minimises
    report(f"run {metrics['status']}: {metrics['reason']} | logs: {app.display_path(run_dir)}")
    if metrics["status"] == INTERRUPTED:  # stops a sweep too: the user asked to stop
        sys.exit(exit_code_for_signal(signal.Signals[metrics["signal"]]))
    if sweeping:
        return math.inf
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


#: Subcommands that read runs back; dispatched before Hydra sees argv (not Hydra runs).
SUBCOMMANDS = {
    "report": "pipeline.readback.report",
    "board": "pipeline.readback.board",
    "status": "pipeline.readback.status",
}
#: Subcommands that become a Hydra run: the module's `command_line(argv)` says which.
#: (`resume` relaunches a run or sweep in its own dir: `main` hands it to its `plan`)
RUNS = {"rerun": "pipeline.check.rerun", "resume": "pipeline.sweeps.resume"}


def save_hydra_files(run_dir: str, cfg: DictConfig, hydra_cfg) -> None:
    """.hydra/ as Hydra writes it, for a job `tbpipe resume` runs for the first time
    (resume turns Hydra's own writing off, so finished jobs keep their files untouched)."""
    saved = Path(run_dir) / ".hydra"
    if (saved / "overrides.yaml").exists():
        return
    saved.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, saved / "config.yaml")
    OmegaConf.save(OmegaConf.create({"hydra": hydra_cfg}), saved / "hydra.yaml")
    OmegaConf.save(hydra_cfg.overrides.task, saved / "overrides.yaml")


def main() -> None:
    """Console-script entry point."""
    name = sys.argv[1] if len(sys.argv) > 1 else None
    if name == "help":  # `tbpipe help [SUBCOMMAND]`
        asked = sys.argv[2:3]
        if asked and asked[0] in SUBCOMMANDS:
            sys.argv[1:] = [asked[0], "--help"]
        elif asked and asked[0] in RUNS:
            leave(print(importlib.import_module(RUNS[asked[0]]).__doc__.strip()))
        else:
            sys.argv[1:] = ["--help", *sys.argv[2:]]
        name = sys.argv[1]
    if name in SUBCOMMANDS:
        subcommand = importlib.import_module(SUBCOMMANDS[name])
        try:
            code = subcommand.main(sys.argv[2:])
            sys.stdout.flush()
        except BrokenPipeError:  # `tbpipe report DIR | head`: the reader has gone
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            code = exit_code_for_signal(signal.SIGPIPE)
        leave(code)
    if name in ("--version", "-V"):
        leave(print(version_line()))
    logging.raiseExceptions = False  # a log file on a full disk must not print tracebacks
    stop_before_training_on_sigterm()
    output = None
    try:
        if name == "resume":  # its dirs exist on purpose: resume checks what it relaunches
            from pipeline.sweeps.resume import begin, plan

            argv = plan(sys.argv[2:])  # checks only: a refusal changes nothing
            if argv is None:  # nothing left to do (said on stdout)
                leave(0)
            begin(sys.argv[2], argv)
            sys.argv[1:] = argv
        else:
            argv = rerun.plain_config_flags(sys.argv[1:])
            if argv[:1] and argv[0] in RUNS:
                argv = importlib.import_module(RUNS[argv[0]]).command_line(argv[1:])
            sys.argv[1:] = argv
            output = check_command_line(sys.argv[1:])
            if output is not None:  # created now, for this process alone (check/claim.py)
                claim_dir(output.path, output.key)
                if output.key == "hydra.run.dir":
                    start_new_run(output.path)
                if output.pinned:
                    sys.argv.append(path_override(output.key, output.path))
    except BadInput as error:
        report(str(error))
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt as stop:
        sys.exit(exit_code_for_signal(signal_of(stop)))  # nothing was started
    try:
        register_tbpipe_sweeper()  # hydra/sweeper=tbpipe, whatever the kind of install
    except ModuleNotFoundError as error:  # an install made before the plugin existed
        report(f"{error}: reinstall tbpipe (make setup, or pip install -e .)")
        sys.exit(EXIT_BAD_INPUT)
    try:
        _task()
    except SystemExit as stop:
        code = stop.code
    except KeyboardInterrupt as stop:  # before the run's own handling (Hydra starting up)
        if output is not None and output.key == "hydra.run.dir":
            name = signal.Signals(signal_of(stop)).name
            record_unfinished(output.path, INTERRUPTED, f"interrupted by {name} before training")
            report(f"interrupted before training; nothing to keep in {output.path}")
        code = exit_code_for_signal(signal_of(stop))
    else:
        code = 0
    if _jobs_run_here:  # the basic launcher: no worker processes to wind down
        leave(code)
    sys.exit(code)


def version_line() -> str:
    """`tbpipe --version`: tbpipe's version and those that shape its runs (no import)."""
    found = versions()
    return f"tbpipe {package_version('tbpipe')} (" + ", ".join(
        f"{name} {found[package]}"
        for name, package in (("TensorFlow", "tensorflow"), ("TensorBoard", "tensorboard"),
                              ("Hydra", "hydra-core"), ("OmegaConf", "omegaconf"),
                              ("Python", "python"))
    ) + ")"  # fmt: skip


def _subcommands_text() -> str:
    """`tbpipe --help`'s list of subcommands: each module's first docstring line."""
    import ast
    import importlib.util
    import re

    lines = []
    for name, module in {**SUBCOMMANDS, **RUNS}.items():
        origin = importlib.util.find_spec(module).origin
        first = (ast.get_docstring(ast.parse(Path(origin).read_text())) or name).splitlines()[0]
        usage, what = name, first
        if found := re.match(r"`tbpipe ([^`]+)`: (.+)", first):
            usage, what = found.groups()
        lines.append(f"  {usage:28} {what.rstrip('.')}")
    lines.append(f"  {'help [SUBCOMMAND]':28} this page, or a subcommand's")
    return "\n".join(lines)


def _choices_text() -> str:
    from pipeline.check.hints import choices_text
    from pipeline.compat import hydra_config_loader

    return choices_text(hydra_config_loader(), dict(HydraConfig.get().runtime.choices))


def _docs_text() -> str:
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "docs").is_dir():
        return f"{checkout / 'README.md'} and {checkout / 'docs'}/ (TUTORIAL, ERRORS, ...)"
    return "README.md and docs/ in tbpipe's source (TUTORIAL, ERRORS, EXTENDING, SWEEPS, ...)"


# what conf/hydra/help/tbpipe.yaml (`tbpipe --help`) fills in
OmegaConf.register_new_resolver("tbpipe.subcommands", _subcommands_text, replace=True)
OmegaConf.register_new_resolver("tbpipe.choices", _choices_text, replace=True)
OmegaConf.register_new_resolver("tbpipe.docs", _docs_text, replace=True)
OmegaConf.register_new_resolver("tbpipe.version", version_line, replace=True)


def start_new_run(run_dir: str) -> None:
    """metrics.json (`running`) from the moment the run dir exists; a dir that cannot
    even hold that (a full disk) is removed again and the run refused."""
    try:
        start_run(run_dir)
    except OSError as error:
        import shutil

        shutil.rmtree(run_dir, ignore_errors=True)  # created a moment ago, by this process
        raise BadInput(f"cannot write hydra.run.dir={run_dir}: {error.strerror}") from None


def leave(code: int | str | None) -> NoReturn:
    """Exit as `sys.exit(code)` would, without tearing the interpreter down.

    Once TensorFlow is loaded, Python's teardown (freeing every module and TensorFlow's
    C++ objects) takes ~1 s after the last file is written: a sixth of a default run.
    Every file tbpipe writes is closed by then, and the atexit handlers (logging's flush)
    still run first; only the teardown is skipped. Not for a process that launched
    workers (joblib, submitit): their shutdown belongs to that teardown.
    """
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    exit_without_teardown(code or 0)


if __name__ == "__main__":
    main()
