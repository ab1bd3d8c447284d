"""Many settings of one shape trained as one, and each one's steps written as its own run.

`hydra/launcher=stacked` (pipeline/sweeps/stacked.py) hands this module the jobs of a sweep
that differ only in values: the tutorial's `LinearModel` fitted by mean squared error with
SGD or Adam, full batch, on data of the same shape. `train_stacked` trains them together:
the weight k gets a leading settings axis (one k per job), the data of every job are
stacked the same way, and one `tf.while_loop` inside one `tf.function` (as
pipeline/train.py does) runs every job's steps at once, with each job's own learning rate,
Adam constants and starting value. It keeps k after every step: the path of each job.

Each job then runs as a normal job (its dir, `.hydra/`, metrics.json, run.json, sinks)
with one difference: `ReplayTrainer` takes the place of `train.Trainer` (the launcher
hands it to `app.run` through pipeline/job.py). At each step it
sets the model's weight to the job's path and calls the run's own sinks exactly where
the basic loop calls them (every in-loop sink at its cadence, the Python sinks at chunk
ends, every sink at the final step), so the same code writes the same tags at the same
steps from the same weights: the statistics are the task's own, computed from the model.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from pipeline.train import (
    CompiledLoop,
    Outcome,
    Trainer,
    _write,
    chunk_ends,
    in_graph_sinks,
    no_op,
)

#: the optimizers the stacked loop knows, by their class's `_target_`
SGD = "pipeline.optimizers.SGD"
ADAM = "pipeline.optimizers.Adam"
#: a `Setting`'s fields Adam reads besides the learning rate
ADAM_CONSTANTS = ("beta1", "beta2", "epsilon")


@dataclass
class Setting:
    """One job of a stacked group: its data and the values its training starts from."""

    x_train: np.ndarray  # (N, 1) float32, as the job's own data generator returns them
    y_train: np.ndarray
    k_init: float
    learning_rate: float
    beta1: float = 0.9  # Adam only
    beta2: float = 0.999
    epsilon: float = 1e-7
    x_test: np.ndarray | None = None  # given: the test loss of every step is kept too
    y_test: np.ndarray | None = None
    #: an MLP's starting weights (w_hidden, b_hidden, w_out, b_out), as the job's own
    #: `MLPModel` drew them (pipeline/sweeps/stacked_mlp.py); None for a `LinearModel`
    weights: tuple[np.ndarray, ...] | None = None


@dataclass
class Paths:
    """What the stacked loop kept: k after every step of every job, and which stayed finite."""

    k: np.ndarray  # (steps + 1, settings): k after s updates
    finite: np.ndarray  # (settings,) bool: every loss of the job finite, the last one too
    #: (steps + 1, settings): the mean squared error of k after s updates, on each job's
    #: train and test points (test: None unless every setting gave its test data)
    train_loss: np.ndarray | None = None
    test_loss: np.ndarray | None = None
    seconds: float = 0.0  # the group's training, tracing included


def train_stacked(settings: Sequence[Setting], optimizer: str, steps: int) -> Paths:
    """Train every setting's `LinearModel` on its own data in one compiled loop.

    The arithmetic is that of `LinearModel`, the task's mean squared error and the fused
    update kernels of pipeline/optimizers.py, elementwise per setting; only the sums over
    a job's points run over a stacked tensor (docs/LAUNCHERS.md says how close that is).
    """
    started = time.perf_counter()
    column = lambda values: tf.constant(  # noqa: E731
        np.asarray(values, np.float32).reshape(-1, 1, 1)
    )
    stacked = lambda arrays: tf.constant(np.stack(arrays).astype(np.float32))  # noqa: E731
    x = stacked([s.x_train for s in settings])
    y = stacked([s.y_train for s in settings])
    tested = all(s.x_test is not None and s.y_test is not None for s in settings)
    x_test = stacked([s.x_test for s in settings]) if tested else x
    y_test = stacked([s.y_test for s in settings]) if tested else y
    k = tf.Variable(column([s.k_init for s in settings]), name="k")
    apply = optimizer_step(optimizer, settings, [k])
    count = len(settings)

    def losses(x=x, y=y) -> tf.Tensor:
        """Each setting's mean squared error, (settings,): the task's `mse`, a mean of
        (prediction - y)^2 over the job's points, the prediction `LinearModel`'s k * x."""
        return tf.reduce_mean(tf.square(k * x - y), axis=[1, 2])

    def update(step: tf.Tensor) -> tf.Tensor:
        """One step of every setting; returns the losses before it."""
        with tf.GradientTape() as tape:
            each = losses()
            total = tf.reduce_sum(each)  # settings do not share weights: d total/d k_s
        apply(step, tape.gradient(total, [k]))
        return each

    def run() -> tuple[tf.Tensor, ...]:
        path, train, test = (tf.TensorArray(tf.float32, size=steps + 1) for _ in range(3))

        def body(step, path, train, test, finite):
            path = path.write(step, tf.reshape(k, [count]))
            if tested:  # before the update: the loss of k after `step` updates
                test = test.write(step, losses(x_test, y_test))
            each = update(step)
            train = train.write(step, each)
            finite = tf.logical_and(finite, tf.math.is_finite(each))
            return step + 1, path, train, test, finite

        start = (tf.constant(0), path, train, test, tf.ones([count], tf.bool))
        _, path, train, test, finite = tf.while_loop(lambda step, *_: step < steps, body, start)
        path = path.write(steps, tf.reshape(k, [count]))
        last = losses()
        train = train.write(steps, last)
        test = test.write(steps, losses(x_test, y_test)) if tested else test
        finite = tf.logical_and(finite, tf.math.is_finite(last))
        return path.stack(), finite, train.stack(), test.stack() if tested else train.stack()

    path, finite, train, test = tf.function(run, autograph=False)()
    return Paths(
        path.numpy(),
        finite.numpy(),
        train.numpy(),
        test.numpy() if tested else None,
        time.perf_counter() - started,
    )


def optimizer_step(
    optimizer: str, settings: Sequence[Setting], variables: Sequence[tf.Variable]
) -> Callable[[tf.Tensor, Sequence[tf.Tensor]], None]:
    """`apply(step, grads)`: one update of stacked `variables` (leading axis: the settings)
    by `optimizer`, each setting with its own learning rate (and Adam constants).

    The arithmetic of the fused kernels pipeline/optimizers.py calls, term by term and
    elementwise, since a kernel takes one learning rate for a whole variable. Adam's
    moments are created here, zero, as `Adam.build` creates them.
    """

    def per_setting(values: Sequence[float], variable: tf.Variable) -> tf.Tensor:
        """One value a setting, shaped to broadcast over its slice of `variable`."""
        shape = (-1,) + (1,) * (variable.shape.rank - 1)
        return tf.constant(np.asarray(values, np.float32).reshape(shape))

    lrs = [per_setting([s.learning_rate for s in settings], v) for v in variables]
    if optimizer != ADAM:

        def sgd(step: tf.Tensor, grads: Sequence[tf.Tensor]) -> None:
            for variable, grad, lr in zip(variables, grads, lrs, strict=True):
                variable.assign(sgd_update(variable, grad, lr))

        return sgd
    constants = [
        tuple(per_setting([getattr(s, name) for s in settings], v) for name in ADAM_CONSTANTS)
        for v in variables
    ]
    slots = [
        (tf.Variable(tf.zeros_like(v), name="m"), tf.Variable(tf.zeros_like(v), name="v"))
        for v in variables
    ]

    def adam(step: tf.Tensor, grads: Sequence[tf.Tensor]) -> None:
        t = tf.cast(step + 1, tf.float32)  # Adam.iterations + 1
        for variable, grad, lr, constant, (m, v) in zip(
            variables, grads, lrs, constants, slots, strict=True
        ):
            value, m_new, v_new = adam_update(t, variable, grad, m, v, lr, *constant)
            m.assign(m_new)
            v.assign(v_new)
            variable.assign(value)

    return adam


def sgd_update(weight: tf.Tensor, grad: tf.Tensor, lr: tf.Tensor) -> tf.Tensor:
    """The weight after one SGD step: ResourceApplyGradientDescent's var - delta * alpha."""
    return weight - grad * lr


