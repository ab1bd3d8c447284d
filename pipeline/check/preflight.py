"""Check a `tbpipe` command line before Hydra runs it and before TensorFlow is imported.

Hydra reports its own composition errors in five or six lines, and only after it has
decided on an output directory; range errors would only show once TensorFlow (seconds
to import) is up. Here the overrides are composed with Hydra's own config loader, the
result is checked against the schema, and the output directory is checked, so a typo
costs well under a second, prints one line and leaves nothing on disk.
"""

from __future__ import annotations

import copy
import errno
import math
import os
import pickle
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from pipeline.check import registry
from pipeline.check.compose import CONFIG_NAME, searchpath_override, tbpipe_configs
from pipeline.check.datafiles import BUNDLED, FILE_DATA, SHARDED_FILES, check_data
from pipeline.check.errors import BadInput, BadValue, full_error_requested, shorten
from pipeline.check.hints import UnknownKey
from pipeline.check.paths import check_run_paths
from pipeline.check.schema import TBPIPE_SWEEPER, is_number
from pipeline.check.sweep_paths import SweepPaths, check_sweep_paths, nested
from pipeline.check.targets import check_config_targets
from pipeline.check.validate import explain, override_for, rules_for, validate
from pipeline.compat import (
    BASIC_SWEEPER,
    compose_with_hydra,
    hydra_args_parser,
    hydra_config_loader,
    interpolation_parses_kept,
    parsed_override,
    split_sweep,
)

# Hydra flags that print a composed config and run nothing: the overrides are checked as
# for a run (a typo is one line, not Hydra's traceback), the output dir is not.
_PRINTS_CONFIG = {"--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c"}
# Flags that compose nothing from the overrides: Hydra handles these on its own.
_NOT_A_RUN = {"--version", "--shell-completion", "-sc", "--experimental-rerun"}
#: longest command-line argument read (a 100 KB value is refused in one short line)
MAX_ARGUMENT = 10_000
#: files that mark a directory as an earlier run (or sweep) that must not be written into
RUN_MARKERS = ("metrics.json", ".hydra", "multirun.yaml")


#: the last single run checked with tbpipe's own config: its overrides and composed config
#: (pipeline/job.py lets Hydra's start of the run reuse it: `compat.compose_run_once`)
composed_run: list = []


@dataclass(frozen=True)
class OutputDir:
    """The dir a checked command will create: `key` is hydra.run.dir or hydra.sweep.dir,
    `path` its value as composed now, `pinned` whether Hydra must be told this value
    (it holds `${now:...}`, which Hydra would compose again to another time)."""

    key: str
    path: str
    pinned: bool


def check_command_line(argv: Sequence[str]) -> OutputDir | None:
    """Raise `BadInput` (one line) if the command `tbpipe <argv>` cannot run as given.

    Returns the output dir the command will create (claim it with
    `pipeline.check.claim.claim_dir`), or None for a command that runs nothing.
    """
    if _NOT_A_RUN.intersection(arg.split("=")[0] for arg in argv):
        return None
    for arg in argv:
        if len(arg) > MAX_ARGUMENT:
            key, _, value = arg.partition("=")
            raise BadInput(
                f"bad value {shorten(key, 60)}={shorten(value)}: longer than {MAX_ARGUMENT} "
                "characters; put a long value in a config file (--config-dir)"
            )
    _check_digits(argv)
    args = hydra_args_parser().parse_args(list(argv))
    _check_one_mode(args)
    if args.config_path is not None and not os.path.isabs(args.config_path):
        return None  # Hydra resolves a relative --config-path its own way; let it report
    multirun = bool(args.multirun) or "hydra.mode=MULTIRUN" in args.overrides
    runs = not _PRINTS_CONFIG.intersection(arg.split("=")[0] for arg in argv)
    try:
        output = _check_configs(args, multirun, runs)
        return output if runs else None
    except BadInput:
        raise
    except Exception as error:
        if full_error_requested():
            raise
        first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise BadInput(first) from None


def _check_one_mode(args: Any) -> None:
    """Hydra does one of a run, a sweep, a printed config or its info at a time, and says
    so with a traceback when given two: refused here in one line instead."""
    modes = {
        "--run": args.run, "--multirun": args.multirun,
        "--cfg": args.cfg is not None, "--info": args.info is not None,
    }  # fmt: skip
    given = [flag for flag, on in modes.items() if on]
    if len(given) > 1:
        raise BadInput(
            f"{' and '.join(given)} given together: a command does one of "
            f"{', '.join(modes)} (drop all but one)"
        )


