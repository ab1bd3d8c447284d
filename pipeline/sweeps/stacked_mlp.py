"""`model=mlp` jobs of one width trained as one: every weight with a leading settings axis.

`hydra/launcher=stacked` (pipeline/sweeps/stacked.py) hands this module the jobs of a sweep
whose `MLPModel` has the same `hidden` and `activation`, fitted by mean squared error with
SGD or Adam, full batch, on `LinearData` of the same shape. Each job's `MLPModel` is built
as its run builds it, so its starting weights are the ones its own seed and `init_std`
draw; `train_stacked_mlp` stacks them (w_hidden (S, 1, H), b_hidden (S, H), w_out (S, H, 1),
b_out (S, 1)) and runs every job's steps in one `tf.while_loop` inside one `tf.function`:
the model's arithmetic with batched matmuls, each job's data, learning rate and Adam
constants, the update of pipeline/optimizers.py term by term
(`stacked_train.optimizer_step`).

An MLP's weights are many numbers a step, so the loop keeps what the job's sinks need
rather than its whole path: the task's scalars of every step (the train and test loss,
the model's least-squares slope k on the train and test points), computed inside the loop
as the task computes them; and the weights only at the steps where another sink records
(`kept_steps`: the histograms' and pictures' cadence, the first and the last step). A job
with only the scalars sink is then written by the launcher from those columns
(pipeline/sweeps/stacked_write.py); any other replays them through its own sinks
(`stacked_train.ReplayTrainer`). `group_size` bounds what a group holds.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from pipeline.models import _ACTIVATIONS, MLPModel
from pipeline.sweeps.stacked_train import Setting, optimizer_step

log = logging.getLogger("hydra")  # the sweep's own lines, as pipeline/sweeps/stacked.py's

#: the MLP's weights in the order a `Setting` holds them (`MLPModel`'s attributes)
WEIGHTS = ("w_hidden", "b_hidden", "w_out", "b_out")
#: the scalars the loop keeps a column of, by `<writer>/<tag>` (k/error follows from k)
COLUMNS = ("train/loss", "test/loss", "train/k", "test/k")
#: what one group may hold, in bytes: its kept weights and the loop's largest tensors
GROUP_BYTES = 256 * 2**20


@dataclass
class MLPPaths:
    """What the stacked loop kept of every job."""

    columns: dict[str, np.ndarray]  # COLUMNS -> (steps + 1, settings): after s updates
    kept: np.ndarray  # (K,) the steps whose weights are kept, ascending
    weights: list[np.ndarray]  # WEIGHTS' order, each (K, settings, *shape): after kept[i] updates
    finite: np.ndarray  # (settings,) bool: every loss of the job finite, the last one too
    seconds: float = 0.0  # the group's training, tracing included

    def rows(self, steps: int) -> np.ndarray:
        """(steps + 1,): for each step the row of the last kept step at or before it."""
        return np.searchsorted(self.kept, np.arange(steps + 1), side="right") - 1


def starting_weights(model: MLPModel) -> tuple[np.ndarray, ...]:
    """The job's `MLPModel`'s weights as it drew them, in WEIGHTS' order."""
    return tuple(getattr(model, name).numpy() for name in WEIGHTS)


def model_order(model: MLPModel) -> list[int]:
    """Where each of `model.trainable_variables` is in WEIGHTS (a replay sets them in the
    model's order, which `tf.Module` sorts by attribute name)."""
    ids = [id(getattr(model, name)) for name in WEIGHTS]
    return [ids.index(id(variable)) for variable in model.trainable_variables]


def kept_steps(steps: int, cadences: Iterable[int | None]) -> np.ndarray:
    """The steps whose weights a job's sinks read: 0, the last, and every multiple of a
    sink's cadence (None: a sink that records only at the start or the end)."""
    kept = {0, steps}
    for every in cadences:
        if every:
            kept.update(range(0, steps, int(every)))
    return np.array(sorted(kept), np.int64)


def cadence_of(node) -> int | None:
    """A sink config's `every` (its class's default when the config does not say)."""
    from pipeline.contracts import class_of

    if "every" in node:
        return node.get("every")
    cls = class_of(str(node.get("_target_")))
    parameter = inspect.signature(cls).parameters.get("every") if cls is not None else None
    default = None if parameter is None else parameter.default
    return None if default is inspect.Parameter.empty else default


