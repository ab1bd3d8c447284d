"""SCALARS tab: the task's loss and metrics on train and on test (for the tutorial's line,
the estimated k and its error too).

The tags are the lesson, named so that TensorBoard opens on them (pipeline/sinks/tags.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from pipeline.sinks.base import Experiment, Sink


class ScalarSink(Sink):
    """Every scalar of the task under its tag, on its writer: `loss` on train and test,
    each metric (`accuracy`, `mae`), and for the tutorial's line `k` and `k/error`
    (= |k - k_true|) on train.

    The same tag in the train and test runs (`loss`) makes TensorBoard draw both curves
    on one chart.
    """

    reusable_across_jobs = True  # records from model, tensors and writers only

    def __init__(self, every: int = 1):
        super().__init__(every=every)

    def writers_used(self) -> set[str]:
        return {"train", "test"}

    def record(self, experiment: Experiment, step: Any, stats: Mapping[str, Any]) -> None:
        by_writer: dict[str, list[tuple[str, Any]]] = {}
        for name, value in stats.items():  # "<writer>/<tag>", in the task's order
            writer, _, tag = name.partition("/")
            by_writer.setdefault(writer, []).append((tag, value))
        for writer, scalars in by_writer.items():
            with self.writer_of(experiment, writer).as_default(step=step):
                for tag, value in scalars:
                    tf.summary.scalar(tag, value)
