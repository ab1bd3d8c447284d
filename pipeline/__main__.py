"""`tbpipe` / `python -m pipeline`: the Hydra entrypoint. A doorway; the work is in app.py.

Before Hydra runs anything, the command line is checked (pipeline/preflight.py), so a bad
override is one line on stderr within a second. How each kind of failure ends (message,
exit code) is listed in docs/ERRORS.md.
"""

from __future__ import annotations

import importlib
import math
import shlex
import signal
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

import pipeline.sweep  # noqa: F401  registers `tbpipe.job_dir`, which names sweep job dirs
from pipeline.errors import (
    EXIT_BAD_INPUT,
    EXIT_DIVERGED,
    EXIT_FAILED,
    BadInput,
    exit_code_for_signal,
    full_error_requested,
    one_line,
    report,
)
from pipeline.preflight import check_command_line
from pipeline.runinfo import record_unfinished


@hydra.main(version_base="1.3", config_path="pkg://pipeline.conf", config_name="config")
def _task(cfg: DictConfig) -> float | None:
    from pipeline import app

    hydra_cfg = HydraConfig.get()
    run_dir = hydra_cfg.runtime.output_dir
    command = shlex.join(["tbpipe", *hydra_cfg.overrides.task])
    sweeping = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        metrics = app.run(cfg, run_dir, command=command, overrides=hydra_cfg.overrides.task)
    except KeyboardInterrupt:
        record_unfinished(run_dir, "interrupted", "interrupted by SIGINT before training")
        report(f"interrupted before training; nothing to keep in {run_dir}")
        sys.exit(exit_code_for_signal(signal.SIGINT))
    except Exception as error:
        if full_error_requested():
            raise
        reason = record_unfinished(run_dir, "failed", one_line(error))
        report(f"run failed: {reason} (HYDRA_FULL_ERROR=1 shows the traceback)")
        if sweeping:
            return math.inf  # one failed job must not stop the others
        sys.exit(EXIT_FAILED)
    if metrics["status"] == "completed":
        print(app.summary_line(metrics, run_dir), flush=True)
        return metrics["test_loss"]  # what a sweeper (e.g. Optuna) minimises
    report(f"run {metrics['status']}: {metrics['reason']} | logs: {app.display_path(run_dir)}")
    if metrics["status"] == "interrupted":  # stops a sweep too: the user asked to stop
        sys.exit(exit_code_for_signal(signal.Signals[metrics["signal"]]))
    if sweeping:
        return math.inf
    sys.exit(EXIT_DIVERGED if metrics["status"] == "diverged" else EXIT_FAILED)


#: Subcommands that read runs back; dispatched before Hydra sees argv (not Hydra runs).
SUBCOMMANDS = {"report": "pipeline.report", "board": "pipeline.board"}


def main() -> None:
    """Console-script entry point."""
    if len(sys.argv) > 1 and sys.argv[1] in SUBCOMMANDS:
        subcommand = importlib.import_module(SUBCOMMANDS[sys.argv[1]])
        sys.exit(subcommand.main(sys.argv[2:]))
    try:
        check_command_line(sys.argv[1:])
    except BadInput as error:
        report(str(error))
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        sys.exit(exit_code_for_signal(signal.SIGINT))  # nothing was started
    _task()


if __name__ == "__main__":
    main()
