"""Check a `tbpipe` command line before Hydra runs it and before TensorFlow is imported.

Hydra reports its own composition errors in five or six lines, and only after it has
decided on an output directory; range errors would only show once TensorFlow (seconds
to import) is up. Here the overrides are composed with Hydra's own config loader, the
result is checked against the schema, and the output directory is checked, so a typo
costs well under a second, prints one line and leaves nothing on disk.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from pipeline.check import registry
from pipeline.check.compose import CONFIG_NAME, searchpath_override, tbpipe_configs
from pipeline.check.errors import BadInput, BadValue, full_error_requested
from pipeline.check.hints import UnknownKey
from pipeline.check.schema import TBPIPE_SWEEPER
from pipeline.check.validate import explain, override_for, validate
from pipeline.compat import (
    BASIC_SWEEPER,
    compose_with_hydra,
    hydra_args_parser,
    hydra_config_loader,
    split_sweep,
)

# Hydra flags that print a composed config and run nothing: the overrides are checked as
# for a run (a typo is one line, not Hydra's traceback), the output dir is not.
_PRINTS_CONFIG = {"--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c"}
# Flags that compose nothing from the overrides: Hydra handles these on its own.
_NOT_A_RUN = {"--version", "--shell-completion", "-sc", "--experimental-rerun"}
#: files that mark a directory as an earlier run (or sweep) that must not be written into
RUN_MARKERS = ("metrics.json", ".hydra", "multirun.yaml")


def check_command_line(argv: Sequence[str]) -> None:
    """Raise `BadInput` (one line) if the command `tbpipe <argv>` cannot run as given."""
    if _NOT_A_RUN.intersection(arg.split("=")[0] for arg in argv):
        return
    args = hydra_args_parser().parse_args(list(argv))
    if args.config_path is not None and not os.path.isabs(args.config_path):
        return  # Hydra resolves a relative --config-path its own way; let it report
    multirun = bool(args.multirun) or "hydra.mode=MULTIRUN" in args.overrides
    runs = not _PRINTS_CONFIG.intersection(arg.split("=")[0] for arg in argv)
    try:
        _check_configs(args, multirun, runs)
    except BadInput:
        raise
    except Exception as error:
        if full_error_requested():
            raise
        first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise BadInput(first) from None


def _check_configs(args, multirun: bool, runs: bool = True) -> None:
    from hydra.types import RunMode

    overrides = list(args.overrides)
    for check in registry.override_checks:  # e.g. a search without its sweeper installed
        check(overrides)
    if args.config_dir is not None:
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
            if runs:
                _check_output_dir("hydra.sweep.dir", cfg.hydra.sweep.dir)
            for job_cfg, job in _sweep_jobs(cfg, overrides, compose, loader.list_groups("")):
                _validate(job_cfg, job)
        else:
            _validate(cfg, overrides)
            if runs:
                _check_output_dir("hydra.run.dir", cfg.hydra.run.dir)


def _validate(cfg: DictConfig, overrides: list[str]) -> None:
    try:
        validate(cfg)
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


def _sweep_jobs(cfg: DictConfig, overrides: list[str], compose, groups: list[str]):
    """Each job's config, composed cheaply: a job that only changes values reuses `cfg`."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    for finder in registry.sweep_job_finders:  # e.g. Optuna: jobs that stand for every trial
        jobs = finder(cfg, overrides)
        if jobs is not None:
            for job in jobs:
                yield compose(job, run_mode=RunMode.RUN), job
            return
    if cfg.hydra.sweeper.get("_target_") not in (BASIC_SWEEPER, TBPIPE_SWEEPER):
        yield cfg, overrides  # another sweeper has its own grammar: check the common part
        return
    parser = OverridesParser.create()
    parsed = parser.parse_overrides(overrides)
    if not any(o.is_sweep_override() for o in parsed):
        yield cfg, overrides
        return
    composed: dict[tuple[str, ...], DictConfig] = {}
    for batch in split_sweep(parsed):
        for job in batch:
            values, structural = [], []
            for override in parser.parse_overrides(job):
                group = override.key_or_group.split("/")[0]
                changes_structure = (
                    override.is_add() or override.is_delete() or override.is_force_add()
                )
                if changes_structure or group in groups or override.package is not None:
                    structural.append(override.input_line)
                else:
                    values.append(override)
            key = tuple(structural)
            if key not in composed:
                composed[key] = compose(job, run_mode=RunMode.RUN)
            job_cfg = OmegaConf.create(composed[key])  # a copy that keeps the schema types
            for override in values:
                try:
                    with open_dict(job_cfg):
                        OmegaConf.update(job_cfg, override.key_or_group, override.value())
                except Exception as error:
                    if full_error_requested():
                        raise
                    raise explain(_Wrapped(error), job, lambda group: []) from None
            yield job_cfg, job


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
