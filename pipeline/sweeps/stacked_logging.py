"""Each written stacked job's logging, as Hydra's `configure_log(hydra.job_logging)` sets it.

Hydra configures logging afresh for every job it runs: the job's config converted, Python's
`logging.config.dictConfig` run, which builds every handler again only to point the file
handler (`<run dir>/tbpipe.log`) at the job's own dir. The jobs the stacked launcher writes
(pipeline/sweeps/stacked_write.py) share one logging config but for that file name, so
`JobLogging` runs Hydra's own `configure_log` for the first job of a config and keeps what
it left (each logger's level, handlers, propagation); a later job with the same config gets
that state back with a new file handler at its own file (same class, mode, format, level),
so its tbpipe.log holds the same lines in the same format. Anything else that differs (a
value other than a file name, a logger made since, another stdout) configures afresh.
"""

from __future__ import annotations

import logging
import re
import sys
from enum import Enum
from typing import Any

from hydra.core.utils import configure_log
from omegaconf import DictConfig, OmegaConf

from pipeline.compat import config_container, resolved_further

_unresolved = object()


def interpolated(tree: Any, path: tuple = ()) -> list[tuple]:
    """The paths of the text values in `tree` (dicts, lists) that hold an interpolation."""
    if isinstance(tree, dict):
        return [found for key, value in tree.items() for found in interpolated(value, (*path, key))]
    if isinstance(tree, list):
        return [found for i, value in enumerate(tree) for found in interpolated(value, (*path, i))]
    return [path] if isinstance(tree, str) and "${" in tree else []


#: `${a.b.c}`: a reference to a node by its full key, the one interpolation read here
#: without OmegaConf's grammar (a file name such as `${hydra.runtime.output_dir}/x.log`)
REFERENCE = re.compile(r"\$\{([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)\}")
#: whether a referenced key holds a value read as OmegaConf reads it (not an enum), by key
_plain_keys: dict[str, bool] = {}


def resolved(config: DictConfig, saved: dict, path: tuple) -> Any:
    """The value at `path` of `config`'s `hydra.job_logging`, which holds an interpolation:
    OmegaConf's, read from `saved` (the config as a container, unresolved, Hydra's node
    included) where the text is references to plain values, each put in as text."""
    raw = saved["hydra"]["job_logging"]
    for key in path:
        raw = raw[key]
    parts = REFERENCE.split(raw)
    found: list | None = []
    for key in parts[1::2]:
        value = saved
        for name in key.split("."):
            value = value.get(name, _unresolved) if isinstance(value, dict) else _unresolved
        if isinstance(value, (dict, list)) or resolved_further(value):
            value = _unresolved  # a node, or a value OmegaConf resolves further
        elif value is not _unresolved and key not in _plain_keys:
            _plain_keys[key] = not isinstance(OmegaConf.select(config, key), Enum)
        if value is _unresolved or not _plain_keys[key]:
            found = None
            break
        found.append(value)
    texts = parts[0::2]
    if found is None or any(c in text for text in texts for c in "\\${}'\""):
        node = config.hydra.job_logging
        for key in path:
            node = node[key]
        return node
    if texts == ["", ""]:
        return found[0]
    return "".join(text + str(value) for text, value in zip(texts, [*found, ""], strict=True))


