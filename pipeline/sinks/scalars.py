"""SCALARS tab: the estimated k, its error and the loss, on train and on test."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from pipeline.sinks.base import Experiment, Sink


class ScalarSink(Sink):
    """Train: `k`, `k_error` (= |k - k_true|) and `loss`; test: `loss`.

    The same tag `loss` in the train and test runs makes TensorBoard draw both curves
    on one chart.
    """

    reusable_across_jobs = True  # records from model, tensors and writers only

    def __init__(self, every: int = 1):
        super().__init__(every=every)

    def record(self, experiment: Experiment, step: Any, stats: Mapping[str, Any]) -> None:
        with self.writer_of(experiment, "train").as_default(step=step):
            tf.summary.scalar("k", stats["k"])
            if "k_error" in stats:
                tf.summary.scalar("k_error", stats["k_error"])
            tf.summary.scalar("loss", stats["train_loss"])
        with self.writer_of(experiment, "test").as_default(step=step):
            tf.summary.scalar("loss", stats["test_loss"])