#: a whole number: Python reads at most `sys.get_int_max_str_digits()` digits of one
_WHOLE_NUMBER = re.compile(r"[+-]?\d[\d_]*")


def _check_digits(argv: Sequence[str]) -> None:
    """A whole number longer than Python reads (4,300 digits) is refused naming its key;
    Hydra's parser would say only that some value has too many digits."""
    limit = sys.get_int_max_str_digits()
    for arg in argv:
        key, equals, value = arg.partition("=")
        for number in _WHOLE_NUMBER.findall(value) if equals and limit else ():
            digits = sum(char.isdigit() for char in number)
            if digits > limit:
                raise BadInput(
                    f"bad value {shorten(key, 60)}={shorten(value)}: a whole number of {digits} "
                    f"digits; a number may have at most {limit}"
                )


def _check_configs(args, multirun: bool, runs: bool = True) -> OutputDir:
    from hydra.types import RunMode

    overrides = list(args.overrides)
    for check in registry.override_checks:  # e.g. a search without its sweeper installed
        check(overrides)
    if args.config_dir is not None:
        if not os.path.isdir(args.config_dir):  # Hydra would warn, then fail in its own words
            raise BadInput(
                f"bad value --config-dir {args.config_dir}: no such directory; give the folder "
                "that holds your config groups (e.g. my_conf, with model/ and data/ in it)"
            )
        overrides.append(searchpath_override(args.config_dir))
    config_name = args.config_name or CONFIG_NAME
    mode = RunMode.MULTIRUN if multirun else RunMode.RUN
    with tbpipe_configs(args.config_path):
        loader = hydra_config_loader()

        def compose(job_overrides: list[str], run_mode: RunMode = mode) -> DictConfig:
            try:
                return compose_with_hydra(config_name, job_overrides, run_mode)
            except Exception as error:
                if full_error_requested():
                    raise
                raise explain(error, job_overrides, loader.get_group_options) from None

        cfg = compose(overrides)
        if multirun:
            key, value = "hydra.sweep.dir", cfg.hydra.sweep.dir
            if runs:
                for check in registry.sweep_checks:  # e.g. a launcher this machine cannot run
                    check(cfg)
            jobs = _SweepJobs(cfg, overrides, compose, loader.list_groups(""))
            # each job's dir is found while its config is at hand (a later job's config is
            # one copy that each job sets its values on); its errors come after validation's
            paths, standing_in, count = SweepPaths(cfg), [], 0
            with interpolation_parses_kept():  # each job reads the same `${...}` texts
                for job_cfg, job, values_checked, shape in jobs:
                    if not values_checked:
                        _validate(job_cfg, job)
                    count += 1
                    if runs and jobs.every_job:
                        paths.add(job_cfg, job, *shape)
                    elif runs:
                        standing_in.append((job_cfg, job))
            if runs and jobs.every_job and not count:
                raise BadInput(f"the sweep has no jobs: {_empty_sweep(overrides)}; nothing was run")
            if runs and jobs.every_job:
                paths.finish()
            elif runs:
                check_sweep_paths(cfg, standing_in, every_job=False)
        else:
            key, value = "hydra.run.dir", cfg.hydra.run.dir
            if runs and not (args.config_dir or args.config_path or args.config_name):
                composed_run[:] = [list(overrides), copy.deepcopy(cfg)]
            _validate(cfg, overrides)
            if runs:
                check_run_paths(cfg)
        if runs:
            _check_output_dir(key, value)
    typed = override_for(key, list(args.overrides))
    return OutputDir(key, str(value), pinned=typed is None or "${" in typed)


def _validate(cfg: DictConfig, overrides: list[str]) -> None:
    try:
        _resolve_task_config(cfg)
        validate(cfg)
        check_config_targets(cfg)
        check_data(cfg)  # a data file read as the run will read it; scikit-learn's sets
    except UnknownKey as error:  # added with `+`: report the override as the user typed it
        typed = override_for(error.key, overrides)
        raise UnknownKey(error.key, error.known, typed, error.plus) from None
    except BadValue as error:
        typed = override_for(error.key, overrides)  # report the value as the user typed it
        if typed is None:
            raise
        raise BadValue(error.key, typed.partition("=")[2], error.allowed) from None
    except BadInput:
        raise
    except Exception as error:  # e.g. an interpolation that does not resolve
        if full_error_requested():
            raise
        raise explain(error, overrides, lambda group: []) from None


