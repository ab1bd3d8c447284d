"""SCALARS tab: the estimated k, its error and the loss, on train and on test.

The tags are the lesson, named so that TensorBoard opens on them (pipeline/sinks/tags.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from pipeline.sinks.base import Experiment, Sink
from pipeline.sinks.tags import K_ERROR, LOSS, K


class ScalarSink(Sink):
    """Train: `k`, `k/error` (= |k - k_true|) and `loss`; test: `loss`.

    The same tag `loss` in the train and test runs makes TensorBoard draw both curves
    on one chart.
    """

    reusable_across_jobs = True  # records from model, tensors and writers only

    def __init__(self, every: int = 1):
        super().__init__(every=every)

    def writers_used(self) -> set[str]:
        return {"train", "test"}

    def record(self, experiment: Experiment, step: Any, stats: Mapping[str, Any]) -> None:
        with self.writer_of(experiment, "train").as_default(step=step):
            tf.summary.scalar(K, stats["k"])
            if "k_error" in stats:
                tf.summary.scalar(K_ERROR, stats["k_error"])
            tf.summary.scalar(LOSS, stats["train_loss"])
        with self.writer_of(experiment, "test").as_default(step=step):
            tf.summary.scalar(LOSS, stats["test_loss"])
