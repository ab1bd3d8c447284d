"""`tbpipe` / `python -m pipeline`: the Hydra entrypoint. A doorway; the work is in app.py."""

from __future__ import annotations

import shlex

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="pkg://pipeline.conf", config_name="config")
def _task(cfg: DictConfig) -> float | None:
    from pipeline import app

    hydra_cfg = HydraConfig.get()
    run_dir = hydra_cfg.runtime.output_dir
    command = shlex.join(["tbpipe", *hydra_cfg.overrides.task])
    metrics = app.run(cfg, run_dir, command=command)
    print(app.summary_line(metrics, run_dir), flush=True)
    return metrics["test_loss"]  # what a sweeper (e.g. Optuna) minimises


def main() -> None:
    """Console-script entry point."""
    _task()


if __name__ == "__main__":
    main()