def adam_update(
    t: tf.Tensor, weight: tf.Tensor, grad: tf.Tensor, m: tf.Tensor, v: tf.Tensor,
    lr: tf.Tensor, beta1: tf.Tensor, beta2: tf.Tensor, epsilon: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:  # fmt: skip
    """The weight and moments after Adam's step `t` (1, 2, ...): ResourceApplyAdam's
    arithmetic term by term, elementwise (the constants broadcast, one a setting)."""
    alpha = lr * tf.sqrt(1.0 - tf.pow(beta2, t)) / (1.0 - tf.pow(beta1, t))
    m = m + (grad - m) * (1.0 - beta1)
    v = v + (tf.square(grad) - v) * (1.0 - beta2)
    return weight - (m * alpha) / (tf.sqrt(v) + epsilon), m, v


# -- one job of a stacked group, written as a normal run -------------------------------
class ReplayTrainer(Trainer):
    """`Trainer` whose steps set the weights from a path instead of computing them.

    Every sink is called where `Trainer.run` calls it: the loop's sinks at each step of
    their cadence (inside one compiled function, traced once per loop), the Python sinks
    at the same chunk ends, every sink at the final step. It keeps no checkpoint (`save`).

    `path` holds one array per trainable variable (in the model's order), a row per kept
    step; `rows[s]` is the row of the last kept step at or before step s (None: every
    step kept, row s). `columns` (None: computed from the model at each step) gives the
    task's scalars of every step, `<writer>/<tag>` -> (steps + 1,): then only the steps
    where a sink other than the scalars records, and the last, need their weights kept.
    """

    def __init__(
        self,
        path: Sequence[np.ndarray],
        *args,
        rows: np.ndarray | None = None,
        columns: Mapping[str, np.ndarray] | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.path = [tf.constant(values) for values in path]
        count = int(self.path[0].shape[0])
        rows = np.arange(count) if rows is None else np.asarray(rows)
        self.rows = tf.constant(rows, tf.int32)
        self.kept = {int(step) for step in np.flatnonzero(np.diff(rows, prepend=-1))}
        self.columns = None if columns is None else {n: tf.constant(v) for n, v in columns.items()}

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
        if start != 0 or int(self.rows.shape[0]) != steps + 1:  # not the path of this run
            raise ValueError(f"a stacked job replays steps 0..{steps}, not from step {start}")
        started = time.perf_counter()
        self.set_weights(0)
        if self.python_sinks and steps > 0:
            self._record_in_python(self.python_sinks, 0)
        replay = replay_function(self.loop, self.columns is not None)
        given = {} if self.columns is None else {"columns": self.columns}
        for end in chunk_ends(steps, chunk, self.python_sinks, checkpoint_every, start):
            self.loop._call(
                replay,
                self.experiment,
                tf.constant(start, tf.int64),
                tf.constant(end, tf.int64),
                path=tuple(self.path),
                rows=self.rows,
                **given,
            )
            start = end
            self.set_weights(end)
            if checkpoint_every and end < steps and end % checkpoint_every == 0:
                self.save(end)
            due = [s for s in self.python_sinks if end < steps and end % s.every == 0]
            if due:
                self._record_in_python(due, end)
            if on_chunk is not None:
                on_chunk(end)
        final = self.loop.record_now(self.experiment, steps)
        in_loop = set(map(id, in_graph_sinks(self.sinks)))  # the loop holds their like
        self._record_in_python([s for s in self.sinks if id(s) not in in_loop], steps, final)
        return Outcome(steps, False, final, time.perf_counter() - started, self.checkpoint_seconds)

    def save(self, step: int) -> None:
        """No checkpoint: the optimizer's state (Adam's moments) stayed in the stacked loop,
        so one saved here could not go on to the same numbers. An interrupted stacked job
        is trained again from step 0 by `tbpipe resume`, as one that kept no checkpoint."""

    def set_weights(self, step: int) -> None:
        """The model as it was after `step` updates, when that step was kept (a step that
        was not is one where no sink reads the weights)."""
        if step not in self.kept:
            return
        row = self.rows[step]
        for variable, values in zip(self.loop.model.trainable_variables, self.path, strict=True):
            variable.assign(values[row])


#: one traced replay per compiled loop and kind (a sweep's jobs of one config share a loop)
_replays: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def replay_function(loop: CompiledLoop, given: bool = False):
    """The compiled replay of steps [start, stop) for `loop`'s model and sinks: the
    weights set from the path at each step, the task's scalars computed from the model,
    or read from the columns given (`given`)."""
    replays = _replays.setdefault(loop, {})
    if given in replays:
        return replays[given]
    # weakly: a replay holding its loop would keep every loop of the sweep alive (an MLP's
    # seed is part of its loop's config, so each seed traces a loop of its own)
    owner = weakref.ref(loop)

    def replay(start, stop, tensors, handles, path, rows, columns=None):
        loop = owner()
        experiment = loop._seen_by_sinks(tensors, handles)
        variables = loop.model.trainable_variables

        def body(step):
            row = rows[step]
            for variable, values in zip(variables, path, strict=True):
                variable.assign(values[row])
            if columns is None:
                stats = loop.task.statistics(loop.model, tensors)
            else:  # the task's order: ScalarSink writes them as it gets them
                stats = {name: columns[name][step] for name in loop.task.scalars}
            for sink in loop.every_step:
                _write(sink, experiment, step, stats)
            for sink in loop.every_block:
                write = lambda s=sink: _write(s, experiment, step, stats)  # noqa: E731
                tf.cond(tf.equal(step % sink.every, 0), write, no_op)
            return (step + 1,)

        tf.while_loop(lambda step: step < stop, body, [start])

    replays[given] = tf.function(replay, autograph=False)
    return replays[given]
