"""The compiled training loop: gradient steps (full batch, or tf.data mini-batches) in chunks
of a `tf.while_loop`.

In-graph sinks record inside the loop (see `CompiledLoop._chunk` for how it avoids a
branch per step), so Python is only visited at chunk boundaries: for progress, for Python
sinks (images), and to stop on divergence. Step s's summaries describe the model after s
updates; the final state is recorded at step `steps`, so the last scalar equals what
metrics.json reports.

The loop is traced once and takes what differs from job to job (the data, the writers) as
arguments, so the jobs of a sweep can share one trace (`pipeline/reuse.py`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import tensorflow as tf
from tqdm import tqdm

from pipeline.compat import writer_from_handle, writer_handle
from pipeline.sinks.base import Experiment, Sink
from pipeline.sinks.scalars import ScalarSink


@dataclass
class Outcome:
    """How training ended: the last step reached and the final statistics."""

    step: int  # number of updates applied while the loss stayed finite
    diverged: bool
    stats: dict[str, float]
    seconds: float = 0.0  # wall time of the training loop and its summaries
    checkpoint_seconds: float = 0.0  # of which spent writing checkpoints (flush aside)


def no_op() -> None:
    """The branch of a `tf.cond` that records nothing."""


def chunk_ends(
    steps: int,
    chunk: int,
    python_sinks: Sequence[Sink],
    checkpoint_every: int | None = None,
    begin: int = 0,
) -> Iterator[int]:
    """Steps after `begin` at which the compiled loop hands control back to Python, in
    order: every `chunk` steps, where a Python sink is due, where a checkpoint is due, and
    at the end.

    Made one at a time (the next multiple of any of those cadences): a billion steps
    plan in constant memory.
    """
    periods = [chunk, *(sink.every for sink in python_sinks)]
    if checkpoint_every:
        periods.append(checkpoint_every)
    end = begin
    while end < steps:
        end = min(min((end // period + 1) * period for period in periods), steps)
        yield end


#: how long one compiled call should last: Python sees signals between calls
CALL_SECONDS = 0.25


class CallSizer:
    """How many steps the next compiled call runs so that it lasts about `CALL_SECONDS`.

    A signal handler runs only between calls (TensorFlow holds the thread inside one), so
    with `trainer.chunk=3000000` Ctrl-C would wait minutes. Splitting a chunk changes no
    number written: the batch is handed from call to call and sinks record by step.
    """

    def __init__(self, first: int = 1000):
        self.steps = first

    def split(self, start: int, end: int) -> int:
        """Where the call that starts at `start` stops, at most `end`."""
        return min(end, start + self.steps)

    def measured(self, steps: int, seconds: float) -> None:
        if steps > 0 and seconds > 0:
            self.steps = max(1, min(10**7, int(steps * CALL_SECONDS / seconds)))


def in_graph_sinks(sinks: Sequence[Sink]) -> list[Sink]:
    """The sinks traced into the loop: periodic ones that record with TensorFlow ops."""
    return [s for s in sinks if s.every is not None and s.in_graph]


def minibatches(x: tf.Tensor, y: tf.Tensor, batch_size: int, seed: int) -> tf.data.Iterator:
    """Endless mini-batches of the training points: each epoch a new permutation (the same
    ones for the same seed), cut into batches; the last n mod batch_size points of an
    epoch's order are left out of it.

    tf.data handles whole batches of indices, never single points, and each batch is
    gathered in one op: a million points cost no more per step than a hundred.
    """
    n = int(x.shape[0])
    per_epoch = n // batch_size

    def epoch_batches(epoch: tf.Tensor) -> tf.data.Dataset:
        order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=[seed, epoch])
        rows = tf.reshape(order[: per_epoch * batch_size], [per_epoch, batch_size])
        return tf.data.Dataset.from_tensor_slices(rows)

    batches = tf.data.Dataset.range(2**62).flat_map(epoch_batches)
    batches = batches.map(lambda i: (tf.gather(x, i), tf.gather(y, i)))
    return iter(batches.prefetch(2))


class CompiledLoop:
    """The model's training steps and the in-graph sinks, traced once into a `tf.function`.

    The model and optimizer are captured (their variables are the loop's state); the data
    tensors, the writers' handles and the mini-batch iterator are arguments, so a new
    value is a new call, not a new trace. A later job with the same model,
    optimizer and sinks config hands its freshly built pieces to `adopt`, which copies
    their starting values into this loop's variables, and runs without tracing again.
    """

    def __init__(self, model, optimizer, sinks: Sequence[Sink], task):
        self.model = model
        self.optimizer = optimizer
        self.task = task  # pipeline.tasks.Task: the loss and the statistics sinks record
        in_graph = in_graph_sinks(sinks)
        self.every_step = [s for s in in_graph if s.every == 1]
        self.every_block = [s for s in in_graph if s.every > 1]
        #: steps between the outer loop's visits: every in-graph cadence is a multiple of it
        self.block = math.gcd(*(s.every for s in self.every_block)) if self.every_block else 1000
        self._function = tf.function(self._chunk, autograph=False)
        self._record_function = tf.function(self._record_all, autograph=False)
        self._experiment: Experiment | None = None  # the calling job's, read while tracing
        self._step_graphs: dict[tuple, tf.Graph] = {}

    def __call__(
        self,
        experiment: Experiment,
        start: int,
        stop: int,
        batches: tf.data.Iterator | None = None,
        batch: tuple = (),
    ) -> tuple[int, bool, tuple]:
        """Run steps [start, stop) of `experiment`; return the step reached, whether the
        loss is still finite there, and the mini-batch drawn for the next step.

        With `batches` None every step sees all the training points; else step `start`
        uses `batch` and later steps draw theirs from `batches`. The batch returned is
        the next call's `batch`, so where chunks end does not change which batches the
        steps see.
        """
        reached, finite, batch = self._call(
            self._function,
            experiment,
            tf.constant(start, tf.int64),  # the summaries' step type: no cast a step
            tf.constant(stop, tf.int64),
            batches=batches,
            batch=tuple(batch),
        )
        return int(reached), bool(finite), batch

    def record_now(self, experiment: Experiment, step: int) -> dict[str, float]:
        """Every sink traced into the loop records the model as it is at `step`, whatever
        its cadence (the final state); return the statistics, as Python floats.

        One compiled call, traced once per loop like the chunk: run eagerly, a histogram
        is dozens of separate op calls, each a dispatch from Python.
        """
        stats = self._call(self._record_function, experiment, tf.constant(step, tf.int64))
        return {name: float(value) for name, value in stats.items()}

    def _call(self, function, experiment: Experiment, *steps, **more):
        """Call a traced function of the loop with the job's data and writers' handles as
        arguments; the rest of the job's experiment is read while tracing."""
        handles = {name: writer_handle(writer) for name, writer in experiment.writers.items()}
        self._experiment = experiment
        try:
            return function(*steps, tensors=dict(experiment.tensors), handles=handles, **more)
        finally:
            self._experiment = None

    def _seen_by_sinks(self, tensors, handles) -> Experiment:
        """Inside a traced function: the job's experiment with the loop's arguments (its
        model, the data and writers given to this call) in place of its own."""
        writers = {name: writer_from_handle(handle) for name, handle in handles.items()}
        return dataclasses.replace(
            self._experiment, model=self.model, tensors=tensors, writers=writers
        )

    def adopt(self, model, optimizer) -> bool:
        """Start a new job from `model` and `optimizer` (built fresh from the same config):
        copy their variables' values into this loop's. False if they do not match."""
        mine = variables_of(self.model) + variables_of(self.optimizer)
        fresh = variables_of(model) + variables_of(optimizer)
        if [(v.shape, v.dtype) for v in mine] != [(v.shape, v.dtype) for v in fresh]:
            return False
        for variable, value in zip(mine, fresh, strict=True):
            variable.assign(value)
        return True

    # -- one step, as it appears in the GRAPHS view -------------------------------------
    def train_step(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, list, tf.Tensor]:
        """Loss, gradients and predictions at the current weights (the update is applied
        by the caller; the predictions give the train-side metrics without a second pass)."""
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            prediction = self.model(x)
            loss = self.task.loss(prediction, y)
        with tf.name_scope("gradients"):
            grads = tape.gradient(loss, variables)
        return loss, grads, prediction

    def step_graph(self, x: tf.Tensor, y: tf.Tensor) -> tf.Graph:
        """The graph of one full step (prediction, loss, gradients, update) for data shaped
        like `x` and `y` (any number of points), traced only."""
        specs = tuple(tf.TensorSpec([None, *t.shape[1:]], t.dtype) for t in (x, y))
        if specs not in self._step_graphs:

            def one_step(x, y):
                loss, grads, _ = self.train_step(x, y)
                self.optimizer.apply(grads, self.model.trainable_variables)
                return loss

            one_step = tf.function(one_step, autograph=False)
            self._step_graphs[specs] = one_step.get_concrete_function(*specs).graph
        return self._step_graphs[specs]

    # -- the traced chunk ---------------------------------------------------------------
    def _record_all(self, step, tensors, handles) -> dict[str, tf.Tensor]:
        """What `record_now` traces: the statistics, and every in-loop sink's record."""
        experiment = self._seen_by_sinks(tensors, handles)
        stats = statistics(self.task, self.model, tensors)
        for sink in self.every_step + self.every_block:
            _write(sink, experiment, step, stats)
        return stats

    def _chunk(self, start, stop, tensors, handles, batches, batch) -> tuple:
        """Steps [start, stop) as nested while loops, stopping early on a non-finite loss.

        A `tf.cond` in a loop costs as much as a whole step, so the loop avoids
        them: the loss and gradients of step s are computed at the end of step s-1 and
        checked by the loop's own condition, so sinks due every step write without a
        branch; sinks due every N > 1 steps are asked once per block of `block` steps
        (the gcd of their cadences), in an outer loop. The outer loop starts on a
        multiple of `block` (a head loop runs the steps before it, e.g. after a resume),
        so a sink due every `block` steps (the default histograms) writes there without
        a branch too; only other cadences ask with a `tf.cond`. With mini-batches, the
        batch those gradients came from is carried too, and the sinks see it as the
        training data.
        """
        experiment = self._seen_by_sinks(tensors, handles)
        variables = self.model.trainable_variables

        def next_batch() -> tuple:
            """() for full-batch steps; else the next (x, y) mini-batch."""
            return () if batches is None else tuple(batches.get_next())

        def gradients(batch: tuple):
            """Loss and predictions (the train side's statistics), and the gradients."""
            x, y = batch or (tensors["x_train"], tensors["y_train"])
            loss, grads, prediction = self.train_step(x, y)
            return (loss, prediction), grads

        def seen_by_sinks(batch: tuple) -> Experiment:
            if not batch:
                return experiment
            view = {**tensors, "x_train": batch[0], "y_train": batch[1]}
            return dataclasses.replace(experiment, tensors=view)

        def record(sinks, step, train, batch) -> None:
            if not sinks:
                return
            seen = seen_by_sinks(batch)
            stats = statistics(self.task, self.model, seen.tensors, train)
            for sink in sinks:
                write = lambda s=sink: _write(s, seen, step, stats)  # noqa: E731
                if sink.every in (1, self.block):  # due at every step this runs at
                    write()
                else:
                    tf.cond(tf.equal(step % sink.every, 0), write, no_op)

        def inner_body(step, train, grads, batch):
            record(self.every_step, step, train, batch)
            self.optimizer.apply(grads, variables)
            batch = next_batch()
            train, grads = gradients(batch)
            return step + 1, train, grads, batch

        def going_on(end):
            """Until `end`, while the loss (`train[0]`) is finite."""
            return lambda step, train, *_: tf.logical_and(step < end, tf.math.is_finite(train[0]))

        def steps_until(end, step, train, grads, batch):
            """Every-step work from `step` to `end` (or a non-finite loss)."""
            return tf.while_loop(going_on(end), inner_body, [step, train, grads, batch])

        def outer_body(step, train, grads, batch):  # `step` is a multiple of `block`
            record(self.every_block, step, train, batch)
            return steps_until(tf.minimum(step + self.block, stop), step, train, grads, batch)

        train, grads = gradients(batch)
        # the head: a call that starts inside a block runs to the block's end first
        head_end = tf.minimum((start + self.block - 1) // self.block * self.block, stop)
        state = steps_until(head_end, start, train, grads, batch)
        step, train, _, batch = tf.while_loop(going_on(stop), outer_body, state)
        return step, tf.math.is_finite(train[0]), batch


#: the key of a run's tensors that holds the test stream (data given as `Streams`), batched
TEST_STREAM = "test_stream"
#: how many test examples the model sees at once when the test metrics read the stream
TEST_BATCH = 1024


def statistics(task, model, tensors, train: tuple | None = None) -> dict:
    """The task's statistics of the model as it is. With a test stream (tf.data input) the
    test side's go over every example of it: the predictions and targets of the whole
    stream are gathered (not its features) and the task's metrics computed on them, so
    each metric (a mean, R^2, any Keras metric) is what it would be on arrays."""
    stream = tensors.get(TEST_STREAM)
    if stream is None:
        return task.statistics(model, tensors, train)
    prediction, y = predictions_over(model, stream)
    view = {**tensors, "y_test": y}
    return task.statistics(model, view, train, test=(task.loss(prediction, y), prediction))


def predictions_over(model, batches: tf.data.Dataset) -> tuple[tf.Tensor, tf.Tensor]:
    """The model's predictions for every (features, target) batch of `batches`, and the
    targets, each concatenated; one pass, in graph (a `Dataset.reduce`)."""
    with tf.name_scope("test_stream"):
        _, y_spec = batches.element_spec

        def arrays(dtype) -> tf.TensorArray:
            return tf.TensorArray(dtype, size=0, dynamic_size=True, infer_shape=False)

        def add(state, batch):
            i, predictions, targets = state
            x, y = batch
            prediction = tf.cast(model(x), tf.float32)
            return i + 1, predictions.write(i, prediction), targets.write(i, y)

        start = (tf.constant(0), arrays(tf.float32), arrays(y_spec.dtype))
        _, predictions, targets = batches.reduce(start, add)
        return predictions.concat(), targets.concat()


def variables_of(piece) -> list[tf.Variable]:
    """All of a piece's variables (a tf.Module's, slots included), in a stable order."""
    return list(getattr(piece, "variables", ()))


def _write(sink: Sink, experiment: Experiment, step, stats) -> None:
    # Summary tags inherit the name scope; reset it so tags read `k`, not `while/cond/k`.
    with tf.compat.v1.name_scope(None), tf.summary.record_if(True):
        sink.record(experiment, step, stats)


class Trainer:
    """Runs a job's steps through the compiled loop and feeds its Python sinks."""

    def __init__(
        self,
        experiment: Experiment,
        loop: CompiledLoop,
        sinks: Sequence[Sink],
        batches: tf.data.Iterator | None = None,
        checkpoint=None,
        batch: tuple | None = None,
    ):
        self.experiment = experiment
        self.loop = loop
        self.sinks = list(sinks)
        self.python_sinks = [s for s in sinks if s.every is not None and not s.in_graph]
        self.batches = batches  # None: every step sees all the training points
        #: the mini-batch the next step uses: drawn here, then handed from chunk to chunk
        #: (a resumed run is handed the batch its checkpoint carried)
        if batches is None:
            self.batch = ()
        else:
            self.batch = tuple(next(batches)) if batch is None else tuple(batch)
        #: a pipeline.checkpoints.RunCheckpoint, or None: no checkpoints
        self.checkpoint = checkpoint
        self.saved_step: int | None = None  # the step of the last checkpoint written
        self.checkpoint_seconds = 0.0  # time spent writing them (docs/PERFORMANCE.md)

    def save(self, step: int) -> None:
        """Checkpoint the state after `step` updates, once the event files hold every
        record of the steps before it (flushed), so a resumed run continues them exactly."""
        if self.checkpoint is None:
            return
        for writer in self.experiment.writers.values():
            writer.flush()  # work the writer does anyway every `max_queue` events
        started = time.perf_counter()
        self.checkpoint.save(step, self.batch)
        self.saved_step = step
        self.checkpoint_seconds += time.perf_counter() - started

    def stats(self) -> dict[str, float]:
        """The statistics of the model as it is now, as Python floats."""
        tensors = statistics(self.loop.task, self.experiment.model, self.experiment.tensors)
        return {name: float(value) for name, value in tensors.items()}

    def _diverged(self, reached: int, started: float) -> Outcome:
        """The run ends at `reached`, the step whose loss is NaN or Inf. Its statistics (the
        model after `reached` updates, as metrics.json gives them) are recorded there by the
        scalar sinks, whatever their cadence: the event files end on the same step and
        values as metrics.json, the report and a sweep's summary."""
        scalars = [sink for sink in self.sinks if isinstance(sink, ScalarSink)]
        stats = self._record_in_python(scalars, reached)
        return Outcome(reached, True, stats, time.perf_counter() - started)

    def _record_in_python(
        self, sinks: Sequence[Sink], step: int, stats: dict[str, float] | None = None
    ) -> dict[str, float]:
        """Record `sinks` eagerly at `step` with `stats` (the model's now when None);
        return the statistics they were given."""
        stats = self.stats() if stats is None else stats
        for sink in sinks:
            with tf.summary.record_if(True):
                sink.record(self.experiment, step, stats)
        return stats

    def run(
        self,
        steps: int,
        chunk: int,
        progress: bool = True,
        on_chunk: Callable | None = None,
        start: int = 0,
        checkpoint_every: int | None = None,
        on_call: Callable | None = None,
    ) -> Outcome:
        """Train from step `start` (0, or a restored checkpoint's) to `steps` updates,
        recording every sink at its cadence and at the end, and checkpointing every
        `checkpoint_every` steps (chunk ends fall there, so the numbers never change).

        `on_chunk(step)` runs at every chunk end; `on_call(step)` after every compiled
        call, each lasting about `CALL_SECONDS` (the place to notice a signal).
        """
        started = time.perf_counter()
        # a resumed run's records at `start` by Python sinks were dropped with the events
        # past its checkpoint (pipeline.checkpoints.keep_events_before): record them again
        due = [s for s in self.python_sinks if start == 0 or start % s.every == 0]
        if due and start < steps:
            self._record_in_python(due, start)
        sizer = CallSizer()
        bar = tqdm(
            total=steps, initial=start, unit="step", disable=None if progress else True, leave=False
        )
        with bar:
            for end in chunk_ends(steps, chunk, self.python_sinks, checkpoint_every, start):
                while start < end:
                    stop = sizer.split(start, end)
                    call_started = time.perf_counter()
                    reached, finite, self.batch = self.loop(
                        self.experiment, start, stop, self.batches, self.batch
                    )
                    sizer.measured(reached - start, time.perf_counter() - call_started)
                    bar.update(reached - start)
                    if not finite:  # the loss of step `reached` is NaN or Inf: no update applied
                        return self._diverged(reached, started)
                    start = stop
                    if on_call is not None and start < end:
                        on_call(start)
                if checkpoint_every and end < steps and end % checkpoint_every == 0:
                    self.save(end)
                due = [s for s in self.python_sinks if end < steps and end % s.every == 0]
                if due:
                    self._record_in_python(due, end)
                if on_chunk is not None:
                    on_chunk(end)
        # the final state, recorded by every sink whatever its cadence (a no-op for once-only
        # sinks): the loop's own sinks in one compiled call, then the Python ones
        final = self.loop.record_now(self.experiment, steps)
        in_loop = set(map(id, in_graph_sinks(self.sinks)))  # the loop holds their like
        self._record_in_python([s for s in self.sinks if id(s) not in in_loop], steps, final)
        elapsed = time.perf_counter() - started
        return Outcome(steps, False, final, elapsed, self.checkpoint_seconds)
