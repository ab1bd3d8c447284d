"""The basic sweeper, fit for sweeps of thousands of jobs (`hydra/sweeper=tbpipe`, the default).

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
numbers and dirs included, is Hydra's basic sweeper unchanged.

Its config (`hydra/sweeper=tbpipe`) is stored with tbpipe's other structured configs in
pipeline/check/schema.py. Hydra finds plugins by scanning `hydra_plugins`, which misses
packages of an editable install; tbpipe registers the class itself before Hydra runs
(pipeline.sweeps.launchers.register_tbpipe_sweeper).
"""

import logging
from collections.abc import Sequence
from typing import Any

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.types import HydraContext

from pipeline.sweeps.job_configs import ReusingConfigLoader

log = logging.getLogger("hydra")


class TbpipeSweeper(BasicSweeper):
    """Hydra's basic sweeper without its second up-front composition of every job."""

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Checked already, each swept value once, by tbpipe's preflight."""

    def sweep(self, arguments: list[str]) -> Any:
        """Run every batch, saying first how many jobs the sweep plans."""
        original_launch = self.launcher.launch
        announced = []

        def announce_and_launch(batch, initial_job_idx):
            if not announced:  # the one line a user of a 100,000-job sweep waits for
                total = sum(len(jobs) for jobs in self.overrides)
                size = min(self.max_batch_size or total, total)
                log.info(f"tbpipe: {total} jobs planned, launched in batches of {size}")
                announced.append(total)
            return original_launch(batch, initial_job_idx=initial_job_idx)

        self.launcher.launch = announce_and_launch
        original_context = getattr(self.launcher, "hydra_context", None)
        if isinstance(self.launcher, BasicLauncher) and original_context is not None:
            self.launcher.hydra_context = HydraContext(
                config_loader=ReusingConfigLoader(original_context.config_loader),
                callbacks=original_context.callbacks,
            )
        try:
            return super().sweep(arguments)
        finally:
            self.launcher.launch = original_launch
            if original_context is not None:
                self.launcher.hydra_context = original_context
