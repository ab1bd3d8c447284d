"""A written stacked job's configs, made from what the sweep's jobs share.

The stacked launcher writes each job's `.hydra/` files and builds its task config itself
(pipeline/sweeps/stacked_write.py). The jobs of a sweep share all but a few values of
their configs (Hydra's help pages, the model, the trainer; the noise level and the seed
differ, and the job's number, dir and name), so:

- `yaml_by_entry` dumps a config entry by entry, each entry once a sweep: a block
  mapping's entries are emitted one after another, each starting on a new line at its own
  indent, so the text of the whole is the text of its entries dumped alone in their place
  (the mappings above them as the first lines), one after another. An entry equal to the
  last job's (in types too) reuses its text; a mapping with other values is dumped entry
  by entry in turn, so a job's own values (`hydra.runtime.output_dir`, `hydra.job.num`,
  its overrides) are all that is dumped; a number, a bool, null or a text of one word
  (and a list of them) is its key's text and its own (a seed's entry is new to each job,
  its text is not), a text through PyYAML's C emitter.
  tests/test_stacked_yaml.py checks the bytes against OmegaConf's own `to_yaml`.
- `task_config_of` gives `OmegaConf.create` of the job's saved config as a copy of the
  last one created whole with the values that differ set, when the two have the same
  keys and lists; anything else is created whole (and copied from then on).
"""

from __future__ import annotations

import copy
import pickle
import re
from collections import OrderedDict
from typing import Any

from omegaconf import Container, DictConfig, OmegaConf

from pipeline.compat import config_yaml, resolved_further, yaml_of
from pipeline.sweeps.stacked_logging import interpolated

#: each entry's last value and its YAML, by (the mappings above, repr(key)): a job's entry
#: equal to the last one's (types too: `1` is not `true`) reuses its text
_entry_yaml: OrderedDict[tuple[tuple[str, ...], str], tuple[Any, str]] = OrderedDict()
#: entries kept (one a key of the configs dumped: a sweep's all stay)
ENTRIES_KEPT = 4096
#: a mapping's own line (`  runtime:`), by (the mappings above, repr(key))
_head_yaml: dict[tuple[tuple[str, ...], str], str] = {}


def yaml_by_entry(container: dict, under: str = "") -> str:
    """`compat.yaml_of(container)`, or of `{under: container}`, dumped entry by entry and
    each entry once per sweep."""
    if not container:
        return yaml_of({under: container} if under else container)
    path = (under,) if under else ()
    parts = [_entry_text(path, key, value) for key, value in container.items()]
    if not under:
        return "".join(parts)
    return _head(path[:-1], under) + "".join(parts)


def _entry_text(path: tuple[str, ...], key: Any, value: Any) -> str:
    """The lines of `key: value` in the mappings `path`, as a dump of the whole writes them."""
    seen = (path, repr(key))
    last = _entry_yaml.get(seen)
    if last is not None and same(last[0], value):
        _entry_yaml.move_to_end(seen)
        return last[1]
    text = ""
    if isinstance(value, dict) and value and isinstance(key, str):
        head = _head(path, key)
        if head.strip() == f"{key}:":  # a plain key: its entries follow on lines of their own
            inner = (*path, key)
            text = head + "".join(_entry_text(inner, k, v) for k, v in value.items())
    elif isinstance(value, list) and value and isinstance(key, str):
        text = _list_entry(path, key, value)
    text = text or _scalar_entry(path, key, value) or _dumped(path, {key: value})
    _entry_yaml[seen] = (value, text)
    _entry_yaml.move_to_end(seen)
    if len(_entry_yaml) > ENTRIES_KEPT:
        _entry_yaml.popitem(last=False)
    return text


def same(old: Any, new: Any) -> bool:
    """Whether `new` dumps as `old` does: the same keys in the same order, the same
    types (`1`, `1.0` and `true` are equal in Python, not in YAML) and values (a float's
    text too: `-0.0`, `nan`)."""
    if old is new:
        return True
    kind = type(old)
    if kind is not type(new):
        return False
    if kind is dict:
        return len(old) == len(new) and all(
            type(a) is type(b) and a == b and same(old[a], new[b])
            for a, b in zip(old, new, strict=True)
        )
    if kind is list:
        return len(old) == len(new) and all(map(same, old, new))
    if kind is float:
        return repr(old) == repr(new)
    return kind in (str, int, bool, type(None)) and old == new


