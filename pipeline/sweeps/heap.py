"""A sweep in one process stops paying, job after job, to scan what its first job loaded.

Python's cyclic garbage collector walks every tracked object it holds in its oldest
generation each time that generation is collected. After a sweep's first job that is
TensorFlow, Hydra, matplotlib and the traced loop: over a million objects, a long
collection, which fell on roughly one job in four of a sweep run by Hydra's basic launcher
(benchmarks/job_profile.py). None of them becomes garbage while
the sweep runs.

`gc.freeze()` (Python's own remedy: the objects alive now are left out of every later
collection) is called once, as the second job in a process starts, after one full
collection: the first job's garbage is freed, not kept. A process that runs one job
(a single run, a Slurm job) never pays for that collection. Objects made later are
collected as before, so memory stays flat (tests/test_sweep_memory.py).
"""

from __future__ import annotations

import gc
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class FreezeWhatTheFirstJobLoaded(Callback):
    """Hydra callback: from a process's second job on, the objects its first job left alive
    are out of the garbage collector's scans."""

    def __init__(self) -> None:
        self.jobs_started = 0

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.jobs_started += 1
        if self.jobs_started == 2:
            gc.collect()  # the first job's garbage goes; what is left is what stays
            gc.freeze()
