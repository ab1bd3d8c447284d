"""A Hydra callback for benchmarks and tests: each job's resident memory, as the job ends.

Use: `tbpipe -m ... +hydra.callbacks.memory._target_=benchmarks.memory_probe.MemoryProbe
+hydra.callbacks.memory.path=/tmp/rss.txt` (with the checkout on PYTHONPATH). Appends one
line per job: job number, RSS in MiB, seconds since the sweep started; and, when the sweep
ends (after the sweep summary: the last callback Hydra calls at the end is the first one
listed, tbpipe's own), one line `end <RSS> <seconds>`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def resident_mib() -> float:
    """This process's resident set size now (Linux), in MiB."""
    with open("/proc/self/statm") as stream:
        pages = int(stream.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class MemoryProbe(Callback):
    """Appends `job rss_mib seconds` to `path` when each job ends, `end ...` after the sweep."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.started = time.perf_counter()

    def write(self, what: Any) -> None:
        with open(self.path, "a") as stream:
            elapsed = time.perf_counter() - self.started
            stream.write(f"{what} {resident_mib():.1f} {elapsed:.3f}\n")

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        self.write(config.hydra.job.num)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        import atexit

        # tbpipe leaves through the atexit handlers, after every callback's on_multirun_end
        atexit.register(self.write, "end")
