"""`model=mlp` jobs of one width trained as one: every weight with a leading settings axis.

`hydra/launcher=stacked` (pipeline/sweeps/stacked.py) hands this module the jobs of a sweep
whose `MLPModel` has the same `hidden` and `activation`, fitted by mean squared error with
SGD or Adam, full batch, on `LinearData` of the same shape. Each job's `MLPModel` is built
as its run builds it, so its starting weights are the ones its own seed and `init_std`
draw; `train_stacked_mlp` stacks them (w_hidden (S, 1, H), b_hidden (S, H), w_out (S, H, 1),
b_out (S, 1)) and runs every job's steps in one `tf.while_loop` inside one `tf.function`
(`mlp_loop`, traced once for all the groups of an optimizer and activation): the model's
arithmetic with batched matmuls, each job's data, learning rate and Adam constants, the
update of pipeline/optimizers.py term by term (`stacked_train.sgd_update`, `adam_update`).

An MLP's weights are many numbers a step, so the loop keeps what the job's sinks need
rather than its whole path: the task's scalars of every step (the train and test loss,
the model's least-squares slope k on the train and test points), computed inside the loop
as the task computes them; and the weights only at the steps where another sink records
(`kept_steps`: the histograms' and pictures' cadence, the first and the last step). A job
with only the scalars sink is then written by the launcher from those columns
(pipeline/sweeps/stacked_write.py); any other replays them through its own sinks
(`stacked_train.ReplayTrainer`). `group_size` bounds what a group holds while it trains,
KEPT_BYTES what all the groups of a batch keep (`stacked_mlp_jobs`).
"""

from __future__ import annotations

import functools
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
from pipeline.sweeps.stacked_train import (
    ADAM,
    ADAM_CONSTANTS,
    Setting,
    adam_update,
    sgd_update,
)

log = logging.getLogger("hydra")  # the sweep's own lines, as pipeline/sweeps/stacked.py's

#: the MLP's weights in the order a `Setting` holds them (`MLPModel`'s attributes)
WEIGHTS = ("w_hidden", "b_hidden", "w_out", "b_out")
#: the scalars the loop keeps a column of, by `<writer>/<tag>` (k/error follows from k)
COLUMNS = ("train/loss", "test/loss", "train/k", "test/k")
#: what one group may hold while it trains, in bytes: its kept weights and columns, and
#: the loop's largest tensors
GROUP_BYTES = 256 * 2**20
#: what every MLP group of a batch of jobs may keep until its jobs are written, in bytes
KEPT_BYTES = 1024 * 2**20


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


def kept_bytes(hidden: int, kept: int, steps: int) -> int:
    """What the loop keeps of one job: its weights at `kept` steps, its columns."""
    return 4 * (kept * (3 * hidden + 1) + len(COLUMNS) * (steps + 1))


def bytes_a_job(hidden: int, kept: int, steps: int, points: int) -> int:
    """About what one job adds to a group while it trains: what is kept of it, and the
    loop's tensors of its points (the hidden layer's N x H output, its pre-activation and
    their gradients, on train and test points)."""
    return kept_bytes(hidden, kept, steps) + 4 * 4 * points * hidden


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
    hidden = int(settings[0].weights[0].shape[-1])
    columns, saved, finite = mlp_loop(optimizer, activation)(
        data=tuple(stacked([getattr(s, n) for s in settings]) for n in DATA),
        weights=tuple(stacked([s.weights[i] for s in settings]) for i in range(len(WEIGHTS))),
        constants=tuple(stacked([getattr(s, n) for s in settings]) for n in CONSTANTS),
        readout_scale=tf.constant(1.0 / math.sqrt(hidden), tf.float32),  # as MLPModel's
        kept=tf.constant(np.asarray(kept, np.int32)),
        steps=tf.constant(steps, tf.int32),
    )
    return MLPPaths(
        {name: c.numpy() for name, c in zip(COLUMNS, columns, strict=True)},
        np.asarray(kept),
        [a.numpy() for a in saved],
        finite.numpy(),
        time.perf_counter() - started,
    )


#: a `Setting`'s data and constants, in the order the loop takes them
DATA = ("x_train", "y_train", "x_test", "y_test")
CONSTANTS = ("learning_rate", *ADAM_CONSTANTS)