#: the text of a number, a bool or null as YAML writes it anywhere, by (type, repr)
_scalar_yaml: dict[tuple[type, str], str] = {}
#: `  key: ` of a plain key, by (the mappings above, repr(key)); "" where it is not plain
_key_yaml: dict[tuple[tuple[str, ...], str], str] = {}


def _scalar_entry(path: tuple[str, ...], key: Any, value: Any) -> str:
    """`key: value` in the mappings `path` when the value is a number, a bool, null or a
    short text of one line (whose text never depends on where it stands: no folding),
    from the key's text and the value's; "" for any other entry."""
    if not isinstance(key, str):
        return ""
    text = scalar_text(value)
    if not text:
        return ""
    prefix = _key_prefix(path, key)
    return prefix + text if prefix else ""


def _list_entry(path: tuple[str, ...], key: str, items: list) -> str:
    """`key:` and its items, each on a line of its own at the key's indent (`- text`), when
    every item is a short text, a number, a bool or null (`scalar_text`); else ""."""
    prefix = _key_prefix(path, key)
    texts = [scalar_text(item) for item in items]
    if not prefix or not all(texts):
        return ""
    indent = prefix[: len(prefix) - len(prefix.lstrip(" "))]
    return prefix.rstrip(" ") + "\n" + "".join(f"{indent}- {text}" for text in texts)


def _key_prefix(path: tuple[str, ...], key: str) -> str:
    """`  key: ` of a plain key in the mappings `path`, dumped once; "" for another key."""
    prefix = _key_yaml.get((path, repr(key)))
    if prefix is None:
        line = yaml_of(_nested(path, {key: 0})).splitlines(keepends=True)[len(path)]
        prefix = line[: -len("0\n")] if line.endswith(": 0\n") else ""
        _key_yaml[(path, repr(key))] = prefix
    return prefix


#: the longest text `scalar_text` writes (a text with no space is never folded, however
#: long: YAML breaks a plain or quoted line only at a space)
TEXT_KEPT_WHOLE = 1024


def scalar_text(value: Any) -> str:
    """The YAML of `value` after `key: ` or `- ` (its line's end included) when it never
    depends on where it stands: a number, a bool, null (each dumped once), or a text of at
    most TEXT_KEPT_WHOLE printable ASCII characters with no space (never folded; dumped
    by PyYAML's C emitter, whose choice of plain or quoted is the Python one's, with
    OmegaConf's rule for texts that would read as another type); "" for any other."""
    kind = type(value)
    if kind is int:  # PyYAML writes an int as `str` does, plain (it reads back as one)
        return f"{value}\n"
    if kind in (float, bool, type(None)):
        text = _scalar_yaml.get((kind, repr(value)))
        if text is None:
            text = _scalar_yaml[(kind, repr(value))] = yaml_of({"k": value})[len("k: ") :]
        return text
    if kind is not str or len(value) > TEXT_KEPT_WHOLE:
        return ""
    text = _text_yaml.get(value)
    if text is None:
        text = ""
        if _SHORT_TEXT.fullmatch(value):
            text = config_yaml({"k": value})[len("k: ") :]
            text = text if text.count("\n") == 1 else ""
        _text_yaml[value] = text
        if len(_text_yaml) > ENTRIES_KEPT:  # a sweep's own texts (its overrides) stay
            _text_yaml.pop(next(iter(_text_yaml)))
    return text


#: `scalar_text` of recent texts (a noise level's override is in hundreds of jobs)
_text_yaml: dict[str, str] = {}


#: printable ASCII without a space (nor anything YAML escapes)
_SHORT_TEXT = re.compile(r"[!-~]*")


def list_yaml(items: list) -> str:
    """`compat.yaml_of(items)` of a list (a job's overrides.yaml), item by item where each
    is a short text (`scalar_text`)."""
    texts = [scalar_text(item) for item in items]
    if not items or not all(texts):
        return yaml_of(items)
    return "".join(f"- {text}" for text in texts)


def _head(path: tuple[str, ...], key: str) -> str:
    """The line that opens mapping `key` (holding mappings) in the mappings `path`."""
    found = _head_yaml.get((path, repr(key)))
    if found is None:
        whole = yaml_of(_nested(path, {key: {"entry": None}}))
        found = _head_yaml[(path, repr(key))] = whole.splitlines(keepends=True)[len(path)]
    return found


def _dumped(path: tuple[str, ...], entry: dict) -> str:
    """`entry` dumped inside the mappings `path`, the lines that open them left out."""
    lines = yaml_of(_nested(path, entry)).splitlines(keepends=True)
    return "".join(lines[len(path) :])


