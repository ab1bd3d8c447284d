"""The settings a run shows in the HPARAMS tab (the metrics it compares them on are the
task's: `pipeline.tasks.metrics_of`).

Every run needs them (the HParams sink writes them at the run's start) and a sweep's
summary lists them again at the sweep root, so they live here, below both.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from pipeline.compat import resolved_further

#: The main settings every run reports to the HPARAMS tab, swept or not.
MAIN_SETTINGS = (
    "data.noise_std",
    "optimizer.learning_rate",
    "trainer.steps",
    "model",
    "optimizer",
    "seed",
)


def hparam_value(value: Any) -> bool | int | float | str:
    """HParams take bool, int, float or str; anything else is shown as text."""
    return value if isinstance(value, bool | int | float | str) else str(value)


@functools.lru_cache(maxsize=65536)
def given_setting(override: str) -> tuple[str, str] | None:
    """(key, value as text) an override sets, None for a deletion. Cached: a sweep's summary
    reads the same few overrides for every job, and Hydra's grammar parser is slow."""
    (parsed,) = OverridesParser.create().parse_overrides([override])
    return None if parsed.is_delete() else (parsed.key_or_group, parsed.get_value_element_as_str())


def hparams_of(
    cfg: DictConfig, overrides: Sequence[str] = ()
) -> dict[str, bool | int | float | str]:
    """The settings a run reports to HPARAMS: every overridden key plus the main settings.

    A key naming a config node with a `_target_` (e.g. `model`) reports the class it builds;
    a key that is not in the config (e.g. `experiment`) reports the override's text.
    """
    given = dict(setting for o in overrides if (setting := given_setting(o)) is not None)
    hparams: dict[str, bool | int | float | str] = {}
    for key in dict.fromkeys([*given, *MAIN_SETTINGS]):  # a main setting given: looked up once
        node = OmegaConf.select(cfg, key, default=None)
        if isinstance(node, DictConfig) and "_target_" in node:
            hparams[key] = str(node._target_).rsplit(".", 1)[-1]
        elif node is not None and not isinstance(node, DictConfig):
            hparams[key] = hparam_value(
                OmegaConf.to_object(node) if OmegaConf.is_config(node) else node
            )
        elif key in given:
            hparams[key] = given[key]
    return hparams


#: a key `hparams_of` looks up as nested mappings' names (`optimizer.learning_rate`)
PLAIN_KEY = re.compile(r"[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*")
_UNREAD = object()


def hparams_of_values(
    values: dict[str, Any], overrides: Sequence[str] = ()
) -> dict[str, bool | int | float | str] | None:
    """`hparams_of(OmegaConf.create(values), overrides)` of a config already resolved into
    plain dicts, lists and values (a stacked job's), read without making it a DictConfig;
    None where OmegaConf could read it otherwise: a key that is not plain names, one that
    goes through a list or a value, a text that holds `${` or is `???`."""
    given = dict(setting for o in overrides if (setting := given_setting(o)) is not None)
    hparams: dict[str, bool | int | float | str] = {}
    for key in dict.fromkeys([*given, *MAIN_SETTINGS]):
        node = _value_at(values, key) if PLAIN_KEY.fullmatch(key) else _UNREAD
        if node is _UNREAD or _holds_text_to_resolve(node):
            return None
        if isinstance(node, dict) and "_target_" in node:
            hparams[key] = str(node["_target_"]).rsplit(".", 1)[-1]
        elif node is not None and not isinstance(node, dict):
            hparams[key] = hparam_value(node)
        elif key in given:
            hparams[key] = given[key]
    return hparams


def _value_at(values: dict[str, Any], key: str) -> Any:
    """The value at dotted `key`, None where a name is missing; _UNREAD through a value."""
    node: Any = values
    for name in key.split("."):
        if not isinstance(node, dict):
            return _UNREAD
        node = node.get(name)
        if node is None:
            return None
    return node


def _holds_text_to_resolve(node: Any) -> bool:
    if isinstance(node, dict):
        return any(map(_holds_text_to_resolve, node.values()))
    if isinstance(node, list):
        return any(map(_holds_text_to_resolve, node))
    return resolved_further(node)