class JobLogging:
    """`configure_log(hydra.job_logging, hydra.verbose)` for one job after another, Python's
    dictConfig run only when the config differs in more than its files' names."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._values: dict[tuple, Any] = {}
        #: the root's and each configured logger's (level, handlers, propagate) as set last
        self._state: dict[str, tuple] = {}
        self._disable_existing = False
        #: whether the logging now is the kept state's (set by this, nothing since)
        self.last = False

    def configure(self, config: DictConfig, saved: dict) -> None:
        """Set the logging of the job whose config is `config` (`saved`: the same config as
        a container, unresolved)."""
        hydra_node, hydra_saved = config.hydra, saved["hydra"]
        raw = hydra_saved.get("job_logging")
        verbose = hydra_saved.get("verbose")
        values = {path: resolved(config, saved, path) for path in interpolated(raw)}
        key = (repr(raw), repr(verbose), id(sys.stdout))
        files = self._files_moved(key, values)
        if files is None:
            configure_log(hydra_node.job_logging, hydra_node.verbose)
            self._remember(key, values, raw, verbose)
            self.last = self._key is not None
            return
        swapped = {old: _moved(old, filename) for old, filename in files.items()}
        self._state = {
            name: (level, [swapped.get(h, h) for h in handlers], propagate)
            for name, (level, handlers, propagate) in self._state.items()
        }
        _restore(self._state, self._disable_existing)
        self._values = values
        self.last = True

    def _files_moved(self, key: tuple, values: dict[tuple, Any]) -> dict | None:
        """{file handler: its new file} when only handlers' file names differ from the state
        kept; None when logging must be configured afresh."""
        if key != self._key:
            return None
        handlers = {h.get_name(): h for _, kept, _ in self._state.values() for h in kept}
        moved = {}
        for path, value in values.items():
            if value == self._values[path]:
                continue
            if len(path) != 3 or path[0] != "handlers" or path[2] != "filename":
                return None
            handler = handlers.get(path[1])
            if type(handler) is not logging.FileHandler:
                return None
            moved[handler] = value
        return moved

    def _remember(self, key: tuple, values: dict, raw: Any, verbose: Any) -> None:
        """Keep the state dictConfig left, when a later job can be given it back."""
        self._key = None
        if not _restorable(raw, verbose):
            return
        self._state, self._disable_existing = _kept(raw)
        self._key, self._values = key, values

    def handlers(self) -> list[logging.Handler]:
        """The handlers of the state kept."""
        return [h for _, kept, _ in self._state.values() for h in kept]


class SweepLogging:
    """`configure_log(hydra.hydra_logging, hydra.verbose)`, the launcher's own logging put
    back after each job: after a job whose logging `job_logging` set last, the state the
    first dictConfig left is given back, the job's handlers closed as dictConfig closes
    them; after any other job (run by Hydra's `run_job`), dictConfig runs."""

    def __init__(self, job_logging: JobLogging) -> None:
        self.job_logging = job_logging
        self._key: tuple | None = None
        self._state: dict[str, tuple] = {}
        self._disable_existing = False

    def configure(self, hydra_node: DictConfig) -> None:
        raw = config_container(hydra_node.hydra_logging)
        verbose = hydra_node.verbose
        key = (repr(raw), repr(verbose), id(sys.stdout))
        if key == self._key and self.job_logging.last:
            for handler in self.job_logging.handlers():
                handler.close()
            _restore(self._state, self._disable_existing)
        else:
            configure_log(hydra_node.hydra_logging, verbose)
            self._key = key if _restorable(raw, verbose) else None
            if self._key is not None:
                self._state, self._disable_existing = _kept(raw)
        self.job_logging.last = False


def _restorable(raw: Any, verbose: Any) -> bool:
    """Whether what dictConfig leaves for `raw` can be kept and put back as it is: a whole
    (not incremental) config with a root, no filters on loggers (dictConfig adds them
    again), and `verbose` true or false (not a list of loggers)."""
    if not isinstance(raw, dict) or raw.get("root") is None or raw.get("incremental"):
        return False
    loggers = [raw["root"], *(raw.get("loggers") or {}).values()]
    return isinstance(verbose, bool) and all(
        isinstance(c, dict) and "filters" not in c for c in loggers
    )


def _kept(raw: dict) -> tuple[dict[str, tuple], bool]:
    """The root's and each configured logger's (level, handlers, propagate) now, and
    whether loggers the config leaves out are disabled."""
    state = {}
    for name in ["", *(raw.get("loggers") or {})]:
        logger = logging.getLogger(name or None)
        state[name] = (logger.level, list(logger.handlers), logger.propagate)
    return state, bool(raw.get("disable_existing_loggers", True))


def _restore(state: dict[str, tuple], disable_existing: bool) -> None:
    """What dictConfig leaves, with the config it left `state` for: the root's and the
    configured loggers' levels, handlers and propagation; their existing children reset;
    every other logger enabled or disabled as `disable_existing_loggers` says."""
    children = tuple(f"{name}." for name in state if name)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name in state or not isinstance(logger, logging.Logger):
            continue
        if children and name.startswith(children):
            logger.setLevel(logging.NOTSET)
            logger.handlers, logger.propagate = [], True
        else:
            logger.disabled = disable_existing
    for name, (level, handlers, propagate) in state.items():
        logger = logging.getLogger(name or None)
        logger.setLevel(level)
        logger.handlers = list(handlers)
        logger.propagate = propagate


def _moved(old: logging.FileHandler, filename: str) -> logging.FileHandler:
    """A file handler like `old` (mode, encoding, format, level, filters, name) on
    `filename`; `old` closed first (its name then goes to the new one)."""
    old.close()
    new = logging.FileHandler(
        filename, mode=old.mode, encoding=old.encoding, delay=old.delay, errors=old.errors
    )
    new.setFormatter(old.formatter)
    new.setLevel(old.level)
    new.filters = list(old.filters)
    new.set_name(old.get_name())
    return new


#: the stacked launcher's: each written job's logging, and its own between jobs
job_logging = JobLogging()
sweep_logging = SweepLogging(job_logging)
