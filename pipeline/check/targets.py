"""A `_target_` is checked before anything is called: a class that meets its piece's contract.

Hydra's `instantiate` calls whatever a `_target_` names with the node's keys as keyword
arguments. A config or sweep file from someone else could name `builtins.open` (mode w
truncates a file) or `shutil.copyfile`, and Hydra blocks only a few `os.system`-like
names. tbpipe builds only from classes: the target is looked up (importing its module,
calling nothing in it), must be a class, and must define what its piece needs, checked on
the class before an instance is made; a piece's own config may not hold nested
`_target_`s (Hydra would call those too). Hydra's callbacks (`hydra.callbacks.*`) must be
`hydra.experimental.callback.Callback` classes, and the logging configs may only name
logging's own kinds of class (`()` and `class` keys). Imports no TensorFlow.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from pipeline.check.errors import BadInput, shorten

#: what each piece's class must define (the full contract is checked on the instance:
#: pipeline/contracts.py, docs/EXTENDING.md)
CLASS_CONTRACTS: dict[str, tuple[str, ...]] = {
    "task": ("loss", "statistics"),
    "data": ("generate",),
    "model": ("__call__",),
    "optimizer": ("build", "apply"),
    "sinks": ("start", "record"),
}
#: how a missing member is named in messages
MEMBER_TEXT = {
    "loss": "loss(prediction, y)",
    "statistics": "statistics(model, tensors)",
    "generate": "generate() returning a pipeline.data.Dataset",
    "__call__": "__call__(x)",
    "slope": "slope(x)",
    "activations": "activations(x)",
    "build": "build(variables)",
    "apply": "apply(grads, variables)",
}
#: the config groups whose nodes tbpipe instantiates
PIECES = ("task", "data", "model", "optimizer")
#: pieces a function may build (it returns the piece): a user's function returning a Keras model
BUILT_BY_FUNCTIONS = ("model",)


class BadTarget(BadInput):
    """A `_target_` that names no class, or a class without what its piece needs."""


def piece_of(key: str) -> str:
    """`sinks.text` -> `sinks`; `data` -> `data`."""
    return key.split(".")[0]


def find_class(target: str) -> tuple[Any, str]:
    """(what `target` names, or None; why not found). Imports its module, calls nothing."""
    module, _, name = str(target).rpartition(".")
    if not module or not name:
        return None, "not a dotted path module.Class"
    try:
        found = importlib.import_module(module)
    except Exception as error:  # an ImportError, or the module failing as it loads
        return None, f"{type(error).__name__}: {shorten(error)}"
    if not hasattr(found, name):
        return None, f"module {module} has no {name}"
    return getattr(found, name), ""


def check_target(key: str, node: Any) -> type:
    """The class `node` builds, checked against its piece's contract; `BadTarget` if not.

    `key` is where the node sits (`data`, `model`, `optimizer`, `sinks.<name>`).
    """
    target = node.get("_target_") if isinstance(node, (DictConfig, dict)) else None
    if target is None:
        raise BadTarget(f"{key} has no _target_: name the class that builds the {key}")
    where = f"bad value {key}._target_={shorten(target)}"
    found, why = find_class(str(target))
    if found is None:
        raise BadTarget(f"{where}: no such class ({why}); nothing was built")
    if not isinstance(found, type) and built_by_users_function(key, found):
        _check_plain_values(key, node)
        return found
    if not isinstance(found, type) and piece_of(key) in BUILT_BY_FUNCTIONS:
        raise BadTarget(
            f"{where}: {kind_of(found)} of the standard library or an installed package; tbpipe "
            f"builds a {key} from a class, or from a function of your own module "
            "(docs/EXTENDING.md), and called nothing"
        )
    if not isinstance(found, type):
        raise BadTarget(
            f"{where}: {kind_of(found)}, not a class; tbpipe builds a piece only from a class that "
            "meets its contract (docs/EXTENDING.md), and called nothing"
        )
    missing = [m for m in CLASS_CONTRACTS[piece_of(key)] if not defines(found, m)]
    if missing:  # worded as pipeline/contracts.py words the same miss on an instance
        lacks = ", ".join(MEMBER_TEXT.get(m, m) for m in missing)
        hint = " (subclass pipeline.sinks.base.Sink)" if piece_of(key) == "sinks" else ""
        raise BadTarget(f"{key}: {shorten(target)} has no {lacks}{hint}; nothing was built")
    _check_plain_values(key, node)
    return found


def built_by_users_function(key: str, found: Any) -> bool:
    """A plain Python function of the user's own code (or tbpipe's) may build a model: it
    is called with the node's keys and returns the model. A function of the standard
    library or of an installed package (`numpy.save`, `shutil.rmtree`) is never called."""
    import inspect

    if piece_of(key) not in BUILT_BY_FUNCTIONS or not inspect.isfunction(found):
        return False
    module = str(getattr(found, "__module__", "") or "")
    if module == "pipeline" or module.startswith("pipeline."):
        return True
    if module.split(".")[0] in (*sys.stdlib_module_names, "builtins", ""):
        return False
    try:
        parts = set(Path(inspect.getfile(found)).resolve().parts)
    except (TypeError, OSError):
        return False
    return not parts & {"site-packages", "dist-packages"}


def _check_plain_values(key: str, node: Any) -> None:
    """A piece's config holds plain values: Hydra would call a nested `_target_` too."""
    for path, nested in nested_targets(node):
        raise BadTarget(
            f"bad value {key}.{path}._target_={shorten(nested)}: a piece's config holds plain "
            "values; tbpipe builds only the piece's own class, and called nothing"
        )


