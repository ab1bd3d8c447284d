"""What a run learns and how it is judged: the loss, the metrics, the pictures (`task=...`).

A task names its loss and metrics by name (`mean_squared_error`, `mae`, `accuracy`, `r2`,
or any loss or metric Keras knows), the metric a sweep or search is judged by
(`main_metric`, e.g. `test/accuracy`) and the pictures of the IMAGES tab. Every metric is
a scalar on both writers, under its own name as the tag (`accuracy` on train and test:
one chart), unless it names its writer (`train/k`). Two metrics belong to the tutorial's
line: `k`, the slope the model implies (`model.slope(x)`), and `k/error`, |k - k_true|.

The names, the writers and which way is better are plain Python (no TensorFlow at import),
so the sweep summary and the preflight read a task's metrics without loading TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: the writers a metric goes to when its name does not say
WRITERS = ("train", "test")
#: the loss's tag on each writer
LOSS = "loss"
#: the tutorial's metrics: the model's slope and its distance from the data's k_true
LESSON_METRICS = ("k", "k/error")
#: losses and metrics tbpipe computes itself (any other name is looked up in Keras)
OWN_LOSSES = (
    "mean_squared_error",
    "mse",
    "mean_absolute_error",
    "mae",
    "sparse_categorical_crossentropy",
)
OWN_METRICS = (*OWN_LOSSES, "accuracy", "r2", *LESSON_METRICS)
#: losses whose targets are class labels (integers), one output per class
LABEL_LOSSES = ("sparse_categorical_crossentropy",)
#: the pictures a task can ask for, as IMAGES tags `plots/<name>`
IMAGES = ("fit", "predicted_vs_true", "confusion_matrix")


#: the task of a config that names none (a run saved before tasks were configurable)
LINE_FIT = {
    "_target_": "pipeline.tasks.Task",
    "loss": "mean_squared_error",
    "metrics": ["train/k", "train/k/error"],
    "main_metric": "train/k/error",
    "images": ["fit"],
}


def scalar_names(metrics: Sequence[str]) -> list[str]:
    """`<writer>/<tag>` of every scalar a task writes, in the order written: per writer, its
    metrics, then the loss. A metric named with its writer (`train/k`) goes there only."""
    names = []
    for writer in WRITERS:
        for metric in metrics:
            where, _, tag = str(metric).partition("/")
            if where in WRITERS:
                if where == writer:
                    names.append(f"{writer}/{tag}")
            else:
                names.append(f"{writer}/{metric}")
        names.append(f"{writer}/{LOSS}")
    return names


def tag_of(name: str) -> str:
    """`test/accuracy` -> `accuracy`, the tag a scalar is written as."""
    return name.partition("/")[2]


def main_metric_of(task_cfg: Mapping[str, Any] | None) -> str:
    """The scalar a task's runs are compared by (`test/loss` when the task names none)."""
    if not task_cfg:
        return f"test/{LOSS}"
    return str(task_cfg.get("main_metric") or f"test/{LOSS}")


def metrics_of(task_cfg: Mapping[str, Any] | None) -> list[str]:
    """Every scalar of a task's config as HPARAMS compares them: the main metric first,
    then the test writer's before the train writer's, each writer's loss first."""
    task_cfg = LINE_FIT if task_cfg is None else task_cfg
    names = scalar_names(list(task_cfg.get("metrics") or ()))
    main = main_metric_of(task_cfg)
    rest = [name for name in reversed(names) if name != main]
    return [main, *rest] if main in names else rest


