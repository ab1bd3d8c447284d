"""Build each piece of an experiment from its config and check it meets tbpipe's contract.

A user may bring their own data generator, model, optimizer or sink (docs/EXTENDING.md).
What tbpipe needs from each is small, but a piece that lacks it would otherwise fail deep
inside a traced TensorFlow function with a message about tensors. Here each piece is
checked right after it is built, and a piece that falls short raises `ContractError`: one
line naming the piece (its config key and class) and what it lacks, e.g.
`model: quadratic.NoSlope has no slope(x)`.

The contract:
- task: `loss(prediction, y)`, `statistics(model, tensors)` (pipeline.tasks.Task).
- data: `generate()` returns a `pipeline.data.Dataset` whose x_train and x_test are finite
  float32 arrays of any shape (N, ...), N >= 1, and y_train, y_test the same, or integer
  class labels (N,) for a label loss (task=classification); `k_true` a number or None.
  Or `pipeline.data.Streams`: tf.data pipelines of (features, target) examples, whose
  first `SAMPLE_ROWS` examples of each split are checked as above.
- model: a Keras model or a `tf.Module`, built by a class or a function: `model(x)` gives
  what the task's loss takes (y's shape, or (N, classes) for labels); `trainable_variables`
  holds at least one float variable, with unique names (one histogram tag per name);
  `slope(x)`, a scalar, only for the tutorial's k (task=line_fit); `activations(x)`, a dict
  of name -> tensor to histogram, if it has one.
- optimizer: `build(variables)` and `apply(grads, variables)`.
- sink: a `pipeline.sinks.base.Sink` (or anything with `start`, `record`, `every`,
  `in_graph`), `every` None or an integer >= 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from pipeline.check.errors import BadInput
from pipeline.check.schema import is_integer
from pipeline.check.targets import BadTarget, check_target, find_class
from pipeline.data import Dataset, Streams

SPLITS = ("x_train", "y_train", "x_test", "y_test")
#: the examples of each split of `Streams` read into memory: what the model's checks and
#: the pictures see (the test metrics go over every example)
SAMPLE_ROWS = 1000
SINK_MEMBERS = ("start", "record", "every", "in_graph")


class ContractError(BadInput):
    """A user's piece (data, model, optimizer or sink) does not give what tbpipe needs."""


def build_piece(node: DictConfig, key: str) -> Any:
    """Instantiate the piece at `key` (data, model, optimizer, sinks.<name>) from its node.

    Its `_target_` is checked first (`pipeline.check.targets.check_target`): a class that
    defines what the piece needs, no nested `_target_`; anything else is a `ContractError`
    and nothing is called. A user's module may also sit in the current directory.
    """
    from hydra.utils import instantiate

    _find_modules_in_current_directory()
    try:
        check_target(key, node)
    except BadTarget as error:
        raise ContractError(str(error)) from None
    own = own_flat_class(node)
    if own is not None:  # what `instantiate` calls, without its config copying
        try:
            return own(**{name: node[name] for name in node if name != "_target_"})
        except Exception:  # noqa: BLE001, S110  Hydra's own call says it, in its words
            pass
    return instantiate(node)


def build_task(node: DictConfig) -> Any:
    """The run's task; a loss or metric no one knows is a one-line `ContractError`."""
    own = own_flat_class(node)
    if own is None:
        return build_piece(node, "task")
    check_target("task", node)
    try:
        return own(**{name: node[name] for name in node if name != "_target_"})
    except ValueError as error:
        raise ContractError(str(error)) from None


def own_flat_class(node: DictConfig) -> type | None:
    """tbpipe's own class a node builds when every other key is a plain value (no nested
    config, no `_partial_`-like key): `instantiate` would call it with exactly these
    values, so a sweep job builds its nine pieces without copying configs. A user's class,
    or any other node, goes through Hydra's `instantiate` as written."""
    if not isinstance(node, DictConfig):
        return None
    names = [name for name in node if name != "_target_"]
    if any(not isinstance(name, str) or name.startswith("_") for name in names):
        return None
    if any(not _plain(node[name]) for name in names):
        return None
    cls = class_of(node.get("_target_"))
    return cls if cls is not None and tbpipes_own(cls) else None


