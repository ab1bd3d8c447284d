"""`tbpipe` / `python -m pipeline`: the console script, a dispatcher.

Subcommands that read runs back go to their modules before Hydra sees argv; everything else
is a run, made ready by pipeline/job.py (checked before Hydra runs anything, so a bad
override is one line on stderr within a second) and run by Hydra. How each kind of failure
ends (message, exit code) is listed in docs/ERRORS.md.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from typing import TYPE_CHECKING, NoReturn

from pipeline.check.errors import EXIT_BAD_INPUT, BadInput, exit_code_for_signal, report
from pipeline.check.help_cache import cached_page
from pipeline.compat import exit_without_teardown

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from pipeline.check.preflight import OutputDir

#: Subcommands that read runs back; dispatched before Hydra sees argv (not Hydra runs).
SUBCOMMANDS = {
    "report": "pipeline.readback.report",
    "board": "pipeline.readback.board",
    "status": "pipeline.readback.status",
}
#: how many jobs ran in this process (not in a launcher's workers)
_jobs_run_here = 0


def _task(cfg: DictConfig) -> float:
    """A job, as Hydra runs it (`hydra.main` is applied in `main`: importing this module
    imports no Hydra, so a kept `--help` page is shown without it)."""
    global _jobs_run_here
    from pipeline.compat import summaries_without_s3
    from pipeline.job import run_job

    summaries_without_s3()  # a console-script run reads no s3:// path through TensorBoard
    _jobs_run_here += 1
    return run_job(cfg)


def main() -> None:
    """Console-script entry point: a help page, a subcommand that reads runs back, the
    version line, or a run (`_run`)."""
    if (page := _kept_help_page(sys.argv[1:])) is not None:
        _show(page)  # shown again from the cache: nothing imported that the page needs not
    if sys.argv[1:2] and sys.argv[1] in SUBCOMMANDS:  # each imports what it reads with
        leave(_read_back(sys.argv[1], sys.argv[2:]))  # (no Hydra, no run's checks)
    import pipeline.sweeps  # noqa: F401  registers `tbpipe.job_dir` (names job dirs) and sweep checks
    from pipeline.check.help_page import help_page, version_line  # and the page's ${tbpipe.*}
    from pipeline.job import RUNS

    name = sys.argv[1] if len(sys.argv) > 1 else None
    if name == "help":  # `tbpipe help [SUBCOMMAND]`
        name = _help(sys.argv[2:3], RUNS)
    if name in SUBCOMMANDS:
        leave(_read_back(name, sys.argv[2:]))
    if name not in RUNS and {"--help", "-h"} & set(sys.argv[1:]):
        try:
            page = help_page(sys.argv[1:], {**SUBCOMMANDS, **RUNS})
        except BadInput as error:
            report(str(error))
            sys.exit(EXIT_BAD_INPUT)
        _show(page)
    if name in ("--version", "-V"):
        leave(print(version_line()))
    _run()


def _run() -> NoReturn:
    """A run or sweep (or `tbpipe resume`/`rerun`): checked and made ready by pipeline/job.py,
    then run by Hydra; its dir settled however it ends."""
    import hydra

    from pipeline.job import interrupted_before_training, settle
    from pipeline.stopping import signal_of

    output = _prepared()
    run = hydra.main(version_base="1.3", config_path="pkg://pipeline.conf", config_name="config")
    try:
        run(_task)()
    except SystemExit as stop:
        code = stop.code
    except KeyboardInterrupt as stop:  # before the run's own handling (Hydra starting up)
        code = exit_code_for_signal(signal_of(stop))
        if output is not None and output.key == "hydra.run.dir":
            interrupted_before_training(output.path, stop)
    except BaseException as error:  # HYDRA_FULL_ERROR=1: Hydra lets the error out
        settle(output, error)
        raise
    else:
        code = 0
    settle(output)  # a run dir never stays `running`, nor keeps its reserve
    from pipeline.sweeps.stacked import jobs_written  # loaded by Hydra's plugin scan

    if _jobs_run_here or jobs_written:  # ran jobs here: no worker processes to wind down
        leave(code)
    sys.exit(code)


def _prepared() -> OutputDir | None:
    """sys.argv made what Hydra runs (pipeline/job.py `prepare`); the run's output dir, if it
    names one. Bad input exits here with one line, before anything is started."""
    import logging

    from pipeline.job import prepare
    from pipeline.stopping import signal_of, stop_before_training_on_sigterm

    logging.raiseExceptions = False  # a log file on a full disk must not print tracebacks
    stop_before_training_on_sigterm()
    try:
        argv, output = prepare(sys.argv[1:])
    except BadInput as error:
        report(str(error))
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt as stop:
        sys.exit(exit_code_for_signal(signal_of(stop)))  # nothing was started
    if argv is None:  # `tbpipe resume`: nothing left to do (said on stdout)
        leave(0)
    sys.argv[1:] = argv
    return output


def _help(asked: list[str], runs: dict[str, str]) -> str:
    """`tbpipe help [SUBCOMMAND]`: argv rewritten to the `--help` that shows it."""
    if asked and asked[0] in SUBCOMMANDS:
        sys.argv[1:] = [asked[0], "--help"]
    elif asked and asked[0] in runs:
        leave(print(importlib.import_module(runs[asked[0]]).__doc__.strip()))
    else:
        sys.argv[1:] = ["--help", *sys.argv[2:]]
    return sys.argv[1]


def _kept_help_page(argv: list[str]) -> str | None:
    """`tbpipe --help` (or `tbpipe help`) as shown last time, if nothing it was made from has
    changed (pipeline/check/help_cache.py): shown without importing Hydra. Only pages of
    `--help` commands are ever kept, so a hit is always one."""
    if argv[:1] == ["help"] and argv[1:2] and argv[1] in SUBCOMMANDS:
        return None
    argv = ["--help", *argv[1:]] if argv[:1] == ["help"] else argv  # as `_help` rewrites it
    if not {"--help", "-h"} & set(argv) or argv[0] in SUBCOMMANDS:
        return None
    return cached_page(argv)


def _show(page: str) -> NoReturn:
    """Print the help page and exit; `tbpipe --help | head` ends quietly, as a subcommand's
    output does (`_read_back`)."""
    try:
        print(page)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(exit_code_for_signal(signal.SIGPIPE))
    sys.exit(0)


def _read_back(name: str, argv: list[str]) -> int | str | None:
    """A subcommand that reads runs back (report, status, board): its exit code."""
    subcommand = importlib.import_module(SUBCOMMANDS[name])
    try:
        code = subcommand.main(argv)
        sys.stdout.flush()
    except BrokenPipeError:  # `tbpipe report DIR | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = exit_code_for_signal(signal.SIGPIPE)
    return code


def leave(code: int | str | None) -> NoReturn:
    """Exit as `sys.exit(code)` would, without tearing the interpreter down.

    Once TensorFlow is loaded, Python's teardown (freeing every module and TensorFlow's
    C++ objects) takes a noticeable share of a default run after the last file is written.
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