def bytes_a_job(hidden: int, kept: int, steps: int, points: int) -> int:
    """About what one job adds to a group: its kept weights, its columns, and the loop's
    tensors of its points (the hidden layer's N x H output, its pre-activation and their
    gradients, on train and test points)."""
    weights = 3 * hidden + 1
    return 4 * (kept * weights + len(COLUMNS) * (steps + 1) + 4 * points * hidden)


def group_size(hidden: int, kept: int, steps: int, points: int) -> int:
    """How many jobs one group may hold within GROUP_BYTES (0: not even one, the job runs
    on its own)."""
    return GROUP_BYTES // bytes_a_job(hidden, kept, steps, points)


def train_stacked_mlp(
    settings: Sequence[Setting], optimizer: str, steps: int, activation: str, kept: np.ndarray
) -> MLPPaths:
    """Train every setting's `MLPModel` (its starting `weights`) on its own data in one
    compiled loop; keep every step's scalars and the weights after `kept` steps.

    Per setting the arithmetic is `MLPModel`'s, the task's mean squared error and the
    update kernels of pipeline/optimizers.py; the matmuls run batched, whose sums over a
    job's points or hidden units TensorFlow may add in another order than one job's
    matmul (docs/LAUNCHERS.md gives the tolerance this needs).
    """
    started = time.perf_counter()
    stacked = lambda arrays: tf.constant(np.stack(arrays).astype(np.float32))  # noqa: E731
    x, y = stacked([s.x_train for s in settings]), stacked([s.y_train for s in settings])
    x_test = stacked([s.x_test for s in settings])
    y_test = stacked([s.y_test for s in settings])
    variables = [
        tf.Variable(stacked([s.weights[i] for s in settings]), name=name)
        for i, name in enumerate(WEIGHTS)
    ]
    w_hidden, b_hidden, w_out, b_out = variables
    hidden = int(w_hidden.shape[-1])
    readout_scale = 1.0 / math.sqrt(hidden)  # as MLPModel scales its readout
    act = _ACTIVATIONS[activation]
    apply = optimizer_step(optimizer, settings, variables)
    count, kept = len(settings), tf.constant(np.asarray(kept, np.int32))

    def predict(x: tf.Tensor) -> tf.Tensor:
        """`MLPModel.__call__` of every setting at once: (S, N, 1) -> (S, N, 1)."""
        h = act(tf.matmul(x, w_hidden) + b_hidden[:, None, :])
        return readout_scale * tf.matmul(h, w_out) + b_out[:, None, :]

    def scalars(x: tf.Tensor, y: tf.Tensor, prediction: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Each setting's mean squared error (the task's `mse`) and least-squares slope
        (`models.least_squares_slope` of the model's predictions), (S,) each."""
        loss = tf.reduce_mean(tf.square(prediction - y), axis=[1, 2])
        slope = tf.reduce_sum(x * prediction, axis=[1, 2]) / tf.reduce_sum(x * x, axis=[1, 2])
        return loss, slope

    def run() -> tuple:
        columns = tuple(tf.TensorArray(tf.float32, size=steps + 1) for _ in COLUMNS)
        saved = tuple(tf.TensorArray(tf.float32, size=int(kept.shape[0])) for _ in WEIGHTS)

        def record(step, columns, train) -> tuple:
            """The step's scalars: the train side's from the gradient's forward pass."""
            test = scalars(x_test, y_test, predict(x_test))
            values = (train[0], test[0], train[1], test[1])  # COLUMNS' order
            return tuple(c.write(step, v) for c, v in zip(columns, values, strict=True))

        def one_step(step, columns, finite):
            with tf.GradientTape() as tape:
                train = scalars(x, y, predict(x))
                total = tf.reduce_sum(train[0])  # settings share no weight: d total/d w_s
            grads = tape.gradient(total, variables)
            columns = record(step, columns, train)
            apply(step, grads)
            return step + 1, columns, tf.logical_and(finite, tf.math.is_finite(train[0]))

        def to_next_kept(i, step, columns, saved, finite):
            """The steps up to the i-th kept one, then its weights saved."""
            step, columns, finite = tf.while_loop(
                lambda step, *_: step < kept[i], one_step, (step, columns, finite)
            )
            saved = tuple(a.write(i, v) for a, v in zip(saved, variables, strict=True))
            return i + 1, step, columns, saved, finite

        start = (tf.constant(0), tf.constant(0), columns, saved, tf.ones([count], tf.bool))
        _, _, columns, saved, finite = tf.while_loop(
            lambda i, *_: i < kept.shape[0], to_next_kept, start
        )
        last = scalars(x, y, predict(x))
        columns = record(steps, columns, last)
        finite = tf.logical_and(finite, tf.math.is_finite(last[0]))
        return tuple(c.stack() for c in columns), tuple(a.stack() for a in saved), finite

    columns, saved, finite = tf.function(run, autograph=False)()
    return MLPPaths(
        {name: c.numpy() for name, c in zip(COLUMNS, columns, strict=True)},
        np.asarray(kept),
        [a.numpy() for a in saved],
        finite.numpy(),
        time.perf_counter() - started,
    )


def job_columns(
    paths: MLPPaths, column: int, names: Sequence[str], k_true: float | None
) -> dict[str, np.ndarray]:
    """One job's task scalars `names` at every step, in the task's order: its columns of
    the loop, and |k - k_true| in float32 as the task computes it."""
    values = {}
    for name in names:
        writer, _, tag = name.partition("/")
        if tag == "k/error":
            k = paths.columns[f"{writer}/k"][:, column]
            values[name] = np.abs(k - np.float32(k_true))
        else:
            values[name] = paths.columns[name][:, column]
    return values


def job_path(paths: MLPPaths, column: int, order: Sequence[int]) -> list[np.ndarray]:
    """One job's kept weights, one array a trainable variable in the model's `order`."""
    return [paths.weights[i][:, column] for i in order]


def stacked_mlp_jobs(
    members: Sequence[tuple[int, Setting, float | None]],
    configs: Sequence[Any],
    optimizer: str,
    steps: int,
    activation: str,
) -> tuple[dict[int, Any], int]:
    """Train the MLP jobs `members` ((job index, setting, k_true), one width) in groups of
    at most `group_size`; {job index: its StackedJob} and how many groups trained.

    A job with only the scalars sink gets its scalars (the launcher writes it); any other
    its kept weights and every step's scalars (its sinks replay them). A job that alone
    would hold more than GROUP_BYTES, or whose loss stopped being finite, is left out: it
    runs on its own.
    """
    from pipeline.app import task_config
    from pipeline.contracts import build_task, class_of
    from pipeline.sinks.scalars import ScalarSink
    from pipeline.sweeps.stacked import StackedJob, scalars_only
    from pipeline.sweeps.stacked_write import Scalars, written_steps

    plans = {}  # job index -> (its task, scalars' cadence if written by the launcher)
    kept: set[int] = set()
    for index, _, _ in members:
        cfg = configs[index]
        written = scalars_only(cfg)
        if written is not None and not written[2]:  # the scalars sink alone
            plans[index] = (written[0], written[1])
            kept.update(kept_steps(steps, ()))
            continue
        plans[index] = (build_task(task_config(cfg)), None)
        nodes = (cfg.get("sinks") or {}).values()
        others = [n for n in nodes if class_of(str(n.get("_target_"))) is not ScalarSink]
        kept.update(kept_steps(steps, [cadence_of(node) for node in others]))
    kept_array = np.array(sorted(kept), np.int64)
    hidden = int(members[0][1].weights[0].shape[-1])
    points = len(members[0][1].x_train) + len(members[0][1].x_test)
    size = group_size(hidden, len(kept_array), steps, points)
    if size == 0:
        log.info(
            f"{len(members)} model=mlp job{'s' * (len(members) != 1)} of width {hidden} run "
            f"one by one: the {len(kept_array)} steps of weights they keep exceed "
            f"{GROUP_BYTES // 2**20} MiB a group"
        )
        return {}, 0
    order = model_order(MLPModel(hidden=1, name="order"))
    jobs: dict[int, Any] = {}
    groups = 0
    for first in range(0, len(members), size):
        group = members[first : first + size]
        paths = train_stacked_mlp(
            [setting for _, setting, _ in group], optimizer, steps, activation, kept_array
        )
        groups += 1
        share = paths.seconds / len(group)
        for column, (index, _, k_true) in enumerate(group):
            if not paths.finite[column]:  # a diverging job runs on its own, to say where
                continue
            task, every = plans[index]
            columns = job_columns(paths, column, task.scalars, k_true)
            if every is None:  # its sinks replay the kept weights
                jobs[index] = StackedJob(
                    job_path(paths, column, order), rows=paths.rows(steps), columns=columns
                )
                continue
            written = written_steps(steps, every)
            values = {name: values[written] for name, values in columns.items()}
            scalars = Scalars(written, values, float(k_true), task.main_metric, share)
            jobs[index] = StackedJob([], scalars)
    return jobs, groups