def _plain(value: Any) -> bool:
    """A plain value, or a list of plain values (`layers: [hidden_1]`): no nested config."""
    if isinstance(value, ListConfig):
        return all(_plain(item) for item in value)
    return not OmegaConf.is_config(value)


def tbpipes_own(cls: type) -> bool:
    """True for a class defined in tbpipe's package, not a user's (nor a subclass of ours
    that a user wrote)."""
    return cls.__module__ == "pipeline" or cls.__module__.startswith("pipeline.")


def class_of(target: str) -> type | None:
    """The class a `_target_` names, or None when it names none; logs nothing.

    Hydra's `get_class` logs an ERROR before it raises, which a user would read as a
    failure even when the miss is expected; a user's module may sit in the current dir.
    The one lookup is `check.targets.find_class`, the preflight's.
    """
    _find_modules_in_current_directory()
    found, _ = find_class(str(target))
    return found if isinstance(found, type) else None


def target_of(node: Any) -> str:
    """The class a config node builds, as written in its `_target_`."""
    if isinstance(node, (DictConfig, Mapping)):
        return str(node.get("_target_", "<no _target_>"))
    return type(node).__name__


def check_data(key: str, generator: Any, target: str, task: Any = None) -> Dataset:
    """Call the generator's `generate()` and check the Dataset it returns against the task
    (class labels for a label loss, numbers for the rest)."""
    where = f"{key}: {target}"
    if not callable(getattr(generator, "generate", None)):
        raise ContractError(f"{where} has no generate() returning a pipeline.data.Dataset")
    data = generator.generate()
    if isinstance(data, Streams):
        data = sampled(f"{where}.generate()", data)
    if not isinstance(data, Dataset):
        raise ContractError(
            f"{where}.generate() returned {type(data).__name__}, not a pipeline.data.Dataset "
            "(arrays) or pipeline.data.Streams (tf.data pipelines)"
        )
    for name in SPLITS:
        _check_split(f"{where}.generate()", name, getattr(data, name), task)
    for x, y in (("x_train", "y_train"), ("x_test", "y_test")):
        if len(getattr(data, x)) != len(getattr(data, y)):
            raise ContractError(f"{where}.generate(): {x} and {y} differ in length")
    for name in ("x", "y"):
        train, test = getattr(data, f"{name}_train"), getattr(data, f"{name}_test")
        if train.shape[1:] != test.shape[1:] or train.dtype != test.dtype:
            raise ContractError(
                f"{where}.generate(): {name}_train is {train.dtype} {train.shape[1:]} a point, "
                f"{name}_test {test.dtype} {test.shape[1:]}; both splits must agree"
            )
    if data.k_true is not None and not isinstance(data.k_true, (int, float)):
        raise ContractError(f"{where}.generate(): k_true is {data.k_true!r}, not a number or None")
    if "fit" in getattr(task, "images", ()) and data.x_train.shape[1:] != (1,):
        raise ContractError(
            f"{where}.generate(): x has shape {data.x_train.shape[1:]} a point; the fit plot "
            "(task.images=[fit]) draws one feature; use task.images=[predicted_vs_true]"
        )
    return data


def sampled(where: str, streams: Streams) -> Dataset:
    """A `Dataset` of the first `SAMPLE_ROWS` examples of each stream, carrying the streams:
    what the checks below, the model's check and the pictures read."""
    import tensorflow as tf

    arrays = {}
    for split in ("train", "test"):
        stream = getattr(streams, split)
        spec = getattr(stream, "element_spec", None)
        if not isinstance(stream, tf.data.Dataset) or not (
            isinstance(spec, tuple) and len(spec) == 2
        ):
            raise ContractError(
                f"{where}: Streams.{split} is {type(stream).__name__}, not a tf.data.Dataset "
                "of (features, target) pairs"
            )
        first = list(stream.take(SAMPLE_ROWS).batch(SAMPLE_ROWS).take(1).as_numpy_iterator())
        if not first:
            raise ContractError(f"{where}: Streams.{split} holds no example")
        arrays[f"x_{split}"], arrays[f"y_{split}"] = first[0]
    return Dataset(**arrays, k_true=streams.k_true, streams=streams)