def kind_of(found: Any) -> str:
    """What a target names, in words: `a function`, `a module`, `a str`."""
    if callable(found):
        return "a function"
    return f"a {type(found).__name__}"


def defines(cls: type, name: str) -> bool:
    """Whether `cls` or a base class (not `object`) defines `name`."""
    return any(name in vars(klass) for klass in cls.__mro__ if klass is not object)


def nested_targets(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path, target) of every `_target_` below the top of `node`."""
    items = node.items() if isinstance(node, (DictConfig, dict)) else enumerate(node)
    for name, value in items:
        where = f"{path}.{name}" if path else str(name)
        if isinstance(value, (DictConfig, dict)):
            if "_target_" in value:
                yield where, str(value["_target_"])
            yield from nested_targets(value, where)
        elif isinstance(value, (ListConfig, list)):
            yield from nested_targets(value, where)


def pieces_of(cfg: DictConfig) -> Iterator[tuple[str, Any]]:
    """(key, node) of every piece tbpipe instantiates from `cfg`."""
    for group in PIECES:
        if isinstance(cfg.get(group), DictConfig):
            yield group, cfg[group]
    for name, node in (cfg.get("sinks") or {}).items():
        yield f"sinks.{name}", node


def check_config_targets(cfg: DictConfig) -> None:
    """The preflight's part: targets it can look up without loading TensorFlow.

    A target in Python's standard library is looked up here (cheap, and never a tbpipe
    piece); tbpipe's own and a user's classes are checked as the run builds them
    (`pipeline.contracts.build_piece`), still before anything is called.
    """
    for key, node in pieces_of(cfg):
        if not isinstance(node, DictConfig):
            continue
        for path, nested in nested_targets(OmegaConf.to_container(node, resolve=False)):
            raise BadTarget(
                f"bad value {key}.{path}._target_={shorten(nested)}: a piece's config holds "
                "plain values; tbpipe builds only the piece's own class"
            )
        target = str(node.get("_target_", ""))
        if target.split(".")[0] in sys.stdlib_module_names:
            check_target(key, node)
    check_callbacks(cfg)
    check_logging(cfg)


def check_callbacks(cfg: DictConfig) -> None:
    """Hydra instantiates every `hydra.callbacks.*`: each must be a Callback class."""
    from hydra.experimental.callback import Callback

    for name, node in (cfg.hydra.get("callbacks") or {}).items():
        target = node.get("_target_") if isinstance(node, DictConfig) else None
        require_class(
            target, Callback, f"hydra.callbacks.{name}._target_",
            "a hydra.experimental.callback.Callback class",
        )  # fmt: skip
        for path, nested in nested_targets(node):
            raise BadInput(
                f"bad value hydra.callbacks.{name}.{path}._target_={shorten(nested)}: a "
                "callback's config holds plain values; nothing was called"
            )


#: what the logging configs may build: Python's logging.config calls `()` and `class`
LOGGING_KINDS = (logging.Handler, logging.Formatter, logging.Filter)


def check_logging(cfg: DictConfig) -> None:
    """`hydra.job_logging` / `hydra.hydra_logging` may only name logging classes."""
    for part in ("job_logging", "hydra_logging"):
        node = cfg.hydra.get(part)
        raw = OmegaConf.to_container(node, resolve=False) if isinstance(node, DictConfig) else {}
        for path, key, value in _factories(raw, f"hydra.{part}"):
            allowed = "a logging Handler, Formatter or Filter class"
            require_class(value, LOGGING_KINDS, f"{path}.{key}", allowed)


def require_class(target: Any, kinds: type | tuple[type, ...], key: str, allowed: str) -> None:
    """`target` must name a subclass of `kinds`; else one line naming the key and value."""
    found, why = find_class(str(target))
    if not (isinstance(found, type) and issubclass(found, kinds)):
        raise BadInput(
            f"bad value {key}={shorten(target)}: {why or kind_of(found)}, not {allowed}; "
            "nothing was called"
        )


def _factories(node: dict, path: str) -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) of every `()` and `class` in a logging config (unresolved)."""
    for name, value in node.items():
        if name in ("()", "class") and isinstance(value, str):
            yield path, name, value
        elif isinstance(value, dict):
            yield from _factories(value, f"{path}.{name}")
