"""Searches: an Optuna sweep (`tbpipe -m hparams_search=lr_optuna`) checked before it runs,
and its best and failed trials marked once it ends.

Hydra's Optuna sweeper turns `hydra.sweeper.params` (e.g. `tag(log, interval(1e-4, 1))`)
into trials only after TensorFlow is loaded, and a bad search space then ends in a
traceback. `trial_jobs` gives the few jobs that stand for every trial (each end of each
interval, each choice) so the preflight check composes and validates them first, and
`mark_trials` reads the sweeper's `optimization_results.yaml` to tell which job is the best
trial. Light on purpose: neither Optuna nor TensorFlow is imported here.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf

from pipeline.check import registry
from pipeline.check.errors import BadInput, BadValue
from pipeline.check.schema import is_integer, is_number
from pipeline.runinfo import COMPLETED, FAILED

OPTUNA_SWEEPER = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
#: What the Optuna sweeper writes at the sweep root when the study ends.
RESULTS_FILE = "optimization_results.yaml"
#: Columns summary.csv gets after the usual ones when the sweep was a search.
SEARCH_COLUMNS = ("objective", "trial")
INSTALL_HINT = "pip install 'tbpipe[search]'"


@registry.check_overrides
def require_sweeper(overrides: Sequence[str]) -> None:
    """A search asked for without the Optuna sweeper installed: say what to install."""
    asked = [o for o in overrides if o.lstrip("+~").startswith("hparams_search=")]
    asked = [o for o in asked if not o.endswith(("=null", "=grid"))]  # grid: no search
    if asked and importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None:
        raise BadInput(f"{asked[0]} needs Hydra's Optuna sweeper, not installed: {INSTALL_HINT}")


def is_search(cfg: DictConfig) -> bool:
    """True when the composed config sweeps with Hydra's Optuna sweeper."""
    return OmegaConf.select(cfg, "hydra.sweeper._target_", default=None) == OPTUNA_SWEEPER


@registry.find_sweep_jobs
def search_jobs(cfg: DictConfig, overrides: Sequence[str]) -> list[list[str]] | None:
    """For the preflight: an Optuna search's stand-in jobs; None for any other sweep."""
    return trial_jobs(cfg, overrides) if is_search(cfg) else None


def trial_jobs(cfg: DictConfig, overrides: Sequence[str]) -> list[list[str]]:
    """The overrides of a few jobs that stand for every trial the search can run.

    Like the sweeper, the command line's overrides come after `hydra.sweeper.params` and
    win; the ones that do not sweep are fixed in every trial. Each dimension takes each of
    its ends (or choices) in turn while the others stay at their first, so a key that does
    not exist, a group option that does not exist or a value out of range shows up here.
    """
    for key in ("n_trials", "n_jobs"):  # 0 trials ends in Optuna's "No trials are completed"
        value = OmegaConf.select(cfg, f"hydra.sweeper.{key}", default=None)
        if not is_integer(value) or value < 1:
            raise BadValue(f"hydra.sweeper.{key}", value, "a whole number >= 1")
    params = OmegaConf.select(cfg, "hydra.sweeper.params", default=None) or {}
    given = [f"{key}={value}" for key, value in params.items()] + list(overrides)
    parser = OverridesParser.create()
    dimensions: dict[str, list[Any]] = {}
    fixed: dict[str, str] = {}
    for override in parser.parse_overrides(given):
        key = override.get_key_element()  # keeps a `+` or `~` prefix, as the sweeper does
        dimensions.pop(key, None)
        fixed.pop(key, None)
        if override.is_sweep_override():
            dimensions[key] = _values_to_try(override)
        else:
            fixed[key] = override.input_line
    first = {key: values[0] for key, values in dimensions.items()}
    jobs = [[*(f"{k}={v}" for k, v in first.items()), *fixed.values()]]
    for key, values in dimensions.items():
        for value in values[1:]:
            trial = {**first, key: value}
            jobs.append([*(f"{k}={v}" for k, v in trial.items()), *fixed.values()])
    return jobs


def _values_to_try(override: Override) -> list[Any]:
    """Both ends of an interval or range, every choice; a log scale needs a low end above 0."""
    sweep = override.value()
    text = override.input_line
    if override.is_interval_sweep():
        low, high = sweep.start, sweep.end
        if not low < high:
            raise BadInput(f"bad search space {text}: low must be below high")
        if "log" in sweep.tags and low <= 0:
            raise BadInput(f"bad search space {text}: a log scale needs a low end above 0")
        return [low, high]
    values = list(override.sweep_iterator())
    if not values:
        raise BadInput(f"bad search space {text}: nothing to choose from")
    return values[:: max(len(values) - 1, 1)] if override.is_range_sweep() else values


#: what a search optimises when the config's `objective` names nothing
DEFAULT_OBJECTIVE = "test/loss"


def objective(metrics: Mapping[str, Any], name: str | None = None, maximize: bool = False) -> float:
    """What a job returns to the sweeper: a completed run's final value of the scalar
    `name` (`<writer>/<tag>` as in metrics.json's `final`: test/loss, test/accuracy); the
    worst value (+inf, or -inf when the sweeper maximises) for a run that diverged, failed
    or has no such value."""
    name = name or DEFAULT_OBJECTIVE
    value = (metrics.get("final") or {}).get(name)
    if value is None and name == DEFAULT_OBJECTIVE:  # a run saved before `final` existed
        value = metrics.get("test_loss")
    if metrics.get("status") != COMPLETED or value is None:
        return worst(maximize)
    return value


def worst(maximize: bool) -> float:
    """The objective of a job that gave none: last, whichever way the search goes."""
    return -math.inf if maximize else math.inf


def mark_trials(
    rows: Sequence[dict[str, Any]], sweep_dir: Path, name: str | None = None
) -> dict[str, Any] | None:
    """For a search, give each summary row its objective and its mark; return the best row.

    The objective is what the task function returned to Optuna: the final test loss of a
    completed trial, +inf for a trial that diverged or failed (marked `failed`). The best
    trial is the one the sweeper names in optimization_results.yaml; on a tie in params and
    value the first such job, as Optuna itself picks. Not a search: rows stay as they are.
    """
    path = Path(sweep_dir) / RESULTS_FILE
    if not path.exists():
        return None
    results = OmegaConf.to_container(OmegaConf.load(path))
    for row in rows:
        row["objective"] = objective(row, name)
        row["trial"] = COMPLETED if math.isfinite(row["objective"]) else FAILED
    best_params, best_value = results.get("best_params"), results.get("best_value")
    if best_params is None or best_value is None:  # a multi-objective study: no single best
        return None
    best = next(
        (
            row
            for row in rows
            if row["trial"] == COMPLETED
            and _same(row["objective"], best_value)
            and all(_same(row["swept"].get(key), value) for key, value in best_params.items())
        ),
        None,
    )
    if best is not None:
        best.update(trial="best", searched=best_params)
    return best


def _same(a: Any, b: Any) -> bool:
    numbers = is_number(a) and is_number(b)
    return math.isclose(a, b, rel_tol=1e-9) if numbers else a == b


def best_line(best: dict[str, Any], name: str | None = None) -> str:
    """One line for the end of a search: which trial won, with what, and where its logs are."""
    # imported here: tbpipe's preflight loads this module, and readback.groups loads numpy
    from pipeline.readback.groups import setting_label

    setting = setting_label(best["searched"])
    return (
        f"best trial: job {best['job']} ({name or DEFAULT_OBJECTIVE} {best['objective']:.6g}) "
        f"{setting} "
        f"| logs: {best['dir']} | {RESULTS_FILE}"
    )
