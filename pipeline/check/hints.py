"""Lead a user from a wrong override to the right one: "did you mean", `+` only where it helps.

Hydra says a key is unknown and suggests `+key=value`, which on one of tbpipe's checked
nodes (a schema types it) only moves the failure into the run; and it says "No match in
the defaults list" when `+group=option` was meant. Here each miss gets the closest known
keys of its node (difflib, plus initials and prefixes: `lr` -> `learning_rate`), and `+`
is suggested only for a node that takes new keys (a user's own piece, the top level).
Also: the config groups a user chooses, as `tbpipe --help` lists them. Imports no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import difflib
import textwrap
from collections.abc import Callable, Iterable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pipeline.check.errors import BadInput
from pipeline.check.schema import SCHEMA_OF_TARGET, TrainerSchema, WriterSchema

#: top-level nodes typed by a schema whatever their content
SCHEMA_OF_NODE = {"trainer": TrainerSchema, "writer": WriterSchema}
#: groups a user adds with `+` (nothing chosen by default) and groups used with `-m` only
ADDED_GROUPS = ("experiment",)
SWEEP_GROUPS = ("hparams_search", "hydra/launcher", "hydra/sweeper")


class UnknownKey(BadInput):
    """`key` is not a key of its node; the message names the closest known ones.

    `elsewhere`: dotted keys one level down, searched when a top-level key is unknown
    (`stepz=3` -> `trainer.steps`).
    """

    def __init__(self, key: str, known: Iterable[str], typed: str | None = None, plus=False,
                 elsewhere: Iterable[str] = ()):  # fmt: skip
        self.key, self.known, self.plus = key, sorted(known), plus
        self.elsewhere = list(elsewhere)
        super().__init__(unknown_key_message(key, self.known, typed, plus, self.elsewhere))


def unknown_key_message(
    key: str, known: list[str], typed: str | None, plus: bool, elsewhere: list[str] = ()
) -> str:
    """`unknown key K=V: did you mean N.x? (N has a, b)`; the `+` only when `plus`."""
    given = typed or key
    where, _, name = key.rpartition(".")
    shown = [k for k in known if k != "_target_"]  # a class, chosen with group=option
    spelled = [f"{where}.{k}" if where else k for k in closest(name, shown)]
    if not spelled and elsewhere:
        by_name = {}
        for dotted in elsewhere:
            by_name.setdefault(dotted.rpartition(".")[2], dotted)
        spelled = [by_name[k] for k in closest(name, by_name)]
    has = f"{where or 'the top level'} has {', '.join(shown) or 'no keys'}"
    text = f"unknown key {given}: " + (
        f"did you mean {' or '.join(spelled)}? ({has})" if spelled else has
    )
    if plus:
        text += f" (to add a new key, write +{given.lstrip('+~')})"
    return text


def closest(name: str, known: Iterable[str], most: int = 2) -> list[str]:
    """The known names a typo of `name` most likely meant: similar spelling, the initials
    (`lr` -> `learning_rate`) or the start (`noise` -> `noise_std`)."""
    known = list(known)
    found = difflib.get_close_matches(name, known, n=most, cutoff=0.6)
    for key in known:
        initials = "".join(word[:1] for word in key.split("_") if word)
        starts = len(name) >= 3 and key.startswith(name)
        if key not in found and ((len(name) >= 2 and name == initials) or starts):
            found.append(key)
    return found[:most]


def takes_new_keys(key: str, node: Any) -> bool:
    """True for a user's own piece: its class, not tbpipe, decides which keys it takes.

    tbpipe's own nodes (schemas, its sinks, the top level, `hydra`) take no new keys: the
    run would fail on one or ignore it.
    """
    if not isinstance(node, DictConfig) or key.split(".")[0] == "hydra":
        return False
    if schema_of(key, node) is not None or dataclasses.is_dataclass(OmegaConf.get_type(node)):
        return False
    target = str(node.get("_target_") or "")
    return bool(target) and not target.startswith("pipeline.")


def schema_of(key: str, node: Any) -> type | None:
    """The schema that types the node at `key` (e.g. "trainer", "optimizer"), if any."""
    if key in SCHEMA_OF_NODE:
        return SCHEMA_OF_NODE[key]
    if isinstance(node, DictConfig):
        return SCHEMA_OF_TARGET.get(node.get("_target_"))
    return None


def refuse_added_keys(cfg: DictConfig) -> None:
    """A key a schema does not know, added with `+` (or by a YAML file), is refused like a
    typo: the run would fail on it (a class does not take it) or silently ignore it."""
    refuse_flat_sinks(cfg)
    for name in cfg:
        node = cfg.get(name)
        schema = schema_of(str(name), node)
        if schema is None or not isinstance(node, DictConfig):
            continue
        fields = {field.name for field in dataclasses.fields(schema)}
        for key in node:
            if key not in fields:
                raise UnknownKey(f"{name}.{key}", fields)


def refuse_flat_sinks(cfg: DictConfig) -> None:
    """Each entry of `sinks` is a sink: a node under the sink's name. A sink file written
    flat (`_target_:` on its first line, as one might read docs/EXTENDING.md's tree) puts
    its keys straight into `sinks`, where the run would take `_target_` for a sink."""
    sinks = cfg.get("sinks")
    if not isinstance(sinks, DictConfig):
        return
    stray = [str(key) for key, node in sinks.items_ex(resolve=False) if not _sink_node(node)]
    if not stray:
        return
    if "_target_" not in stray:
        key, value = f"sinks.{stray[0]}", OmegaConf.to_container(sinks)[stray[0]]
        raise BadInput(
            f"bad value {key}={value}: each entry of sinks is "
            f"a sink, a node with a _target_ (~{key} removes one)"
        )
    found = flat_sink_files(cfg)
    where = ", ".join(str(path) for path in found) or "a sinks/<name>.yaml of your config dir"
    name = found[0].stem if len(found) == 1 else "<name>"
    raise BadInput(
        f"bad sink file {where}: its keys ({', '.join(stray)}) sit at the top of the file; "
        f'nest them under the sink\'s name: a first line "{name}:" and every key indented '
        "below it, as in tbpipe's own conf/sinks/*.yaml (docs/EXTENDING.md)"
    )


def _sink_node(node: Any) -> bool:
    return node is None or isinstance(node, DictConfig)  # None: a sink switched off


def flat_sink_files(cfg: DictConfig) -> list[Any]:
    """The sinks/*.yaml files of the run's own config dirs whose `_target_` is at the top."""
    from pathlib import Path

    import yaml

    sources = OmegaConf.select(cfg, "hydra.runtime.config_sources", default=None) or ()
    found = []
    for source in sources:
        if source.get("schema") != "file":
            continue
        for path in sorted(Path(source["path"], "sinks").glob("*.yaml")):
            try:
                content = yaml.safe_load(path.read_text())
            except (OSError, yaml.YAMLError):
                continue
            if isinstance(content, dict) and "_target_" in content:
                found.append(path)
    return found


def not_in_defaults(message: str, overrides: list[str], group_options: Callable) -> BadInput | None:
    """`experiment=X` where `+experiment=X` was meant (Hydra: "No match in the defaults list")."""
    if "No match in the defaults list" not in message or "'" not in message:
        return None
    group = message.split("'")[1]
    typed = next((o for o in overrides if o.partition("=")[0] == group), f"{group}=<option>")
    if not group_options(group):
        return None
    return BadInput(
        f"{typed}: no {group} is chosen by default, so there is none to replace; "
        f"to add one, write +{typed}"
    )


def already_chosen(message: str, overrides: list[str]) -> BadInput | None:
    """`+model=mlp` where `model=mlp` was meant (Hydra: "Multiple values for model")."""
    if not message.startswith("Multiple values for "):
        return None
    group = message.removeprefix("Multiple values for ").split(".")[0]
    typed = next((o for o in overrides if o.lstrip("+").partition("=")[0] == group), None)
    if typed is None:
        return None
    return BadInput(
        f"{typed}: {group} is chosen already (by default); to change it, write {typed.lstrip('+')}"
    )


def choices_text(loader: Any, chosen: dict[str, Any]) -> str:
    """The config groups a user chooses, one line each, as `tbpipe --help` shows them.

    `loader` is Hydra's config loader; `chosen` the current choices (runtime.choices).
    Hydra's own groups are left out but for the launcher and sweeper; the `schema` groups
    (types for Hydra) are tbpipe's inside.
    """
    groups = [g for g in _all_groups(loader, "") if g.split("/")[0] not in ("schema", "hydra")]
    groups += [g for g in SWEEP_GROUPS if g.startswith("hydra/")]
    lines = []
    for group in sorted(groups, key=lambda g: (g in ADDED_GROUPS or g in SWEEP_GROUPS, g)):
        options = sorted(loader.get_group_options(group))
        if not options:
            continue
        default = chosen.get(group)
        named = [f"{o} (default)" if o == default else o for o in options]
        if group == "sinks":
            lead, named = f"{group}=[a,b,...]", ["any of:", *named]
        elif group in ADDED_GROUPS:
            lead = f"+{group}=NAME"
        elif group in SWEEP_GROUPS:
            lead = f"-m {group}=NAME"
        else:
            lead = f"{group}=NAME"
        text = textwrap.fill(", ".join(named).replace("any of:,", "any of:"), width=92 - 30)
        lines.append(textwrap.indent(text, " " * 31).replace(" " * 31, f"  {lead:28} ", 1))
    return "\n".join(lines)


def _all_groups(loader: Any, parent: str) -> list[str]:
    from hydra.core.object_type import ObjectType

    found = []
    for name in loader.list_groups(parent):
        group = f"{parent}/{name}" if parent else name
        if loader.get_group_options(group, ObjectType.CONFIG):
            found.append(group)
        found += _all_groups(loader, group)
    return found
