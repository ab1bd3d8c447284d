"""HISTOGRAMS and DISTRIBUTIONS tabs: weights, hidden outputs and residuals."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from pipeline.sinks.base import Experiment, Sink
from pipeline.sinks.histogram_buckets import histogram


def variable_tag(variable: tf.Variable) -> str:
    """`mlp/hidden/weights:0` -> `mlp/hidden/weights`; a Keras 3 variable's path (its name
    is only `kernel`), so two layers' weights do not share one tag."""
    return getattr(variable, "path", None) or variable.name.split(":")[0]


class HistogramSink(Sink):
    """Every trainable variable by name, the model's activations and the residuals y - f(x).

    Residuals go to both writers so the train and test distributions overlay.
    """

    reusable_across_jobs = True  # records from model, tensors and writers only

    def __init__(self, every: int = 10, buckets: int = 30, writer: str = "train"):
        super().__init__(writer=writer, every=every)
        self.buckets = int(buckets)

    def record(self, experiment: Experiment, step: Any, stats: Mapping[str, Any]) -> None:
        model, t = experiment.model, experiment.tensors
        with self.writer_of(experiment).as_default(step=step):
            for variable in model.trainable_variables:
                histogram(variable_tag(variable), variable, buckets=self.buckets)
            for name, value in model.activations(t["x_train"]).items():
                histogram(f"activations/{name}", value, buckets=self.buckets)
        for split in ("train", "test"):
            residuals = t[f"y_{split}"] - model(t[f"x_{split}"])
            with self.writer_of(experiment, split).as_default(step=step):
                histogram("residuals", residuals, buckets=self.buckets)