def _resolve_task_config(cfg: DictConfig) -> None:
    """Resolve every interpolation of the task's config (not Hydra's own node, whose
    runtime values exist only once a job runs): one that fails must fail here, before a
    dir is made, not as a traceback inside Hydra."""
    from omegaconf.errors import OmegaConfBaseException

    for key in cfg:
        try:
            if key != "hydra" and OmegaConf.is_config(cfg[key]):
                OmegaConf.to_container(cfg[key], resolve=True)
        except OmegaConfBaseException as error:
            where = getattr(error, "full_key", None) or key
            what = shorten(str(error).strip().splitlines()[0], 200)
            raise BadInput(f"cannot resolve {where}: {what}") from None


class _SweepJobs:
    """Iterates over a sweep's jobs (see `_sweep_jobs`); `every_job` is False once it is
    known that the jobs only stand for the sweep's (an Optuna search, another sweeper)."""

    def __init__(self, cfg: DictConfig, overrides: list[str], compose, groups: list[str]):
        self.args = cfg, overrides, compose, groups
        self.every_job = True

    def __iter__(self):
        return _sweep_jobs(*self.args, jobs=self)


def _sweep_jobs(cfg: DictConfig, overrides: list[str], compose, groups: list[str], jobs):
    """Each job's config, composed cheaply: a job that only changes values reuses `cfg`;
    whether its values alone were checked (`_Template.values_pass`): False, the caller
    validates the whole config; and its shape for `SweepPaths.add`: (its group choices,
    the keys it sets otherwise than their first job), or () for a job standing for others."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    for finder in registry.sweep_job_finders:  # e.g. Optuna: jobs that stand for every trial
        found = finder(cfg, overrides)
        if found is not None:
            jobs.every_job = False
            for job in found:
                yield compose(job, run_mode=RunMode.RUN), job, False, ()
            return
    if cfg.hydra.sweeper.get("_target_") not in (BASIC_SWEEPER, TBPIPE_SWEEPER):
        jobs.every_job = False
        yield cfg, overrides, False, ()  # another sweeper has its own grammar: the common part
        return
    parser = OverridesParser.create()
    parsed = parser.parse_overrides(overrides)
    if not any(o.is_sweep_override() for o in parsed):
        yield cfg, overrides, False, ()
        return
    if _job_count(parsed) > EVERY_JOB_LIMIT:  # check each swept value once, not each job
        jobs.every_job = False
        yield from (
            (job_cfg, job, False, ()) for job_cfg, job in _each_value_once(parsed, compose, groups)
        )
        return
    templates: dict[tuple[str, ...], _Template] = {}
    for batch in split_sweep(parsed):
        for job in batch:
            values, structural = [], []
            for line in job:
                override = parsed_override(line)  # shared: the launcher reads it again
                group = override.key_or_group.split("/")[0]
                changes_structure = (
                    override.is_add() or override.is_delete() or override.is_force_add()
                )
                if changes_structure or group in groups or override.package is not None:
                    structural.append(override.input_line)
                else:
                    values.append(override)
            key = tuple(structural)
            template = templates.get(key)
            if template is None:  # the first job of these group choices: validated whole
                template = templates[key] = _Template(compose(job, run_mode=RunMode.RUN), job)
                yield _with_values(template.copy(), values, job), job, False, (key, [])
                continue
            # what sets the job apart from the first: the keys it sets otherwise
            shape = (
                key,
                [o.key_or_group for o in values if o.input_line not in template.first_job],
            )
            # a later job: its values set on the one working copy; checked by its values
            # alone, or, failing that, validated whole in a copy of its own
            job_cfg = _with_values(*template.working_copy(values), job)
            if template.values_pass(job_cfg, values):
                yield job_cfg, job, True, shape
            else:
                yield _with_values(template.copy(), values, job), job, False, shape


def _with_values(job_cfg: DictConfig, values: list, job: list[str]) -> DictConfig:
    """`job_cfg` with each of the job's `values` overrides set, as Hydra's loader sets them."""
    with open_dict(job_cfg):
        for override in values:
            try:
                OmegaConf.update(job_cfg, override.key_or_group, override.value())
            except Exception as error:
                if full_error_requested():
                    raise
                raise explain(_Wrapped(error), job, lambda group: []) from None
    return job_cfg


class _Template:
    """The config of a sweep's first job of one set of group choices, which the caller
    validates whole; every later job is a copy with its own values set.

    A job's values alone are checked (`values_pass`) when the rules of each key it sets
    otherwise than the first job are that key's own (`validate.rules_for`): the rest of
    its config is the template's, already valid. The check only ever says "valid": on
    any doubt (a key with relations, an interpolation beyond `${key}`, a data file read
    with the value, a value that breaks a rule) the job's whole config is validated, so
    its error is the one the whole validation gives, word for word.
    """

    def __init__(self, cfg: DictConfig, job: list[str]):
        #: pickled: unpickling is a copy several times faster than `OmegaConf.create`,
        #: with the same nodes and flags
        self.pickled = pickle.dumps(cfg)
        self.data_read = OmegaConf.select(cfg, "data._target_", default=None) in DATA_READ
        #: {key: the keys whose value is `${key}` in a text}; None: an interpolation the
        #: values of a job could break (a resolver, a relative key): validate whole
        self.referenced_by = _references(cfg)
        self.rules: dict[str, list | None] = {}
        self.first_job = set(job)  # a job's override as the first job's: validated with it
        self.working: DictConfig | None = None  # see `working_copy`
        self.working_keys: list[str] = []
        self.working_lines: list[str | None] = []  # the overrides last set on it

    def copy(self) -> DictConfig:
        return pickle.loads(self.pickled)

    def working_copy(self, values: list) -> tuple[DictConfig, list]:
        """The copy later jobs set their values on, one after another: each job sets the
        same keys (a fresh copy when they differ), and it is used while the job is; and
        the job's values to set on it: those the job before set otherwise (a seed sweep
        sets its seed, not every constant again). Each value is set again where keys nest
        (`a` and `a.b`) or Hydra's own node is set (the preflight sets its job fields)."""
        keys = [override.key_or_group for override in values]
        if self.working is None or keys != self.working_keys:
            self.working, self.working_keys = self.copy(), keys
            self.working_lines = [None] * len(keys)
            if any(nested(key, other) for key in keys for other in keys if key is not other):
                self.working_lines = None  # nested keys: set every value each time
        last, self.working_lines = self.working_lines, None
        if last is not None:
            self.working_lines = [override.input_line for override in values]
            values = [
                override
                for override, line in zip(values, last, strict=True)
                if override.input_line != line or override.key_or_group.startswith("hydra")
            ]
        return self.working, values

    def values_pass(self, job_cfg: DictConfig, values: list) -> bool:
        """Whether every value the job sets, and every value interpolating one, keeps
        its key's own rules (then the job's whole config is valid)."""
        if self.referenced_by is None:
            return False
        for override in values:
            if override.input_line in self.first_job:
                continue
            key, value = override.key_or_group, override.value()
            if isinstance(value, dict | list) or (isinstance(value, str) and "${" in value):
                return False
            if self.data_read and key.startswith("data."):
                return False  # the data file is read again with it (check_data)
            for checked in (key, *self._referencing(key)):
                if not self._passes(job_cfg, checked):
                    return False
        return True

    def _referencing(self, key: str) -> list[str]:
        """The keys whose value interpolates `key`, a node holding it (`${data}`) or a
        key inside it."""
        assert self.referenced_by is not None
        return [
            referencing
            for name, keys in self.referenced_by.items()
            if name == key or key.startswith(f"{name}.") or name.startswith(f"{key}.")
            for referencing in keys
        ]

    def _passes(self, job_cfg: DictConfig, key: str) -> bool:
        if key not in self.rules:
            self.rules[key] = rules_for(job_cfg, key)
        rules = self.rules[key]
        if rules is None:
            return False
        try:
            value = OmegaConf.select(job_cfg, key, throw_on_missing=True)
        except Exception:  # noqa: BLE001  the whole validation says what is wrong
            return False
        return all(rule.accepts(value) for rule in rules)


