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
from pipeline.check.errors import BadInput, BadValue, shorten
from pipeline.check.schema import (
    SCHEMA_OF_TARGET,
    SINK_EVERY,
    SINK_KEYS,
    SINK_WRITER,
    STEPS_LIMIT,
    Allowed,
    TrainerSchema,
    WriterSchema,
    integer,
    seed_range,
)

#: config groups (and nodes) a run cannot do without: `~writer` is refused, not a crash
REQUIRED_GROUPS = ("trainer", "data", "model", "optimizer", "writer")


def validate(cfg: DictConfig) -> None:
    """Raise `BadValue` for the first value outside its range; return quietly otherwise."""
    hints.refuse_added_keys(cfg)  # `+trainer.stepz=5` would be ignored, `+optimizer.lr` fail
    _check_value("seed", cfg.get("seed"), integer().text, integer().accepts)
    _check_value("seed", cfg.get("seed"), seed_range().text, seed_range().accepts)
    for group in REQUIRED_GROUPS:
        node = cfg.get(group)
        if not isinstance(node, DictConfig):
            choose = "" if group == "trainer" else f"; choose one, e.g. {group}=<option>"
            raise BadInput(
                f"missing config group {group}: a run needs it (deleted with ~{group}?){choose}"
            )
        schema = {"trainer": TrainerSchema, "writer": WriterSchema}.get(group)
        schema = schema or SCHEMA_OF_TARGET.get(node.get("_target_"))
        if schema is not None:
            _check_node(group, node, schema)
    data = cfg.data
    if {"x_low", "x_high"} <= set(data.keys()) and not data.x_low < data.x_high:
        raise BadInput(
            f"bad value data.x_low={data.x_low}, data.x_high={data.x_high}: "
            "x_low must be less than x_high"
        )
    if data.get("n_train") is not None:
        check_batch_size(cfg.trainer.get("batch_size"), data.n_train, " (data.n_train)")
    for name, sink in (cfg.get("sinks") or {}).items():
        if isinstance(sink, DictConfig):
            _check_sink(f"sinks.{name}", sink)
    if isinstance(cfg.get("task"), DictConfig):
        check_task(cfg.task)


def check_task(task: DictConfig) -> None:
    """The task's pictures, and a main metric among its scalars (names of losses and
    metrics that Keras may know are looked up when the run builds the task)."""
    from pipeline.tasks import IMAGES, scalar_names

    for image in task.get("images") or ():
        if image not in IMAGES:
            raise BadValue("task.images", image, f"one of {', '.join(IMAGES)}")
    names = scalar_names(list(task.get("metrics") or ()))
    main = task.get("main_metric")
    if main is not None and main not in names:
        raise BadValue("task.main_metric", main, f"one of the task's scalars: {', '.join(names)}")


def rules_for(cfg: DictConfig, key: str) -> list[Allowed] | None:
    """The rules `validate` applies to the value at `key` alone (the same tables), or None
    when the key has rules beyond its own value (a relation such as x_low < x_high, or a
    key only `validate` knows how to check): then the whole config must be validated.

    A sweep's preflight checks each swept value with these, not each job's whole config.
    """
    if key == "seed":
        return [integer(), seed_range()]
    if key in RELATED_KEYS:
        return None
    parts = key.split(".")
    node = cfg.get(parts[0])
    if len(parts) == 2 and parts[0] in REQUIRED_GROUPS and isinstance(node, DictConfig):
        schema = {"trainer": TrainerSchema, "writer": WriterSchema}.get(parts[0])
        schema = schema or SCHEMA_OF_TARGET.get(node.get("_target_"))
        fields = {f.name: f for f in dataclasses.fields(schema)} if schema else {}
        if parts[1] in fields:
            meta = fields[parts[1]].metadata
            return [rule for rule in (meta.get("allowed"), meta.get("limit")) if rule]
    if len(parts) == 3 and parts[0] == "sinks" and isinstance(node, DictConfig):
        sink = node.get(parts[1])
        if parts[2] == "every" and isinstance(sink, DictConfig):
            return [SINK_EVERY, STEPS_LIMIT]
    return None