def _nested(path: tuple[str, ...], entry: dict) -> dict:
    for key in reversed(path):
        entry = {key: entry}
    return entry


#: the saved config of the last job whose task config was created whole, and that config
_template: list = []


def task_config_of(saved: dict) -> DictConfig:
    """`OmegaConf.create(saved)`: a copy of the last one created whole, with the values
    that differ set, when `saved` has its keys and lists (`create` of a dict makes the
    same untyped nodes either way); else created whole, the new template."""
    if _template:
        container, pickled = _template
        changes: list[tuple[tuple, Any]] = []
        if _changed_values(container, saved, (), changes):
            config = pickle.loads(pickled)
            for path, value in changes:
                node = config
                for key in path[:-1]:
                    node = node[key]
                node[path[-1]] = value
            return config
    config = OmegaConf.create(saved)
    _template[:] = [copy.deepcopy(saved), pickle.dumps(config)]
    return config


def _changed_values(old: Any, new: Any, path: tuple, changes: list) -> bool:
    """Add (path, value) of each value `new` holds otherwise than `old`; False when the
    two differ in keys, in a list's length or in what is a mapping or a list."""
    if isinstance(old, dict) or isinstance(new, dict):
        if not (isinstance(old, dict) and isinstance(new, dict)) or list(old) != list(new):
            return False
        return all(_changed_values(old[k], new[k], (*path, k), changes) for k in new)
    if isinstance(old, list) or isinstance(new, list):
        if not (isinstance(old, list) and isinstance(new, list)) or len(old) != len(new):
            return False
        pairs = enumerate(zip(old, new, strict=True))
        return all(_changed_values(a, b, (*path, i), changes) for i, (a, b) in pairs)
    if type(old) is not type(new) or old != new:
        changes.append((path, new))
    return True


def resolved_copy(config: DictConfig, saved: dict) -> dict:
    """`OmegaConf.to_container(config, resolve=True)` of a config made from `saved` (its
    container, unresolved, as `task_config_of` takes it): `saved`'s dicts and lists, new
    ones, with each value that holds an interpolation resolved by OmegaConf as
    `to_container` resolves it; the rest is read from `saved`, not node by node. A value
    that does not resolve is converted whole, to fail in OmegaConf's own words."""
    copied = _copied(saved)
    try:
        for path in interpolated(saved):
            parent, holder = config, copied
            for key in path[:-1]:
                parent, holder = parent._get_child(key), holder[key]
            node = parent._get_child(path[-1])._dereference_node()
            holder[path[-1]] = (
                OmegaConf.to_container(node, resolve=True)
                if isinstance(node, Container)
                else node._value()
            )
    except Exception:  # noqa: BLE001  OmegaConf's conversion says what is wrong
        return OmegaConf.to_container(config, resolve=True)
    return copied


#: `${a.b}`: an interpolation that only names another key, from the root
KEY_REFERENCE = re.compile(r"\$\{([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\}")
_absent = object()


def references_resolved(saved: dict) -> dict | None:
    """`resolved_copy` of the task config made from `saved` (its container, unresolved: the
    config `task_config_of` makes holds untyped values), read from `saved` alone, when each
    interpolation in it is a reference to a plain value of the task's (`seed: ${seed}`: a
    number, a bool, null or a text of its own, not in Hydra's node); else None."""
    copied = _copied(saved)
    for path in interpolated(saved):
        holder = copied
        for key in path[:-1]:
            holder = holder[key]
        found = KEY_REFERENCE.fullmatch(holder[path[-1]])
        if found is None or found[1].split(".")[0] == "hydra":
            return None
        value: Any = saved
        for name in found[1].split("."):
            value = value.get(name, _absent) if isinstance(value, dict) else _absent
        if value is _absent or isinstance(value, (dict, list)):
            return None
        if resolved_further(value):
            return None
        holder[path[-1]] = value
    return copied


def _copied(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {key: _copied(value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [_copied(value) for value in tree]
    return tree


def mentions(tree: Any, text: str) -> bool:
    """Whether some key or text value in `tree` (dicts, lists, values) holds `text`."""
    if isinstance(tree, dict):
        return any(mentions(k, text) or mentions(v, text) for k, v in tree.items())
    if isinstance(tree, list):
        return any(mentions(value, text) for value in tree)
    return isinstance(tree, str) and text in tree
