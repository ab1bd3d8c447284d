"""The basic sweep, fit for sweeps of thousands of jobs (`hydra/sweeper=tbpipe`, the default).

Hydra's basic sweeper composes every job's config to validate the whole batch before the
first job runs (the launcher composes each again), and keeps every job's composed config
in its results until the sweep ends. With 10,000 jobs that is minutes before the first job
starts and memory that grows with every job. tbpipe's preflight has already checked every
swept value (pipeline/check/preflight.py), so this sweeper skips the second check, runs
the jobs in batches (`max_batch_size`) so the first starts at once, and says how many jobs
it plans. Each job's result drops its configs as the job ends (the `forget_configs`
callback, pipeline/sweeps/results.py: the sweep summary reads the job dirs).
With Hydra's basic launcher (jobs one after another in this process), a job's config is a
copy of one composition per set of group choices, its values set
(pipeline/sweeps/job_configs.py), not a whole composition a job. Everything else, job
numbers and dirs included, is what Hydra's basic sweeper does: the same jobs in the same
order (`pipeline.compat.split_sweep`), multirun.yaml at the sweep root. It is built on
Hydra's public plugin interfaces (`Sweeper`, `Plugins.instantiate_launcher`, `HydraContext`).

Its config (`hydra/sweeper=tbpipe`) is stored with tbpipe's other structured configs in
pipeline/check/schema.py. Hydra finds plugins by scanning `hydra_plugins`, which misses
packages of an editable install; tbpipe registers the class itself before Hydra runs
(pipeline.sweeps.launchers.register_tbpipe_sweeper).
"""

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from pipeline.compat import BASIC_LAUNCHER, split_sweep
from pipeline.sweeps.job_configs import ReusingConfigLoader

log = logging.getLogger("hydra")


class TbpipeSweeper(Sweeper):
    """Hydra's basic sweep without its second up-front composition of every job."""

    def __init__(self, max_batch_size: int | None, params: dict[str, str] | None = None):
        self.max_batch_size = max_batch_size
        self.params = params or {}
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Launcher | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """The launcher; the basic one composes each job as a copy of its template."""
        self.config, self.hydra_context = config, hydra_context
        if config.hydra.launcher.get("_target_") == BASIC_LAUNCHER:
            hydra_context = HydraContext(
                config_loader=ReusingConfigLoader(hydra_context.config_loader),
                callbacks=hydra_context.callbacks,
            )
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> list[Sequence[Any]]:
        """Run every batch, saying first how many jobs the sweep plans."""
        params = [f"{key}={value}" for key, value in self.params.items()]
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        batches = split_sweep(parser.parse_overrides([*params, *arguments]), self.max_batch_size)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        total = sum(len(batch) for batch in batches)
        size = min(self.max_batch_size or total, total)
        # the one line a user of a 100,000-job sweep waits for
        log.info(f"tbpipe: {total} jobs planned, launched in batches of {size}")
        returns, first = [], 0
        for batch in batches:
            started = time.perf_counter()
            results = self.launcher.launch(batch, initial_job_idx=first)
            for result in results:
                _ = result.return_value  # raises what a job raised, as Hydra's sweeper does
            log.debug(f"{len(batch)} jobs in {time.perf_counter() - started:.2f} s")
            first += len(batch)
            returns.append(results)
        return returns