@functools.cache
def mlp_loop(optimizer: str, activation: str) -> Any:
    """The compiled loop of stacked MLPs for one optimizer and activation: everything that
    differs from group to group (data, weights, constants, steps, the kept steps) is an
    argument, so a sweep's groups share one trace (one more for a last, smaller group)."""
    act = _ACTIVATIONS[activation]
    adam = optimizer == ADAM

    def run(data, weights, constants, readout_scale, kept, steps):
        x, y, x_test, y_test = data

        def per_setting(values: tf.Tensor, weight: tf.Tensor) -> tf.Tensor:
            """One value a setting, shaped to broadcast over its slice of `weight`."""
            return tf.reshape(values, [-1] + [1] * (weight.shape.rank - 1))

        given = [[per_setting(c, w) for c in constants] for w in weights]

        def predict(weights, x: tf.Tensor) -> tf.Tensor:
            """`MLPModel.__call__` of every setting at once: (S, N, 1) -> (S, N, 1)."""
            w_hidden, b_hidden, w_out, b_out = weights
            h = act(tf.matmul(x, w_hidden) + b_hidden[:, None, :])
            return readout_scale * tf.matmul(h, w_out) + b_out[:, None, :]

        def scalars(x, y, prediction) -> tuple[tf.Tensor, tf.Tensor]:
            """Each setting's mean squared error (the task's `mse`) and least-squares
            slope (`models.least_squares_slope` of the predictions), (S,) each."""
            loss = tf.reduce_mean(tf.square(prediction - y), axis=[1, 2])
            slope = tf.reduce_sum(x * prediction, axis=[1, 2]) / tf.reduce_sum(x * x, axis=[1, 2])
            return loss, slope

        def record(step, columns, weights, train) -> tuple:
            """The step's scalars: the train side's from the gradient's forward pass."""
            test = scalars(x_test, y_test, predict(weights, x_test))
            values = (train[0], test[0], train[1], test[1])  # COLUMNS' order
            return tuple(c.write(step, v) for c, v in zip(columns, values, strict=True))

        def one_step(step, columns, weights, slots, finite):
            with tf.GradientTape() as tape:
                tape.watch(weights)
                train = scalars(x, y, predict(weights, x))
                total = tf.reduce_sum(train[0])  # settings share no weight: d total/d w_s
            grads = tape.gradient(total, weights)
            columns = record(step, columns, weights, train)
            finite = tf.logical_and(finite, tf.math.is_finite(train[0]))
            if not adam:
                weights = tuple(
                    sgd_update(w, g, lr)
                    for w, g, (lr, *_) in zip(weights, grads, given, strict=True)
                )
                return step + 1, columns, weights, slots, finite
            t = tf.cast(step + 1, tf.float32)  # Adam.iterations + 1
            updated = [
                adam_update(t, w, g, m, v, *c)
                for w, g, (m, v), c in zip(weights, grads, slots, given, strict=True)
            ]
            weights = tuple(w for w, _, _ in updated)
            slots = tuple((m, v) for _, m, v in updated)
            return step + 1, columns, weights, slots, finite

        def to_next_kept(i, step, columns, saved, weights, slots, finite):
            """The steps up to the i-th kept one, then its weights saved."""
            step, columns, weights, slots, finite = tf.while_loop(
                lambda step, *_: step < kept[i], one_step, (step, columns, weights, slots, finite)
            )
            saved = tuple(a.write(i, w) for a, w in zip(saved, weights, strict=True))
            return i + 1, step, columns, saved, weights, slots, finite

        columns = tuple(tf.TensorArray(tf.float32, size=steps + 1) for _ in COLUMNS)
        saved = tuple(tf.TensorArray(tf.float32, size=tf.size(kept)) for _ in WEIGHTS)
        slots = tuple((tf.zeros_like(w), tf.zeros_like(w)) for w in weights) if adam else ()
        finite = tf.ones(tf.shape(x)[:1], tf.bool)
        start = (tf.constant(0), tf.constant(0), columns, saved, weights, slots, finite)
        _, _, columns, saved, weights, _, finite = tf.while_loop(
            lambda i, *_: i < tf.size(kept), to_next_kept, start
        )
        last = scalars(x, y, predict(weights, x))
        columns = record(steps, columns, weights, last)
        finite = tf.logical_and(finite, tf.math.is_finite(last[0]))
        return tuple(c.stack() for c in columns), tuple(a.stack() for a in saved), finite

    return tf.function(run, autograph=False, reduce_retracing=True)


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
    groups: dict[tuple, Sequence[tuple[int, Setting, float | None]]], configs: Sequence[Any]
) -> tuple[dict[int, Any], int]:
    """Train the MLP jobs of every group ({stack key: [(job index, setting, k_true)]}),
    each split so that a part holds at most GROUP_BYTES while it trains, all together
    keeping at most KEPT_BYTES; {job index: its StackedJob} and how many parts trained.

    A job with only the scalars sink gets its scalars (the launcher writes it); any other
    its kept weights and every step's scalars (its sinks replay them). A job past either
    bound (the launcher says how many), or whose loss stopped being finite, is left out:
    it runs on its own.
    """
    jobs: dict[int, Any] = {}
    trained = 0
    left = KEPT_BYTES
    for key, members in groups.items():
        optimizer, steps, *_, activation = key
        plans, kept = plan(members, configs, steps)
        hidden = int(members[0][1].weights[0].shape[-1])
        points = len(members[0][1].x_train) + len(members[0][1].x_test)
        size = group_size(hidden, len(kept), steps, points)
        fits = min(len(members), left // kept_bytes(hidden, len(kept), steps))
        if size == 0 or fits < len(members):
            count = len(members) - fits if size else len(members)
            log.info(
                f"{count} model=mlp job{'s' * (count != 1)} of width {hidden} run one by one: "
                f"the {len(kept)} steps of weights kept a job exceed the launcher's bound "
                f"({GROUP_BYTES // 2**20} MiB a group, {KEPT_BYTES // 2**20} MiB a batch)"
            )
        if size == 0:
            continue
        left -= fits * kept_bytes(hidden, len(kept), steps)
        for first in range(0, fits, size):
            part = members[first : min(first + size, fits)]
            paths = train_stacked_mlp(
                [setting for _, setting, _ in part], optimizer, steps, activation, kept
            )
            jobs.update(jobs_of(paths, part, plans, steps))
            trained += 1
    return jobs, trained


def plan(
    members: Sequence[tuple[int, Setting, float | None]], configs: Sequence[Any], steps: int
) -> tuple[dict[int, tuple], np.ndarray]:
    """{job index: (its task, its scalars' cadence when the launcher writes it, else
    None: replayed)}, and the steps whose weights the group keeps for its replayed jobs."""
    from pipeline.app import task_config
    from pipeline.contracts import build_task, class_of
    from pipeline.sinks.scalars import ScalarSink
    from pipeline.sweeps.stacked import scalars_only

    plans, cadences = {}, set()
    for index, _, _ in members:
        cfg = configs[index]
        written = scalars_only(cfg)
        if written is not None and not written[2]:  # the scalars sink alone
            plans[index] = (written[0], written[1])
            continue
        plans[index] = (build_task(task_config(cfg)), None)
        nodes = (cfg.get("sinks") or {}).values()
        others = [n for n in nodes if class_of(str(n.get("_target_"))) is not ScalarSink]
        cadences.update(cadence_of(node) for node in others)
    return plans, kept_steps(steps, cadences)


def jobs_of(
    paths: MLPPaths, part: Sequence[tuple[int, Setting, float | None]], plans: dict, steps: int
) -> dict[int, Any]:
    """The StackedJob of every job of a trained part whose losses stayed finite."""
    from pipeline.sweeps.stacked import StackedJob
    from pipeline.sweeps.stacked_write import Scalars, written_steps

    order = model_order(MLPModel(hidden=1, name="order"))
    share = paths.seconds / len(part)
    jobs = {}
    for column, (index, _, k_true) in enumerate(part):
        if not paths.finite[column]:  # a diverging job runs on its own, to say where
            continue
        task, every = plans[index]
        columns = job_columns(paths, column, task.scalars, k_true)
        if every is None:  # its sinks replay the kept weights
            path = job_path(paths, column, order)
            jobs[index] = StackedJob(path, rows=paths.rows(steps), columns=columns)
            continue
        written = written_steps(steps, every)
        values = {name: values[written] for name, values in columns.items()}
        scalars = Scalars(written, values, float(k_true), task.main_metric, share)
        jobs[index] = StackedJob([], scalars)
    return jobs