#: keys checked together with another (validate's relations between values; a data file's
#: keys with the file they name, pipeline/check/datafiles.py)
RELATED_KEYS = ("data.x_low", "data.x_high", "trainer.batch_size", "data.n_train")
RELATED_KEYS += ("data.path", "data.target", "data.features", "data.labels", "data.delimiter")
RELATED_KEYS += ("data.test_fraction", "data.standardize_target")


def _check_sink(key: str, sink: DictConfig) -> None:
    """Users' own sinks may carry any key; every sink that records periodically has
    `every`; tbpipe's own sinks have known keys and write to `train` or `test`."""
    if sink.get("every") is not None:
        for rule in (SINK_EVERY, STEPS_LIMIT):
            _check_value(f"{key}.every", sink.every, rule.text, rule.accepts)
    target = str(sink.get("_target_", ""))
    for name, rules in SINK_KEYS.get(target, {}).items():
        if name in sink:
            for rule in rules:
                if rule is not None:
                    _check_value(f"{key}.{name}", sink.get(name), rule.text, rule.accepts)
    if target.startswith("pipeline.sinks.") and "writer" in sink:
        _check_value(f"{key}.writer", sink.writer, SINK_WRITER.text, SINK_WRITER.accepts)


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
        if field.name not in node:
            continue
        for kind in ("allowed", "limit"):  # what the value is, then how far it may go
            rule = field.metadata.get(kind)
            if rule is not None:
                key, value = f"{prefix}.{field.name}", node.get(field.name)
                _check_value(key, value, rule.text, rule.accepts)


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
    broken = _yaml_error_in(error)
    if broken is not None:
        return _unreadable_yaml(broken)
    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        return _unknown_option(error, overrides, group_options)
    if isinstance(error, OverrideParseException):
        return BadInput(
            f"cannot read override {shorten(error.override)}: "
            f"{shorten(_first_line(error.message), 200)}"
        )
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
        given = [shorten(g) for g in _first_line(str(error)).split("'")[1:2]] or ["?"]
        return BadInput(
            f"ambiguous override {given[0]}: add --multirun (-m) to sweep over the values, "
            "or write key=[a,b] for a list"
        )
    return BadInput(shorten(_first_line(str(error)), 300) or type(error).__name__)


def _yaml_error_in(error: BaseException | None) -> Any:
    """The YAML syntax error (with the file and line it found) behind `error`, if any."""
    import yaml

    for _ in range(10):
        if error is None:
            return None
        if isinstance(error, yaml.MarkedYAMLError):
            return error
        error = error.__cause__ or error.__context__
    return None


def _unreadable_yaml(error: Any) -> BadInput:
    """`cannot read <file> line L, column C: <problem>` for a config file that is not YAML."""
    mark = error.problem_mark or error.context_mark
    where = f"{mark.name} line {mark.line + 1}, column {mark.column + 1}" if mark else "a config"
    what = "; ".join(part for part in (error.context, error.problem) if part)
    return BadInput(f"cannot read {where}: {what or 'not valid YAML'}")


def _unknown_option(error: MissingConfigException, overrides: list[str], group_options) -> BadInput:
    group, _, option = error.missing_cfg_file.rpartition("/")
    if not group:
        listing = ", ".join(o for o in group_options("") if not o.startswith("_")) or "config"
        return BadInput(
            f"unknown config --config-name {shorten(option)}: the configs here are {listing}"
        )
    options = error.options or group_options(group) or []
    given = shorten(override_for(group, overrides) or f"{group}={option}")
    option = shorten(option)
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
    return BadInput(f"bad value {key}={shorten(value)}: {shorten(_first_line(str(cause)), 200)}")


def override_for(key: str, overrides: list[str]) -> str | None:
    """The override the user typed for `key` (or for config group `key`), if any."""
    for override in overrides:
        name = override.partition("=")[0].lstrip("+~")
        if name.partition("@")[0] == key:
            return override
    return None


def _first_line(text: str) -> str:
    return str(text).strip().splitlines()[0] if str(text).strip() else ""
