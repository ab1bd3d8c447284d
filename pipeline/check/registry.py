"""Checks that later stages add to the preflight, so `check/` never imports them.

A stage that knows something about a command line the preflight cannot (an Optuna search
needs its sweeper installed and has trials to check) registers a function here when it is
imported; the preflight runs whatever is registered. Hooks must not import TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

#: (overrides) -> None; raise `BadInput` when the command line cannot run as given
OverrideCheck = Callable[[Sequence[str]], None]
#: (composed cfg, overrides) -> the overrides of jobs that stand for the sweep, or None
#: when the hook does not know this kind of sweep
SweepJobs = Callable[[Any, Sequence[str]], "list[list[str]] | None"]

#: (composed cfg of a sweep) -> None; raise `BadInput` when this machine cannot run it
SweepCheck = Callable[[Any], None]

#: (a sweep job's composed cfg) -> {job number -> its dir's name in the sweep dir}, as a
#: `hydra.sweep.subdir` of one text names it, for every job of that config's shape; or
#: None when the hook cannot say (then each job's subdir is resolved)
JobDirNames = Callable[[Any], "Callable[[int], str] | None"]

override_checks: list[OverrideCheck] = []
sweep_job_finders: list[SweepJobs] = []
sweep_checks: list[SweepCheck] = []
#: {the text of `hydra.sweep.subdir`: how it names each job's dir} (pipeline/check/paths.py)
job_dir_names: dict[str, JobDirNames] = {}


def check_overrides(check: OverrideCheck) -> OverrideCheck:
    """Register `check` to run on every command line before anything is composed."""
    if check not in override_checks:
        override_checks.append(check)
    return check


def find_sweep_jobs(finder: SweepJobs) -> SweepJobs:
    """Register `finder`: jobs to compose and validate for a sweep of its kind."""
    if finder not in sweep_job_finders:
        sweep_job_finders.append(finder)
    return finder


def check_sweep(check: SweepCheck) -> SweepCheck:
    """Register `check` to run on a sweep's composed config, before its dir is created."""
    if check not in sweep_checks:
        sweep_checks.append(check)
    return check
