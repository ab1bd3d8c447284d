"""The compiled training loop: full-batch gradient steps in chunks of a `tf.while_loop`.

In-graph sinks record inside the loop (see `Trainer._chunk` for how it avoids a branch per
step), so Python is only visited at chunk boundaries: for progress, for Python sinks
(images), and to stop on divergence. Step s's summaries describe the model after s
updates; the final state is recorded at step `steps`, so the last scalar equals what
metrics.json reports.
"""

from __future__ import annotations

import math
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


def no_op() -> None:
    """The branch of a `tf.cond` that records nothing."""


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
        in_graph = [s for s in periodic if s.in_graph]
        self.every_step = [s for s in in_graph if s.every == 1]
        self.every_block = [s for s in in_graph if s.every > 1]
        #: steps between the outer loop's visits: every in-graph cadence is a multiple of it
        self.block = math.gcd(*(s.every for s in self.every_block)) if self.every_block else 1000
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
        """Steps [start, stop) as nested while loops, stopping early on a non-finite loss.

        A `tf.cond` costs ~15 us in a loop, as much as a whole step, so the loop avoids
        them: the loss and gradients of step s are computed at the end of step s-1 and
        checked by the loop's own condition, so sinks due every step write without a
        branch; sinks due every N > 1 steps are asked once per block of `block` steps
        (the gcd of their cadences), in an outer loop.
        """
        t = self.experiment.tensors
        x, y = t["x_train"], t["y_train"]
        variables = self.model.trainable_variables

        def inner_body(step, loss, grads):
            stats = self.stats(loss)
            for sink in self.every_step:
                self._write(sink, tf.cast(step, tf.int64), stats)
            self.optimizer.apply(grads, variables)
            loss, grads = self.train_step(x, y)
            return step + 1, loss, grads

        def outer_body(step, loss, grads):
            if self.every_block:
                stats = self.stats(loss)
                for sink in self.every_block:
                    due = tf.equal(step % sink.every, 0)
                    tf.cond(
                        due, lambda s=sink: self._write(s, tf.cast(step, tf.int64), stats), no_op
                    )
            block_end = tf.minimum((step // self.block + 1) * self.block, stop)
            return tf.while_loop(
                lambda step, loss, _: tf.logical_and(step < block_end, tf.math.is_finite(loss)),
                inner_body,
                [step, loss, grads],
            )

        loss, grads = self.train_step(x, y)
        step, loss, _ = tf.while_loop(
            lambda step, loss, _: tf.logical_and(step < stop, tf.math.is_finite(loss)),
            outer_body,
            [start, loss, grads],
        )
        return step, tf.math.is_finite(loss)

    def _write(self, sink: Sink, step, stats) -> None:
        # Summary tags inherit the name scope; reset it so tags read `k`, not `while/cond/k`.
        with tf.compat.v1.name_scope(None), tf.summary.record_if(True):
            sink.record(self.experiment, step, stats)

    def _record_in_python(self, sinks: Sequence[Sink], step: int) -> dict[str, float]:
        """Record `sinks` eagerly at `step`; return the statistics they were given."""
        stats = {name: float(value) for name, value in self.stats().items()}
        for sink in sinks:
            with tf.summary.record_if(True):
                sink.record(self.experiment, step, stats)
        return stats

    # -- the whole run ------------------------------------------------------------------
    def run(
        self, steps: int, chunk: int, progress: bool = True, on_chunk: Callable | None = None
    ) -> Outcome:
        """Train for `steps` updates, recording every sink at its cadence and at the end."""
        started = time.perf_counter()
        if self.python_sinks:
            self._record_in_python(self.python_sinks, 0)
        start = 0
        bar = tqdm(total=steps, unit="step", disable=None if progress else True, leave=False)
        with bar:
            for end in chunk_ends(steps, chunk, self.python_sinks):
                reached, finite = self._run_chunk(tf.constant(start), tf.constant(end))
                reached, finite = int(reached), bool(finite)
                bar.update(reached - start)
                if not finite:  # the loss of step `reached` is NaN or Inf: no update applied
                    elapsed = time.perf_counter() - started
                    return Outcome(reached, True, self._final_stats(), elapsed)
                start = end
                due = [s for s in self.python_sinks if end < steps and end % s.every == 0]
                self._record_in_python(due, end)
                if on_chunk is not None:
                    on_chunk(end)
        # the final state, recorded by every sink whatever its cadence (a no-op for once-only sinks)
        final = self._record_in_python(self.sinks, steps)
        return Outcome(steps, False, final, time.perf_counter() - started)

    def _final_stats(self) -> dict[str, float]:
        return {name: float(value) for name, value in self.stats().items()}
