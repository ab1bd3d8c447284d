"""The compiled training loop: full-batch gradient steps in chunks of a `tf.while_loop`.

In-graph sinks record inside the loop under `tf.summary.record_if`, so Python is only
visited at chunk boundaries: for progress, for Python sinks (images), and to stop on
divergence. Step s's summaries describe the model after s updates; the final state is
recorded at step `steps`, so the last scalar equals what metrics.json reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import tensorflow as tf
from tqdm import tqdm

from pipeline.sinks.base import Experiment, Sink


@dataclass
class Outcome:
    """How training ended: the last step reached and the final statistics."""

    step: int  # number of updates applied while the loss stayed finite
    diverged: bool
    stats: dict[str, float]
    seconds: float = 0.0  # wall time of the training loop and its summaries


def mean_squared_error(prediction: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    with tf.name_scope("loss"):
        return tf.reduce_mean(tf.square(prediction - target))


def chunk_ends(steps: int, chunk: int, python_sinks: Sequence[Sink]) -> list[int]:
    """Steps at which the compiled loop hands control back to Python."""
    ends = set(range(chunk, steps, chunk))
    for sink in python_sinks:
        ends.update(range(sink.every, steps, sink.every))
    ends.add(steps)
    return sorted(ends)


class Trainer:
    """Runs the optimizer on the experiment's training data and feeds the sinks."""

    def __init__(self, experiment: Experiment, optimizer, sinks: Sequence[Sink]):
        self.experiment = experiment
        self.model = experiment.model
        self.optimizer = optimizer
        self.sinks = list(sinks)
        periodic = [s for s in sinks if s.every is not None]
        self.graph_sinks = [s for s in periodic if s.in_graph]
        self.python_sinks = [s for s in periodic if not s.in_graph]
        self.k_true = experiment.data.k_true
        self._run_chunk = tf.function(self._chunk, autograph=False)

    # -- one step, as it appears in the GRAPHS view -------------------------------------
    def train_step(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """Loss and gradients at the current weights (the update is applied by the caller)."""
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            loss = mean_squared_error(self.model(x), y)
        with tf.name_scope("gradients"):
            grads = tape.gradient(loss, variables)
        return loss, grads

    def step_graph(self) -> tf.Graph:
        """The graph of one full step (prediction, loss, gradients, update), traced only."""

        def one_step(x, y):
            loss, grads = self.train_step(x, y)
            self.optimizer.apply(grads, self.model.trainable_variables)
            return loss

        spec = tf.TensorSpec([None, 1], tf.float32)
        return tf.function(one_step, autograph=False).get_concrete_function(spec, spec).graph

    # -- statistics every sink can use --------------------------------------------------
    def stats(self, train_loss: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        t = self.experiment.tensors
        with tf.name_scope("stats"):
            if train_loss is None:
                train_loss = mean_squared_error(self.model(t["x_train"]), t["y_train"])
            out = {
                "k": self.model.slope(t["x_train"]),
                "train_loss": train_loss,
                "test_loss": mean_squared_error(self.model(t["x_test"]), t["y_test"]),
            }
            if self.k_true is not None:
                out["k_error"] = tf.abs(out["k"] - self.k_true)
        return out

    # -- the compiled chunk -------------------------------------------------------------
    def _chunk(self, start: tf.Tensor, stop: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        t = self.experiment.tensors
        variables = self.model.trainable_variables

        def keep_going(step, finite):
            return tf.logical_and(step < stop, finite)

        def one_step(step, finite):
            loss, grads = self.train_step(t["x_train"], t["y_train"])
            stats = self.stats(loss)
            finite = tf.math.is_finite(loss)
            self._record(self.graph_sinks, step, stats, finite)
            self.optimizer.apply(grads, variables)
            return step + 1, finite

        step, finite = tf.while_loop(keep_going, one_step, [start, tf.constant(True)])
        return step, finite

    def _record(self, sinks: Sequence[Sink], step, stats, when) -> None:
        step64 = tf.cast(step, tf.int64)
        for sink in sinks:
            # One branch per sink and step: cheaper than record_if's branch per summary op.
            due = when if sink.every == 1 else tf.logical_and(when, step % sink.every == 0)
            tf.cond(due, lambda sink=sink: self._write(sink, step64, stats), lambda: None)

    def _write(self, sink: Sink, step, stats) -> None:
        # Summary tags inherit the name scope; reset it so tags read `k`, not `while/cond/k`.
        with tf.compat.v1.name_scope(None), tf.summary.record_if(True):
            sink.record(self.experiment, step, stats)

    def _record_in_python(self, sinks: Sequence[Sink], step: int) -> None:
        stats = {name: value.numpy() for name, value in self.stats().items()}
        for sink in sinks:
            with tf.summary.record_if(True):
                sink.record(self.experiment, step, stats)

    # -- the whole run ------------------------------------------------------------------
    def run(
        self, steps: int, chunk: int, progress: bool = True, on_chunk: Callable | None = None
    ) -> Outcome:
        """Train for `steps` updates, recording every sink at its cadence and at the end."""
        started = time.perf_counter()
        for sink in self.python_sinks:
            self._record_in_python([sink], 0)
        start = 0
        bar = tqdm(total=steps, unit="step", disable=None if progress else True, leave=False)
        with bar:
            for end in chunk_ends(steps, chunk, self.python_sinks):
                reached, finite = self._run_chunk(tf.constant(start), tf.constant(end))
                reached, finite = int(reached), bool(finite)
                bar.update(reached - start)
                if not finite:
                    # the update of step reached-1 came from a non-finite loss
                    elapsed = time.perf_counter() - started
                    return Outcome(reached - 1, True, self._final_stats(), elapsed)
                start = end
                due = [s for s in self.python_sinks if end < steps and end % s.every == 0]
                self._record_in_python(due, end)
                if on_chunk is not None:
                    on_chunk(end)
        # the final state, recorded by every sink whatever its cadence (a no-op for once-only sinks)
        self._record_in_python(self.sinks, steps)
        return Outcome(steps, False, self._final_stats(), time.perf_counter() - started)

    def _final_stats(self) -> dict[str, float]:
        return {name: float(value) for name, value in self.stats().items()}
