"""What a sweep keeps of each finished job: its return value and dir, not its configs.

Hydra's launchers hand back one `JobReturn` per job, and the basic launcher holds every
one of a batch (1,000 jobs by default) until the batch ends; Hydra's basic sweeper then
keeps them all until the sweep ends. Each holds the job's composed config and Hydra config
(~600 Python objects, ~0.1 MB), so a sweep in one process grew by that much a job, with or
without TensorFlow (a trivial `@hydra.main` app: 37 -> 73 MB over 400 jobs). Both configs
are already saved in the job's `.hydra/`, and nothing after a job reads them from its
result: sweepers read `return_value`, tbpipe's sweep summary reads the job dirs. So
`ForgetJobConfigs` drops them as each job ends, and memory stays flat
(benchmarks/sweep_scale.py memory; tests/test_sweep_memory.py).

It is the first callback in conf/config.yaml: Hydra calls `on_job_end` in reverse order,
so every other callback (a user's `+hydra.callbacks.*` included) sees the configs first.
"""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig


class ForgetJobConfigs(Callback):
    """Hydra callback: a sweep job's result keeps its return value, not its configs."""

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return  # a single run keeps its one result as Hydra made it
        job_return.cfg = None  # saved in <job dir>/.hydra/config.yaml
        job_return.hydra_cfg = None  # saved in <job dir>/.hydra/hydra.yaml
