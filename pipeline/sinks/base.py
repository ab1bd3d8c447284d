"""What every sink shares: the `Sink` contract and the `Experiment` it records from.

A sink says what it records, how often (`every` N steps) and into which writer. Sinks
with `in_graph = True` are traced into the compiled training loop; the others (e.g. a
matplotlib image) run in Python at chunk boundaries. Sinks know nothing of Hydra.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.data import Dataset


@dataclass
class Experiment:
    """Everything a sink may look at while a run is under way."""

    model: Any  # a Keras model or tf.Module: __call__(x), trainable_variables (see contracts)
    data: Dataset  # the numpy arrays, for plots
    tensors: Mapping[str, Any]  # x_train, y_train, x_test, y_test as tf constants (k_true)
    writers: Mapping[str, Any]  # "train" / "test" -> tf.summary.SummaryWriter
    step_graph: Callable[[], Any]  # returns the tf.Graph of one training step
    config_yaml: str  # the resolved config, for the TEXT tab
    command: str  # the command line that reproduces the run
    run_dir: Path
    #: the run's settings for the HPARAMS tab (name -> bool/int/float/str)
    hparams: Mapping[str, Any] = field(default_factory=dict)
    #: what sets this run apart, in its folder name's words (`noise_std=0.5`), for titles
    label: str = ""
    #: the run's pipeline.tasks.Task: its loss, metrics (the `stats` keys) and pictures
    task: Any = None


class Sink:
    """Base class for a summary kind. Override `start` (once) and/or `record`.

    `record` runs every `every` steps and always once more for the final state.
    """

    #: record every N steps; None: no periodic records (only `start` and the final state).
    every: int | None = None
    #: True: `record` is traced into the compiled loop; False: it runs in Python.
    in_graph: bool = True
    #: True: the sink does the same in every job with the same config: it draws nothing
    #: from TensorFlow's global random state, and what `record` traces into the loop reads
    #: nothing of the experiment but `model`, `tensors` and `writers`. Then one trace of
    #: the loop serves every job of a sweep (pipeline/reuse.py). Say so only when true.
    reusable_across_jobs: bool = False

    def __init__(self, writer: str = "train", every: int | None = None):
        self.writer = writer
        if every is not None:
            self.every = int(every)

    def writers_used(self) -> set[str]:
        """The writers this sink writes to. A writer no sink uses is not opened, so
        TensorBoard lists no empty run (e.g. `test` when only the graph is written).
        By default both, which is always safe; tbpipe's sinks name their own."""
        return {"train", "test"}

    def start(self, experiment: Experiment) -> None:
        """Called once before the first training step."""

    def record(self, experiment: Experiment, step: Any, stats: Mapping[str, Any]) -> None:
        """Write this sink's summaries for `step`.

        `stats` maps `<writer>/<tag>` to the task's scalars at that step: `train/loss`,
        `test/loss`, each metric (`test/accuracy`), for the tutorial's line `train/k` and
        `train/k/error`."""

    def finish(self, experiment: Experiment, status: str) -> None:
        """Called once when the run ends, with its state (pipeline.runinfo: completed,
        diverged, failed, interrupted), while the writers are still open."""

    def writer_of(self, experiment: Experiment, name: str | None = None) -> Any:
        """The summary writer this sink writes to (or another one, by name)."""
        return experiment.writers[name or self.writer]
