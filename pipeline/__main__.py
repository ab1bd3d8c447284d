"""`tbpipe` / `python -m pipeline`: the Hydra entrypoint. A doorway; the work is in app.py."""

from __future__ import annotations

import importlib
import shlex
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import pipeline.sweep  # noqa: F401  registers `tbpipe.job_dir`, which names sweep job dirs


@hydra.main(version_base="1.3", config_path="pkg://pipeline.conf", config_name="config")
def _task(cfg: DictConfig) -> float | None:
    from pipeline import app

    hydra_cfg = HydraConfig.get()
    run_dir = hydra_cfg.runtime.output_dir
    command = shlex.join(["tbpipe", *hydra_cfg.overrides.task])
    metrics = app.run(cfg, run_dir, command=command, overrides=hydra_cfg.overrides.task)
    print(app.summary_line(metrics, run_dir), flush=True)
    return metrics["test_loss"]  # what a sweeper (e.g. Optuna) minimises


#: Subcommands that read runs back; dispatched before Hydra sees argv (not Hydra runs).
SUBCOMMANDS = {"report": "pipeline.report", "board": "pipeline.board"}


def main() -> None:
    """Console-script entry point."""
    if len(sys.argv) > 1 and sys.argv[1] in SUBCOMMANDS:
        subcommand = importlib.import_module(SUBCOMMANDS[sys.argv[1]])
        sys.exit(subcommand.main(sys.argv[2:]))
    _task()


if __name__ == "__main__":
    main()