#: data whose file the preflight reads with the data's values (pipeline/check/datafiles.py)
DATA_READ = (FILE_DATA, SHARDED_FILES, *BUNDLED)
#: `${key}` and `${oc.env:NAME}` (no nested interpolation): what a job's values cannot break
_PLAIN_REFERENCE = re.compile(r"\$\{(\w[\w.]*)\}")
_ENVIRONMENT = re.compile(r"\$\{oc\.env:[^${}]*\}")


def _references(cfg: DictConfig) -> dict[str, list[str]] | None:
    """{key: the task config's keys whose text interpolates `${key}`}, following chains
    (`a: ${b}`, `b: ${c}`: c is referenced by b and a); None when some interpolation is
    anything else (a resolver, a relative key, one nested in another)."""
    direct: dict[str, list[str]] = {}

    def walk(node: Any, path: str) -> bool:
        if isinstance(node, dict):
            return all(walk(value, f"{path}{key}.") for key, value in node.items())
        if isinstance(node, list):
            return all(walk(value, f"{path}{index}.") for index, value in enumerate(node))
        if isinstance(node, str) and "${" in node:
            if "${" in _PLAIN_REFERENCE.sub("", _ENVIRONMENT.sub("", node)):
                return False
            for name in _PLAIN_REFERENCE.findall(node):
                direct.setdefault(name, []).append(path[:-1])
        return True

    task = OmegaConf.to_container(cfg, resolve=False)
    task.pop("hydra", None)
    if not walk(task, ""):
        return None
    found: dict[str, list[str]] = {}
    for name in direct:
        seen, todo = [], list(direct[name])
        while todo:
            key = todo.pop()
            if key not in seen:
                seen.append(key)
                todo += direct.get(key, [])
        found[name] = seen
    return found


