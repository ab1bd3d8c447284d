"""HISTOGRAMS and DISTRIBUTIONS tabs: weights, hidden outputs and residuals.

Tags come in three groups that sort after the lesson's scalars (pipeline/sinks/tags.py):
`outputs/<name>` (the model's activations), `parameters/<variable>` and `residuals`. A
variable holding one number (the linear model's `k`) is left out by default: its
histogram is a spike that repeats the scalar SCALARS already draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from pipeline.sinks.base import Experiment, Sink
from pipeline.sinks.histogram_buckets import many_histogram_buckets, write_histogram
from pipeline.sinks.tags import OUTPUTS, PARAMETERS, RESIDUALS


def variable_tag(variable: tf.Variable) -> str:
    """`mlp/hidden/weights:0` -> `mlp/hidden/weights`; a Keras 3 variable's path (its name
    is only `kernel`), so two layers' weights do not share one tag."""
    return getattr(variable, "path", None) or variable.name.split(":")[0]


class HistogramSink(Sink):
    """Every trainable variable by name, the model's activations and the residuals y - f(x).

    Residuals go to both writers so the train and test distributions overlay.
    """

    reusable_across_jobs = True  # records from model, tensors and writers only

    def __init__(
        self,
        every: int = 10,
        buckets: int = 30,
        writer: str = "train",
        single_values: bool = False,
        layers: tuple[str, ...] = (),
    ):
        super().__init__(writer=writer, every=every)
        self.buckets = int(buckets)
        self.single_values = bool(single_values)
        self.layers = [str(name) for name in layers or ()]
        self._layer_outputs: Any = None  # the Keras model giving those layers' outputs

    def start(self, experiment: Experiment) -> None:
        """Find the layers the config names (before the loop is traced)."""
        self.outputs_of(experiment.model)

    def writers_used(self) -> set[str]:
        return {self.writer, "train", "test"}  # residuals go to both

    def shown(self, variable: tf.Variable) -> bool:
        """A variable of one number is shown only when `single_values` asks for it."""
        return self.single_values or variable.shape.num_elements() != 1

    def record(self, experiment: Experiment, step: Any, stats: Mapping[str, Any]) -> None:
        """Bucket every histogram of this step together (`histograms`), then write each
        under its tag and writer."""
        for writer, tag, buckets in self.histograms(experiment):
            with self.writer_of(experiment, writer).as_default(step=step):
                write_histogram(tag, buckets)

    def histograms(self, experiment: Experiment) -> list[tuple[str, str, Any]]:
        """(writer, tag, buckets) of every histogram of the model's present state, bucketed
        together (one set of ops, not one per histogram: `many_histogram_buckets`)."""
        shown = self.shown_data(experiment)
        if not shown:
            return []
        buckets = many_histogram_buckets([data for *_, data in shown], self.buckets)
        return [(writer, tag, each) for (writer, tag, _), each in zip(shown, buckets, strict=True)]

    def shown_data(self, experiment: Experiment) -> list[tuple[str, str, Any]]:
        """(writer, tag, data) of every histogram of the model's present state, before
        bucketing (the stacked launcher buckets a job's steps together from them:
        pipeline/sweeps/stacked_sinks.py)."""
        model, t = experiment.model, experiment.tensors
        shown = [
            (self.writer, PARAMETERS + variable_tag(variable), variable)
            for variable in model.trainable_variables
            if self.shown(variable)
        ]
        shown += [
            (self.writer, OUTPUTS + name, value)
            for name, value in self.activations(model, t["x_train"]).items()
        ]
        for split in ("train", "test"):  # residuals where y and the prediction are alike
            y, prediction = t[f"y_{split}"], model(t[f"x_{split}"])
            if y.dtype.is_floating and y.shape == prediction.shape:
                shown.append((split, RESIDUALS, y - prediction))
        return [item for item in shown if item[2].shape.num_elements() != 0]  # nothing to show

    def activations(self, model: Any, x: Any) -> dict[str, Any]:
        """The model's own `activations(x)`, and the outputs of the layers the config names."""
        found = dict(model.activations(x)) if callable(getattr(model, "activations", None)) else {}
        outputs = self.outputs_of(model)
        if outputs is not None:
            values = outputs(x)
            values = values if isinstance(values, (list, tuple)) else [values]
            found.update(zip(self.layers, values, strict=True))
        return found

    def outputs_of(self, model: Any) -> Any:
        """A Keras model from the model's input to the named layers' outputs (None: none
        named); a one-line error naming a layer that does not exist."""
        if not self.layers or self._layer_outputs is not None:
            return self._layer_outputs
        from pipeline.check.errors import BadInput
        from pipeline.models import layer_outputs

        try:
            self._layer_outputs = layer_outputs(model, self.layers, "sinks.histograms.layers")
        except ValueError as error:
            raise BadInput(str(error)) from None
        return self._layer_outputs
