"""A sweep's jobs each write inside a dir of their own, inside the sweep dir; checked before
anything is.

Every job's dir and paths are what `job_dir_of` and `check_job_paths`
(pipeline/check/paths.py) find in its config. In a sweep over values, a later job differs
from the first of its group choices only in its number and the values it sets: its dir is
named from its number by a function the naming stage registers for the subdir's text, and
the paths it writes are texts of constants and its dir (`JobPaths`), so a 1,000-job sweep
resolves no interpolation per job. On any doubt a job's own config is checked, so every
error reads as it does for that job's config. Imports no TensorFlow.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pipeline.check import registry
from pipeline.check.errors import BadInput, shorten
from pipeline.check.paths import check_job_paths, inside, job_dir_of, output_dir, resolved


def check_sweep_paths(
    cfg: DictConfig, jobs: Sequence[tuple[DictConfig, list[str]]], every_job: bool
) -> None:
    """A sweep: each job's dir lies inside `hydra.sweep.dir` and is its own.

    `jobs` are the sweep's jobs (`every_job`) or jobs that stand for them (an Optuna
    search, another sweeper): then the job dir must depend on the job number, the one
    thing every sweeper keeps distinct.
    """
    paths = SweepPaths(cfg)
    for job_cfg, overrides in jobs:
        paths.add(job_cfg, overrides)
    paths.finish()
    if jobs and not every_job:
        job_cfg, overrides = jobs[0]
        first, second = (job_dir_of(job_cfg, overrides, n, paths.sweep_dir) for n in (0, 1))
        if first == second:
            raise BadInput(
                f"bad value hydra.sweep.subdir={shorten(job_cfg.hydra.sweep.subdir)}: every "
                f"job would write into {first}; each job needs its own dir "
                "(keep ${hydra.job.num} in it)"
            )


class SweepPaths:
    """`check_sweep_paths` of a sweep's jobs one at a time, each while its config is at
    hand (the preflight keeps no job's config); `finish` raises the first error found,
    the one `check_sweep_paths` of them all raises."""

    def __init__(self, cfg: DictConfig):
        self.error: Exception | None = None
        self.sweep_dir = ""
        self.owner: dict[str, int] = {}
        self.num = 0
        self.plans: dict[object, JobPaths | None] = {}  # {shape: its first job's plan}
        try:
            self.sweep_dir = output_dir("hydra.sweep.dir", cfg.hydra.sweep.dir)
        except Exception as error:  # noqa: BLE001  raised by `finish`, after every job's check
            self.error = error

    def add(
        self,
        job_cfg: DictConfig,
        overrides: list[str],
        shape: object = None,
        values: Sequence[str] = (),
    ) -> None:
        """Job number `self.num`, its config `job_cfg`: its dir, and what it writes there.

        `shape` (any hashable) names a set of jobs whose configs are one config with
        different `values` keys set (the preflight's template); a job after the first of
        its shape is checked from what its number and values can change (`JobPaths`),
        and in its whole config when that cannot say "fine"."""
        num, self.num = self.num, self.num + 1
        if self.error is not None:
            return
        plan = self.plans.get(shape) if shape is not None else None
        if plan is not None and plan.passes(num, values, self.sweep_dir, self.owner):
            return
        try:
            job_dir = job_dir_of(job_cfg, overrides, num, self.sweep_dir)
            if job_dir in self.owner:
                raise BadInput(
                    f"bad value hydra.sweep.subdir={shorten(job_cfg.hydra.sweep.subdir)}: jobs "
                    f"{self.owner[job_dir]} and {num} would share the dir {job_dir}; each job "
                    "needs its own (keep ${hydra.job.num} in it)"
                )
            self.owner[job_dir] = num
            check_job_paths(job_cfg, job_dir)
        except Exception as error:  # noqa: BLE001  raised by `finish`
            self.error = error
            return
        if shape is not None and shape not in self.plans:
            try:
                self.plans[shape] = JobPaths.of(job_cfg, values)
            except Exception:  # noqa: BLE001  no plan: each job's config is checked whole
                self.plans[shape] = None

    def finish(self) -> None:
        """Raise the first error found."""
        if self.error is not None:
            raise self.error


#: `${key}`, a key's text copied: the one interpolation `JobPaths` follows
_PLAIN_REFERENCE = re.compile(r"\$\{(\w[\w.]*)\}")
#: what a job's log file names resolve against: the job's dir (`check_job_paths`)
_JOB_DIR = "hydra.runtime.output_dir"
#: what `job_dir_of` and `check_job_paths` set in each job's config
_PER_JOB = ("hydra.job.num", "hydra.job.id", "hydra.job.override_dirname", "hydra.runtime")
#: nodes whose keys, set by a job's values, could move what it writes: its whole config
#: is checked then (the keys its paths interpolate are added per shape)
_WRITES_UNDER = ("hydra", "writer")


@dataclass(frozen=True)
class JobPaths:
    """`job_dir_of` and `check_job_paths` of the later jobs of one shape, from the number
    and values that set a job apart: its dir is named from its number alone (a function
    registered for the subdir's text, `registry.job_dir_names`), and each path it writes
    is a text made of constants and its dir. It only ever says "fine" (`passes`); any
    doubt and the job's own config is checked, so an error reads as it always has."""

    name_of: Callable[[int], str]
    #: (key, pieces of its text around the job's dir, strictly inside it), as checked
    paths: tuple[tuple[str, tuple[str, ...], bool], ...]
    #: keys a job's values must leave alone for this plan to hold
    kept: tuple[str, ...]

    @classmethod
    def of(cls, job_cfg: DictConfig, values: Sequence[str]) -> JobPaths | None:
        """The plan of the jobs shaped as `job_cfg` (checked whole just now), or None when
        its paths depend on more than a job's number and dir."""
        raw = OmegaConf.to_container(job_cfg, resolve=False)
        hydra = raw.get("hydra") if isinstance(raw, dict) else None
        if not isinstance(hydra, dict):
            return None
        subdir = _at(hydra, "sweep.subdir")
        namer = registry.job_dir_names.get(subdir) if isinstance(subdir, str) else None
        name_of = namer(job_cfg) if namer is not None else None
        if name_of is None:
            return None
        kept: list[str] = list(_WRITES_UNDER)
        paths: list[tuple[str, tuple[str, ...], bool]] = []

        def add(key: str, text: Any, strictly: bool, in_job_dir: bool) -> bool:
            pieces = _pieces(raw, text, kept, in_job_dir)
            if pieces is not None:
                paths.append((key, pieces, strictly))
            return pieces is not None

        subdir = _at(hydra, "output_subdir")
        if subdir is not None and not add("hydra.output_subdir", subdir, True, False):
            return None
        handlers = _at(hydra, "job_logging.handlers") or {}
        if subdir is _OPAQUE or not isinstance(handlers, dict):
            return None
        for name, handler in handlers.items():
            if isinstance(handler, dict) and handler.get("filename") is not None:
                key = f"hydra.job_logging.handlers.{name}.filename"
                if not add(key, handler["filename"], True, True):
                    return None
            elif not isinstance(handler, dict) and handler is not None:
                return None  # an interpolated handler: not followed here
        writer = raw.get("writer")
        if writer is not None and not isinstance(writer, dict):
            return None
        if isinstance(writer, dict):
            for name in ("train", "test"):
                text = writer.get(name)
                if text == "???" or (text is not None and not isinstance(text, str)):
                    return None
                if isinstance(text, str) and not add(f"writer.{name}", text, False, True):
                    return None
        plan = cls(name_of, tuple(paths), tuple(kept))
        return None if plan.touched(values) else plan

    def touched(self, values: Sequence[str]) -> bool:
        """Whether a job setting these keys could write elsewhere than this plan says."""
        return any(nested(key, kept) for key in values for kept in self.kept)

    def passes(self, num: int, values: Sequence[str], sweep_dir: str, owner: dict) -> bool:
        """Whether job `num` setting `values` writes only inside a dir of its own (then
        `owner` records the dir), as its whole config would show; False: check that."""
        if self.touched(values):
            return False
        job_dir = resolved(os.path.join(sweep_dir, self.name_of(num)))
        if job_dir in owner or not inside(job_dir, sweep_dir):
            return False
        found, new = {}, not os.path.lexists(job_dir)
        for key, pieces, strictly in self.paths:
            value = job_dir.join(pieces)
            path = _resolved_below(job_dir, value, new)
            if not value.strip() or not inside(path, job_dir, strictly=strictly):
                return False
            found[key] = path
        if found.get("writer.train", 0) == found.get("writer.test", 1):
            return False
        owner[job_dir] = num
        return True


def _resolved_below(job_dir: str, value: str, new: bool) -> str:
    """`resolved(job_dir/value)`, folded without asking the file system when `job_dir`
    (resolved) does not exist yet and the path stays below it without `..`: nothing
    there can be a link."""
    path = os.path.join(job_dir, value)
    below = path[len(job_dir) :] if path.startswith(job_dir + os.sep) else None
    if new and below is not None and ".." not in below.split(os.sep):
        return os.path.normpath(path)
    return resolved(path)


def _at(node: Any, dotted: str) -> Any:
    """The raw value at a dotted key of a container: None where there is none, `_OPAQUE`
    where a node on the way is an interpolation (or anything but a dict)."""
    for part in dotted.split("."):
        if node is None:
            return None
        if not isinstance(node, dict):
            return _OPAQUE
        node = node.get(part)
    return _OPAQUE if node == "???" else node


#: what `_at` gives for a value it cannot see without resolving
_OPAQUE = object()


def nested(key: str, other: str) -> bool:
    """Whether setting `key` can change `other` (dotted keys): the same, or one inside the other."""
    return key == other or key.startswith(f"{other}.") or other.startswith(f"{key}.")


def _pieces(raw: dict, text: Any, kept: list[str], in_job_dir: bool) -> tuple[str, ...] | None:
    """`text` as the pieces around each `${hydra.runtime.output_dir}` (the job's dir,
    where `in_job_dir`), every other `${key}` replaced by that key's constant text (and
    the key added to `kept`); None for any other interpolation or value."""
    if not isinstance(text, str):
        return None
    if "${" not in text:
        return (text,)
    if any(char in _PLAIN_REFERENCE.sub("", text) for char in "${}\\"):
        return None
    parts = _PLAIN_REFERENCE.split(text)  # text, key, text, key, ..., text
    pieces, current = [], parts[0]
    for key, after in zip(parts[1::2], parts[2::2], strict=True):
        if key == _JOB_DIR and in_job_dir:
            pieces.append(current)
            current = after
            continue
        value = _at(raw, key)
        if not isinstance(value, str) or "${" in value:
            return None
        if any(nested(key, own) for own in _PER_JOB):
            return None
        kept.append(key)
        current += value + after
    return (*pieces, current)