def _check_split(where: str, name: str, array: Any, task: Any) -> None:
    """One split: an array of N >= 1 rows, float32 and finite (features; targets of most
    tasks), or integer class labels >= 0 (targets of a label loss)."""
    labels = name.startswith("y") and getattr(task, "labels", False)
    wanted = "integer class labels" if labels else "a float32 array"
    if not isinstance(array, np.ndarray):
        raise ContractError(f"{where}: {name} is {type(array).__name__}, not {wanted}")
    if array.ndim < 1 or array.shape[0] < 1:
        raise ContractError(f"{where}: {name} has shape {array.shape}, not (N, ...) with N >= 1")
    if labels:
        if not np.issubdtype(array.dtype, np.integer) or array.min() < 0:
            raise ContractError(
                f"{where}: {name} is {array.dtype}, not integer class labels 0..C-1, which "
                f"the task's loss {task.loss_name} needs"
            )
        return
    if array.dtype != np.float32:
        raise ContractError(f"{where}: {name} is {array.dtype}, not a float32 array")
    if not np.isfinite(array).all():
        raise ContractError(f"{where}: {name} holds NaN or Inf")


def check_model(key: str, model: Any, target: str, data: Dataset, task: Any) -> Any:
    """Check the model on the training data: its output fits the task's targets, its
    variables have names, and it has `slope(x)` when the task estimates k."""
    import tensorflow as tf

    from pipeline.sinks.histograms import variable_tag  # the tag each variable is written as

    where = f"{key}: {target}"
    if not callable(model):
        raise ContractError(f"{where} is not callable as model(x)")
    if task.needs_slope and not callable(getattr(model, "slope", None)):
        raise ContractError(
            f"{where} has no slope(x), which the task's metric k needs (task=line_fit); "
            "choose task=regression or task=classification for a model without one"
        )
    activations = getattr(model, "activations", None)
    if activations is not None and not callable(activations):
        raise ContractError(f"{where}.activations is not a method activations(x)")
    x = tf.constant(data.x_train)
    prediction = tf.convert_to_tensor(model(x))  # first: a Keras model builds its weights here
    variables = list(getattr(model, "trainable_variables", None) or [])
    if not variables:
        raise ContractError(f"{where} has no trainable_variables (a Keras model or tf.Module)")
    names = [variable_tag(variable) for variable in variables]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ContractError(
            f"{where} has several trainable variables named {', '.join(twice)}; "
            "histograms need one name each (create them under distinct tf.name_scope)"
        )
    if not all(tf.as_dtype(variable.dtype).is_floating for variable in variables):
        raise ContractError(f"{where} has a trainable variable that is not a float")
    wrong = task.check_prediction(prediction, data.y_train)
    if wrong:
        raise ContractError(f"{where}(x) {wrong}")
    if task.needs_slope:
        slope = tf.convert_to_tensor(model.slope(x))
        if slope.shape.rank != 0:
            raise ContractError(
                f"{where}.slope(x) returned shape {slope.shape.as_list()}, not a scalar"
            )
    if activations is not None and not isinstance(activations(x), Mapping):
        raise ContractError(f"{where}.activations(x) did not return a dict of name -> tensor")
    return model


def check_optimizer(key: str, optimizer: Any, target: str) -> Any:
    """An optimizer needs build(variables) and apply(grads, variables)."""
    for method, text in (("build", "build(variables)"), ("apply", "apply(grads, variables)")):
        if not callable(getattr(optimizer, method, None)):
            raise ContractError(f"{key}: {target} has no {text}")
    return optimizer


def check_sink(key: str, sink: Any, target: str) -> Any:
    """A sink is a pipeline.sinks.base.Sink, or has the same members."""
    missing = [name for name in SINK_MEMBERS if not hasattr(sink, name)]
    if missing:
        raise ContractError(
            f"{key}: {target} has no {', '.join(missing)} (subclass pipeline.sinks.base.Sink)"
        )
    every = sink.every
    if every is not None and (not is_integer(every) or every < 1):
        raise ContractError(f"{key}: {target} has every={every!r}, not None or an integer >= 1")
    return sink


def _find_modules_in_current_directory() -> None:
    """`tbpipe` as a console script does not see the current directory; `python -m` does.

    Appended, not prepended: a user's file can never shadow an installed package.
    """
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)
