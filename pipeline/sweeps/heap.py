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

The stacked launcher makes every job config of a batch before the first job runs, and
each stays alive until its job has run: `full_scans_waiting` keeps the collector from
walking the growing heap again and again while they are made (Python starts a full
collection each time what lived on grows by a quarter), and collects nothing less.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
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


#: a count of young collections that a batch's configs never reach
_NEVER = 2**30


@contextmanager
def full_scans_waiting() -> Iterator[None]:
    """While the block runs, the collector's young generations are collected as usual (an
    object that dies young goes), its full collections wait; the block's end restores
    the thresholds as they were, and the next full collection comes at its usual time."""
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], thresholds[1], _NEVER)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def freeze_a_first_batch() -> None:
    """The stacked launcher's first batch, once composed and trained: what is alive now (its
    job configs, TensorFlow, the groups) out of later scans. `FreezeWhatTheFirstJobLoaded`
    would freeze them all at the second job anyway (each config lives until its job runs),
    after one full collection walking them once more; that collection now walks only what
    the first job made. A later batch's configs stay collectable, as before."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