#: up to this many jobs a sweep's preflight checks every job's config; above, each value once
EVERY_JOB_LIMIT = 1000


def _job_count(parsed: list) -> int:
    """How many jobs a basic sweep of these overrides has: the product of its value lists."""
    return math.prod(len(list(o.sweep_string_iterator())) for o in parsed if o.is_sweep_override())


def _each_value_once(parsed: list, compose, groups: list[str]):
    """A big sweep's check in O(values), not O(jobs): the jobs that stand for it.

    Every swept value is checked once against its key's rules (`validate.rules_for`),
    with all other keys at their first value; the jobs that put a key at its first, last,
    lowest and highest value are composed and validated whole (relations between keys).
    A key whose rules are not its own (x_low < x_high), a config group or a `+`/`~` key
    has each of its values composed and validated whole.
    """
    from hydra.types import RunMode

    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    sweeps = [o for o in parsed if o.is_sweep_override()]
    lines = {o.input_line: [job[0] for batch in split_sweep([o]) for job in batch] for o in sweeps}
    first = {o.input_line: lines[o.input_line][0] for o in sweeps}
    base_job = [*first.values(), *fixed]
    base = compose(base_job, run_mode=RunMode.RUN)
    yield base, base_job
    for position, override in enumerate(sweeps):
        texts = lines[override.input_line]
        key = override.key_or_group
        structural = override.is_add() or override.is_delete() or override.is_force_add()
        structural |= key.split("/")[0] in groups or override.package is not None
        rules = None if structural else rules_for(base, key)
        if rules is None:
            stand_ins = range(1, len(texts))  # each value in a whole config
        else:
            values = list(override.sweep_iterator())
            for text, value in zip(texts, values, strict=True):
                for rule in rules:
                    if not rule.accepts(value):
                        raise BadValue(key, text.partition("=")[2], rule.text)
            order = sorted(range(len(values)), key=lambda i: _sortable(values[i]))
            stand_ins = sorted({len(values) - 1, order[0], order[-1]} - {0})
        for index in stand_ins:
            job = [*base_job[:position], texts[index], *base_job[position + 1 :]]
            yield compose(job, run_mode=RunMode.RUN), job


def _sortable(value) -> tuple:
    """Numbers by value, anything else after them by its text."""
    return (0, value, "") if is_number(value) else (1, 0, str(value))


def _empty_sweep(overrides: list[str]) -> str:
    """Which sweep override gives no values (a basic sweep's jobs are their product)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for override in OverridesParser.create().parse_overrides(overrides):
        if override.is_sweep_override() and not list(override.sweep_string_iterator()):
            return f"{override.input_line} gives no values"
    return "its sweep overrides give no values"


class _Wrapped(Exception):
    """Give an OmegaConf error the shape of Hydra's (the OmegaConf error as the cause)."""

    def __init__(self, cause: Exception):
        super().__init__(str(cause))
        self.__cause__ = cause


def _check_output_dir(key: str, value: str) -> None:
    """The run (or sweep) directory must be new and creatable; probe without leaving a trace."""
    path = Path(value)
    found = [marker for marker in RUN_MARKERS if (path / marker).exists()]
    if path.is_dir():  # event files in the dir or in its writer subdirs (train/, test/)
        found += [f"{p.relative_to(path)}" for p in path.glob("*tfevents*")][:1]
        found += [f"{p.relative_to(path)}" for p in path.glob("*/*tfevents*")][:1]
    if found:
        raise BadInput(
            f"{key}={value} already holds an earlier run ({found[0]}); "
            "tbpipe never writes into it: choose a new directory"
        )
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "it is a file" if existing == path else f"{existing} is a file"
        raise BadInput(f"cannot write {key}={value}: {where}, not a directory")
    try:
        probe = tempfile.mkdtemp(prefix=".tbpipe-probe-", dir=existing)
        os.rmdir(probe)
    except OSError as error:
        reason = os.strerror(error.errno or errno.EACCES)
        where = f"{existing} is not writable ({reason})"
        raise BadInput(f"cannot write {key}={value}: {where}") from None
