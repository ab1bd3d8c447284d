"""A written stacked job's configs, made from what the sweep's jobs share.

The stacked launcher writes each job's `.hydra/` files and builds its task config itself
(pipeline/sweeps/stacked_write.py). The jobs of a sweep share all but a few values of
their configs (Hydra's help pages, the model, the trainer; the noise level and the seed
differ, and the job's number, dir and name), so:

- `yaml_by_entry` dumps a config entry by entry, each entry once a sweep: a block
  mapping's entries are emitted one after another, each starting on a new line at its own
  indent, so the text of the whole is the text of its entries dumped alone in their place
  (the mappings above them as the first lines), one after another. An entry seen before
  reuses its text; a mapping seen with other values is dumped entry by entry in turn, so
  a job's own values (`hydra.runtime.output_dir`, `hydra.job.num`) are all that is dumped;
  a number, a bool or null is its key's text and its own, each dumped once (a seed's
  entry is new to each job, its text is not).
  tests/test_stacked_yaml.py checks the bytes against OmegaConf's own `to_yaml`.
- `task_config_of` gives `OmegaConf.create` of the job's saved config as a copy of the
  last one created whole with the values that differ set, when the two have the same
  keys and lists; anything else is created whole (and copied from then on).
"""

from __future__ import annotations

import copy
import pickle
from collections import OrderedDict
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pipeline.compat import yaml_of

#: the YAML of recently dumped entries, by (the mappings above, repr(key), repr(value))
_entry_yaml: OrderedDict[tuple[tuple[str, ...], str, str], str] = OrderedDict()
#: entries kept (those every job shares stay: each job uses them again)
ENTRIES_KEPT = 256
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
    seen = (path, repr(key), repr(value))
    text = _entry_yaml.get(seen)
    if text is not None:
        _entry_yaml.move_to_end(seen)
        return text
    if isinstance(value, dict) and value and isinstance(key, str):
        head = _head(path, key)
        if head.strip() == f"{key}:":  # a plain key: its entries follow on lines of their own
            inner = (*path, key)
            return head + "".join(_entry_text(inner, k, v) for k, v in value.items())
    text = _scalar_entry(path, key, value) or _dumped(path, {key: value})
    _entry_yaml[seen] = text
    if len(_entry_yaml) > ENTRIES_KEPT:
        _entry_yaml.popitem(last=False)
    return text


#: the text of a number, a bool or null as YAML writes it anywhere, by (type, repr)
_scalar_yaml: dict[tuple[type, str], str] = {}
#: `  key: ` of a plain key, by (the mappings above, repr(key)); "" where it is not plain
_key_yaml: dict[tuple[tuple[str, ...], str], str] = {}


def _scalar_entry(path: tuple[str, ...], key: Any, value: Any) -> str:
    """`key: value` in the mappings `path` when the value is a number, a bool or null
    (whose text never depends on where it stands: no quotes, no folding), from the key's
    text and the value's, each dumped once; "" for any other entry."""
    if type(value) not in (int, float, bool, type(None)) or not isinstance(key, str):
        return ""
    prefix = _key_yaml.get((path, repr(key)))
    if prefix is None:
        line = yaml_of(_nested(path, {key: 0})).splitlines(keepends=True)[len(path)]
        prefix = line[: -len("0\n")] if line.endswith(": 0\n") else ""
        _key_yaml[(path, repr(key))] = prefix
    if not prefix:
        return ""
    text = _scalar_yaml.get((type(value), repr(value)))
    if text is None:
        text = _scalar_yaml[(type(value), repr(value))] = yaml_of({"k": value})[len("k: ") :]
    return prefix + text


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


def mentions(tree: Any, text: str) -> bool:
    """Whether some key or text value in `tree` (dicts, lists, values) holds `text`."""
    if isinstance(tree, dict):
        return any(mentions(k, text) or mentions(v, text) for k, v in tree.items())
    if isinstance(tree, list):
        return any(mentions(value, text) for value in tree)
    return isinstance(tree, str) and text in tree