class Task:
    """A loss, metrics by name, the main metric and the pictures of a run.

    Args:
        loss: the loss minimised, by name (`mean_squared_error`, `mae`,
            `sparse_categorical_crossentropy`, or any Keras loss name).
        metrics: more scalars by name, each on train and test (`accuracy`, `mae`, `r2`, any
            Keras metric name), or on one writer (`train/k`).
        main_metric: the scalar runs are compared by, `<writer>/<tag>` (`test/accuracy`).
        images: the IMAGES tab's pictures: `fit`, `predicted_vs_true`, `confusion_matrix`.
        from_logits: the model's outputs are logits (no softmax), for label losses.

    Example (what `task=classification` builds)::

        Task(loss="sparse_categorical_crossentropy", metrics=["accuracy"],
             main_metric="test/accuracy", images=["confusion_matrix"])
    """

    reusable_across_jobs = True  # pure functions of its config: a traced loop fits every job

    def __init__(
        self,
        loss: str = "mean_squared_error",
        metrics: Sequence[str] = (),
        main_metric: str = "test/loss",
        images: Sequence[str] = (),
        from_logits: bool = True,
    ):
        self.loss_name = str(loss)
        self.metrics = [str(metric) for metric in metrics]
        self.main_metric = str(main_metric)
        self.images = [str(image) for image in images]
        self.from_logits = bool(from_logits)
        self.scalars = scalar_names(self.metrics)
        self._loss = function_of(self.loss_name, self.from_logits, "task.loss")
        self._metrics = {
            tag_of(name): function_of(tag_of(name), self.from_logits, "task.metrics")
            for name in self.scalars
            if tag_of(name) not in (LOSS, *LESSON_METRICS)
        }

    @property
    def labels(self) -> bool:
        """True when targets are class labels (the loss is a label loss)."""
        return self.loss_name in LABEL_LOSSES

    @property
    def needs_slope(self) -> bool:
        """The tutorial's k needs the model's `slope(x)`."""
        return any(tag_of(name) in LESSON_METRICS for name in self.scalars)

    def outputs(self, y_train: Any, y_test: Any) -> int:
        """How many outputs a model needs for these targets: one per class for labels,
        else the width of y."""
        import numpy as np

        if self.labels:
            return int(max(np.max(y_train), np.max(y_test))) + 1
        return int(np.prod(y_train.shape[1:])) if y_train.ndim > 1 else 1

    def check_prediction(self, prediction: Any, y: Any) -> str | None:
        """Why the model's output does not fit the targets, or None when it does."""
        shape, target = list(prediction.shape), list(y.shape)
        if self.labels:
            if len(shape) != 2 or shape[0] != target[0]:
                return f"returned shape {shape}, not (N, classes) for labels of shape {target}"
            return None
        if shape != target:
            return f"returned shape {shape}, not {target} (the shape of y)"
        return None

    def loss(self, prediction: Any, y: Any) -> Any:
        """The mean loss of a batch, under the name scope `loss` (the GRAPHS view)."""
        import tensorflow as tf

        with tf.name_scope("loss"):
            return self._loss(y, prediction)

    def statistics(
        self,
        model: Any,
        tensors: Mapping[str, Any],
        train: tuple | None = None,
        test: tuple | None = None,
    ) -> dict[str, Any]:
        """Every scalar of the task, `<writer>/<tag>` -> tensor, for the model as it is.

        `train` is the loss and prediction the loop already has for the training batch;
        without it they are computed on `tensors`' training data. `test` likewise for the
        test side (the predictions over a test stream, whose targets are then y_test).
        """
        import tensorflow as tf

        with tf.name_scope("stats"):
            seen: dict[str, tuple] = {}
            if train is not None:
                seen["train"] = train
            if test is not None:
                seen["test"] = test
            for writer in WRITERS:
                if writer not in seen:
                    prediction = model(tensors[f"x_{writer}"])
                    seen[writer] = (self.loss(prediction, tensors[f"y_{writer}"]), prediction)
            out = {}
            for name in self.scalars:
                writer, _, tag = name.partition("/")
                loss, prediction = seen[writer]
                if tag == LOSS:
                    out[name] = loss
                elif tag == "k":
                    out[name] = model.slope(tensors[f"x_{writer}"])
                elif tag == "k/error":
                    if "k_true" in tensors:
                        k = out.get(f"{writer}/k")
                        k = model.slope(tensors[f"x_{writer}"]) if k is None else k
                        out[name] = tf.abs(k - tensors["k_true"])
                else:
                    out[name] = self._metrics[tag](tensors[f"y_{writer}"], prediction)
        return out


def function_of(name: str, from_logits: bool, key: str):
    """The loss or metric called `name`, as f(y, prediction) -> mean over the batch."""
    own = _own_functions(from_logits)
    if name in own:
        return own[name]
    return _keras_function(name, key)


def _own_functions(from_logits: bool) -> dict[str, Any]:
    import tensorflow as tf

    def mse(y, prediction):
        return tf.reduce_mean(tf.square(prediction - y))

    def mae(y, prediction):
        return tf.reduce_mean(tf.abs(prediction - y))

    def sparse_categorical_crossentropy(y, prediction):
        labels = tf.cast(tf.reshape(y, [-1]), tf.int32)
        if not from_logits:
            prediction = tf.math.log(tf.clip_by_value(prediction, 1e-7, 1.0))
        return tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=prediction)
        )

    def accuracy(y, prediction):
        labels = tf.cast(tf.reshape(y, [-1]), tf.int64)
        return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(prediction, -1), labels), tf.float32))

    def r2(y, prediction):
        residual = tf.reduce_sum(tf.square(y - prediction))
        total = tf.reduce_sum(tf.square(y - tf.reduce_mean(y, axis=0)))
        return 1.0 - residual / total

    return {
        "mean_squared_error": mse,
        "mse": mse,
        "mean_absolute_error": mae,
        "mae": mae,
        "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
        "accuracy": accuracy,
        "r2": r2,
    }


def _keras_function(name: str, key: str):
    """A Keras loss or metric function by name, averaged over the batch."""
    import keras
    import tensorflow as tf

    found = None
    for lookup in (keras.losses.get, keras.metrics.get):
        try:
            found = lookup(name)
        except (ValueError, TypeError):
            continue
        if found is not None:
            break
    if found is None or isinstance(found, type) or not callable(found):
        raise ValueError(
            f"bad value {key}={name}: neither tbpipe ({', '.join(OWN_METRICS[:-2])}) nor "
            "Keras knows a loss or metric function of that name"
        )

    def averaged(y, prediction):
        return tf.reduce_mean(tf.cast(found(y, prediction), tf.float32))

    return averaged
