"""Check a composed config against the ranges in `pipeline.check.schema`, and turn Hydra's
composition errors into one line that names the key, the value given and what is allowed.

Types and unknown keys are Hydra's job (the structured configs); ranges and relations
between keys (x_low < x_high) are checked here. Imports no TensorFlow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from pipeline.check import hints
from pipeline.check.errors import BadInput, BadValue
from pipeline.check.schema import SCHEMA_OF_TARGET, SINK_EVERY, TrainerSchema, WriterSchema, integer

REQUIRED_GROUPS = ("data", "model", "optimizer")


def validate(cfg: DictConfig) -> None:
    """Raise `BadValue` for the first value outside its range; return quietly otherwise."""
    hints.refuse_added_keys(cfg)  # `+trainer.stepz=5` would be ignored, `+optimizer.lr` fail
    _check_value("seed", cfg.get("seed"), integer().text, integer().accepts)
    _check_node("trainer", cfg.get("trainer"), TrainerSchema)
    for group in REQUIRED_GROUPS:
        node = cfg.get(group)
        if not isinstance(node, DictConfig):
            raise BadInput(f"missing config group {group}: choose one, e.g. {group}=<option>")
        schema = SCHEMA_OF_TARGET.get(node.get("_target_"))
        if schema is not None:
            _check_node(group, node, schema)
    if cfg.get("writer") is not None:
        _check_node("writer", cfg.writer, WriterSchema)
    data = cfg.data
    if {"x_low", "x_high"} <= set(data.keys()) and not data.x_low < data.x_high:
        raise BadInput(
            f"bad value data.x_low={data.x_low}, data.x_high={data.x_high}: "
            "x_low must be less than x_high"
        )
    if data.get("n_train") is not None:
        check_batch_size(cfg.trainer.get("batch_size"), data.n_train, " (data.n_train)")
    for name, sink in (cfg.get("sinks") or {}).items():
        # users' own sinks may carry any key; every sink that records periodically has `every`
        if isinstance(sink, DictConfig) and sink.get("every") is not None:
            _check_value(f"sinks.{name}.every", sink.every, SINK_EVERY.text, SINK_EVERY.accepts)


def check_batch_size(batch_size: int | None, n_train: int, source: str = "") -> None:
    """A mini-batch cannot hold more points than there are; `source` names where n_train
    comes from. Checked here for data=linear, and once the data exist for a user's."""
    if batch_size is not None and batch_size > n_train:
        raise BadInput(
            f"bad value trainer.batch_size={batch_size}: more than the {n_train} training "
            f"points{source}; use null (every point each step) or 1 to {n_train}"
        )


def _check_node(prefix: str, node: Any, schema: type) -> None:
    if not isinstance(node, DictConfig):
        return
    for field in dataclasses.fields(schema):
        allowed = field.metadata.get("allowed")
        if allowed is None or field.name not in node:
            continue
        _check_value(f"{prefix}.{field.name}", node.get(field.name), allowed.text, allowed.accepts)


def _check_value(key: str, value: Any, text: str, accepts: Callable[[Any], bool]) -> None:
    if not accepts(value):
        raise BadValue(key, value, text)


# -- Hydra's composition errors, in one line ------------------------------------------
def explain(error: Exception, overrides: Iterable[str], group_options: Callable) -> BadInput:
    """The one-line `BadInput` for an exception raised while Hydra composed the config.

    `group_options(group)` lists the options of a config group (Hydra's config loader).
    """
    overrides = list(overrides)
    cause = error.__cause__
    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        return _unknown_option(error, overrides, group_options)
    if isinstance(error, OverrideParseException):
        return BadInput(f"cannot read override {error.override}: {_first_line(error.message)}")
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and cause.full_key:
        return _unknown_key(cause, overrides)
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        return _wrong_type(cause, overrides)
    message = _first_line(str(error))
    hint = hints.not_in_defaults(message, overrides, group_options)
    hint = hint or hints.already_chosen(message, overrides)
    if hint is not None:
        return hint
    if isinstance(error, ConfigCompositionException) and "Ambiguous value" in str(error):
        given = _first_line(str(error)).split("'")[1:2] or ["?"]
        return BadInput(
            f"ambiguous override {given[0]}: add --multirun (-m) to sweep over the values, "
            "or write key=[a,b] for a list"
        )
    return BadInput(_first_line(str(error)) or type(error).__name__)


def _unknown_option(error: MissingConfigException, overrides: list[str], group_options) -> BadInput:
    group, _, option = error.missing_cfg_file.rpartition("/")
    options = error.options or group_options(group) or []
    given = override_for(group, overrides) or f"{group}={option}"
    if group == "sinks":
        return BadInput(
            f"unknown sink {given}: no sink named '{option}'; sinks that exist: "
            f"{', '.join(options)}"
        )
    listing = ", ".join(options) if options else "(none found)"
    return BadInput(f"unknown option {given}: {group} is one of {listing}")


def _unknown_key(cause: OmegaConfBaseException, overrides: list[str]) -> BadInput:
    key = cause.full_key
    parent = cause.parent_node
    where = key.rpartition(".")[0]
    known = [str(k) for k in parent] if isinstance(parent, DictConfig) else []
    if not where:
        known = [k for k in known if k != "hydra"]
    elsewhere = []
    if not where and isinstance(parent, DictConfig):  # `stepz=3`: search one level down
        nodes = [(k, parent.get(k)) for k in known]
        elsewhere = [f"{k}.{c}" for k, n in nodes if isinstance(n, DictConfig) for c in n]
    typed = override_for(key, overrides)
    plus = hints.takes_new_keys(where, parent)
    return hints.UnknownKey(key, known, typed, plus=plus, elsewhere=elsewhere)


def _wrong_type(cause: OmegaConfBaseException, overrides: list[str]) -> BadInput:
    key = cause.full_key
    given = override_for(key, overrides)
    value = given.partition("=")[2] if given else getattr(cause, "value", "?")
    schema, name = cause.object_type, key.rpartition(".")[2]
    if dataclasses.is_dataclass(schema):
        for field in dataclasses.fields(schema):
            if field.name == name and "allowed" in field.metadata:
                return BadValue(key, value, field.metadata["allowed"].text)
    return BadInput(f"bad value {key}={value}: {_first_line(str(cause))}")


def override_for(key: str, overrides: list[str]) -> str | None:
    """The override the user typed for `key` (or for config group `key`), if any."""
    for override in overrides:
        name = override.partition("=")[0].lstrip("+~")
        if name.partition("@")[0] == key:
            return override
    return None


def _first_line(text: str) -> str:
    return str(text).strip().splitlines()[0] if str(text).strip() else ""
