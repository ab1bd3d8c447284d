"""A Hydra callback for benchmarks and tests: each job's resident memory, as the job ends.

Use: `tbpipe -m ... +hydra.callbacks.memory._target_=benchmarks.memory_probe.MemoryProbe
+hydra.callbacks.memory.path=/tmp/rss.txt` (with the checkout on PYTHONPATH). Appends one
line per job: job number, RSS in MiB, seconds since the sweep started.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def resident_mib() -> float:
    """This process's resident set size now (Linux), in MiB."""
    with open("/proc/self/statm") as stream:
        pages = int(stream.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class MemoryProbe(Callback):
    """Appends `job rss_mib seconds` to `path` when each job ends."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.started = time.perf_counter()

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        with open(self.path, "a") as stream:
            elapsed = time.perf_counter() - self.started
            stream.write(f"{config.hydra.job.num} {resident_mib():.1f} {elapsed:.3f}\n")
