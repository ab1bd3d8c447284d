"""Build each piece of an experiment from its config and check it meets tbpipe's contract.

A user may bring their own data generator, model, optimizer or sink (docs/EXTENDING.md).
What tbpipe needs from each is small, but a piece that lacks it would otherwise fail deep
inside a traced TensorFlow function with a message about tensors. Here each piece is
checked right after it is built, and a piece that falls short raises `ContractError`: one
line naming the piece (its config key and class) and what it lacks, e.g.
`model: quadratic.NoSlope has no slope(x)`.

The contract:
- data: `generate()` returns a `pipeline.data.Dataset` whose x_train, y_train, x_test and
  y_test are float32 arrays of shape (N, 1), N >= 1, finite; `k_true` a number or None.
- model: `model(x)` maps (N, 1) to (N, 1); `slope(x)` is a scalar (the estimate of k);
  `activations(x)` is a dict of name -> tensor; `trainable_variables` holds at least one
  float variable, with unique names (the histogram sink writes one tag per name).
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
from omegaconf import DictConfig, OmegaConf

from pipeline.check.errors import BadInput
from pipeline.check.schema import is_integer
from pipeline.check.targets import BadTarget, check_target
from pipeline.data import Dataset

SPLITS = ("x_train", "y_train", "x_test", "y_test")
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
    if own is not None:  # what `instantiate` calls, without its ~0.5 ms of config copying
        try:
            return own(**{name: node[name] for name in node if name != "_target_"})
        except Exception:  # noqa: BLE001, S110  Hydra's own call says it, in its words
            pass
    return instantiate(node)


def own_flat_class(node: DictConfig) -> type | None:
    """tbpipe's own class a node builds when every other key is a plain value (no nested
    config, no `_partial_`-like key): `instantiate` would call it with exactly these
    values, so a sweep job builds its nine pieces in ~1 ms instead of ~5. A user's class,
    or any other node, goes through Hydra's `instantiate` as written."""
    if not isinstance(node, DictConfig):
        return None
    names = [name for name in node if name != "_target_"]
    if any(not isinstance(name, str) or name.startswith("_") for name in names):
        return None
    if any(OmegaConf.is_config(node[name]) for name in names):
        return None
    cls = class_of(node.get("_target_"))
    return cls if cls is not None and tbpipes_own(cls) else None


def tbpipes_own(cls: type) -> bool:
    """True for a class defined in tbpipe's package, not a user's (nor a subclass of ours
    that a user wrote)."""
    return cls.__module__ == "pipeline" or cls.__module__.startswith("pipeline.")


def class_of(target: str) -> type | None:
    """The class a `_target_` names, or None when it names none; logs nothing.

    Hydra's `get_class` logs an ERROR before it raises, which a user would read as a
    failure even when the miss is expected; a user's module may sit in the current dir.
    """
    import importlib

    _find_modules_in_current_directory()
    module, _, name = str(target).rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None
    return found if isinstance(found, type) else None


def target_of(node: Any) -> str:
    """The class a config node builds, as written in its `_target_`."""
    if isinstance(node, (DictConfig, Mapping)):
        return str(node.get("_target_", "<no _target_>"))
    return type(node).__name__


def check_data(key: str, generator: Any, target: str) -> Dataset:
    """Call the generator's `generate()` and check the Dataset it returns."""
    where = f"{key}: {target}"
    if not callable(getattr(generator, "generate", None)):
        raise ContractError(f"{where} has no generate() returning a pipeline.data.Dataset")
    data = generator.generate()
    if not isinstance(data, Dataset):
        raise ContractError(
            f"{where}.generate() returned {type(data).__name__}, not a pipeline.data.Dataset"
        )
    for name in SPLITS:
        array = getattr(data, name)
        if not isinstance(array, np.ndarray) or array.dtype != np.float32:
            got = getattr(array, "dtype", type(array).__name__)
            raise ContractError(f"{where}.generate(): {name} is {got}, not a float32 array")
        if array.ndim != 2 or array.shape[1] != 1 or array.shape[0] < 1:
            raise ContractError(
                f"{where}.generate(): {name} has shape {array.shape}, not (N, 1) with N >= 1"
            )
        if not np.isfinite(array).all():
            raise ContractError(f"{where}.generate(): {name} holds NaN or Inf")
    for x, y in (("x_train", "y_train"), ("x_test", "y_test")):
        if len(getattr(data, x)) != len(getattr(data, y)):
            raise ContractError(f"{where}.generate(): {x} and {y} differ in length")
    if data.k_true is not None and not isinstance(data.k_true, (int, float)):
        raise ContractError(f"{where}.generate(): k_true is {data.k_true!r}, not a number or None")
    return data


def check_model(key: str, model: Any, target: str, x: Any) -> Any:
    """Check the model's methods and variables on the training x (a (N, 1) tensor)."""
    import tensorflow as tf

    from pipeline.sinks.histograms import variable_tag  # the tag each variable is written as

    where = f"{key}: {target}"
    for method, text in (("__call__", "__call__(x)"), ("slope", "slope(x)")):
        if not callable(getattr(model, method, None)):
            raise ContractError(f"{where} has no {text}")
    if not callable(getattr(model, "activations", None)):
        raise ContractError(f"{where} has no activations(x) (return {{}} if there are none)")
    prediction = tf.convert_to_tensor(model(x))  # first: a Keras model builds its weights here
    variables = list(getattr(model, "trainable_variables", None) or [])
    if not variables:
        raise ContractError(f"{where} has no trainable_variables (subclass tf.Module)")
    names = [variable_tag(variable) for variable in variables]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ContractError(
            f"{where} has several trainable variables named {', '.join(twice)}; "
            "histograms need one name each (create them under distinct tf.name_scope)"
        )
    if not all(tf.as_dtype(variable.dtype).is_floating for variable in variables):
        raise ContractError(f"{where} has a trainable variable that is not a float")
    if prediction.shape != x.shape:
        raise ContractError(
            f"{where}(x) returned shape {prediction.shape.as_list()}, not {x.shape.as_list()}"
        )
    slope = tf.convert_to_tensor(model.slope(x))
    if slope.shape.rank != 0:
        raise ContractError(
            f"{where}.slope(x) returned shape {slope.shape.as_list()}, not a scalar"
        )
    if not isinstance(model.activations(x), Mapping):
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
