"""A sweep's jobs read back from their dirs: one row per job, whatever state it is in.

Each job dir holds `.hydra/` (its number, overrides and config, written by Hydra) and
metrics.json (written by the run). Reading them needs no TensorFlow, so the sweep summary,
`tbpipe report` and `tbpipe status` all read jobs the same way.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import AnyNode, DictConfig, OmegaConf, ValueNode

from pipeline.readback.status import SWEEP_FILE, job_number, load_yaml
from pipeline.runinfo import FAILED, METRIC_KEYS, RUNNING, environment_values, redacted
from pipeline.sinks.settings import hparams_of, hparams_of_values

log = logging.getLogger(__name__)

#: metrics.json's `final` scalars that its own keys carry already (the tutorial's columns)
NAMED_IN_METRICS = {
    "train/k": "k",
    "train/k/error": "k_error",
    "train/loss": "train_loss",
    "test/loss": "test_loss",
}
#: Columns of summary.csv after the swept keys: metrics.json's (the slope's standard error
#: beside k's error; each other scalar of `final` after the losses: `final_columns`)
RESULT_COLUMNS = (
    *METRIC_KEYS[:3],
    "k_stderr",
    *(key for key in METRIC_KEYS[3:] if key not in ("final", "main_metric")),
)


def final_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The task's scalars that metrics.json's own keys do not carry (`test/accuracy`), in
    the order the jobs give them."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(n for n in row.get("final") or {} if n not in NAMED_IN_METRICS))
    return list(names)


def result_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """summary.csv's result columns: the tutorial's, with the task's other scalars after
    the losses."""
    at = RESULT_COLUMNS.index("test_loss") + 1
    columns = [*RESULT_COLUMNS[:at], *final_columns(rows), *RESULT_COLUMNS[at:]]
    if rows and not any("k" in row for row in rows):  # no job estimated k (not line_fit)
        columns = [c for c in columns if c not in ("k", "k_true", "k_error", "k_stderr")]
    return columns


def main_metric_of_rows(rows: Sequence[dict[str, Any]]) -> str:
    """The scalar the sweep's jobs are judged by (metrics.json's `main_metric`)."""
    return next((row["main_metric"] for row in rows if row.get("main_metric")), "train/k/error")


def column_of(name: str) -> str:
    """The row key of a `final` scalar: `k_error` for `train/k/error`, else its own name."""
    return NAMED_IN_METRICS.get(name, name)


def slope_stderr(job_config: DictConfig) -> float | None:
    """Standard error of the least-squares slope through 0, sigma / sqrt(sum x^2).

    Computed from the job's own training x (regenerated from its saved config), so it is
    the best |k - k_true| one can expect at that noise level. None when the data are not
    the tutorial's linear data.
    """
    data_cfg = job_config.get("data")
    if data_cfg is None or "noise_std" not in data_cfg:
        return None
    try:
        return stderr_of(resolved_values(data_cfg))
    except Exception as error:  # a job's config that no longer builds: no reference line
        log.warning("no standard error for %s: %s", data_cfg, error)
        return None


def stderr_of(data: Mapping[str, Any]) -> float:
    """sigma / sqrt(sum x^2) of the training x that a data node's plain values (its
    `_target_` among them) draw; raises what building the data raises."""
    from pipeline.check.targets import check_target

    params = copy.deepcopy(dict(data))
    data_class = check_target("data", params)  # meets the data contract: nothing else runs
    params.pop("_target_")
    x = data_class(**params).generate().x_train
    return float(params["noise_std"]) / math.sqrt(float((x.astype("float64") ** 2).sum()))


#: an interpolation that only names another key (`${seed}`), looked up from the root
KEY_REFERENCE = re.compile(r"\$\{([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\}")
#: what `resolved_values` takes a referenced value to be without OmegaConf's resolution
PLAIN_NUMBERS = (bool, int, float)
_NOT_FOUND = object()


def resolved_values(node: DictConfig) -> dict[str, Any]:
    """`OmegaConf.to_container(node, resolve=True)` of a node of values, such as a job's
    `data`. Its usual interpolation, an untyped value naming another key (`seed: ${seed}`),
    takes that key's number as looked up from the root, which is what OmegaConf resolves
    it to, without running its grammar parser once per job; anything else (a nested or
    typed node, any other interpolation, a reference to text or to a node) is resolved by
    OmegaConf, with its errors."""
    try:
        values = {}
        for key in node:
            child = node._get_node(key)
            if not isinstance(child, ValueNode):
                raise LookupError(key)
            value = child._value()
            if isinstance(value, str) and "${" in value:
                found = KEY_REFERENCE.fullmatch(value) if type(child) is AnyNode else None
                if found is None:
                    raise LookupError(key)
                root = node._get_root()
                value = OmegaConf.select(root, found[1], default=_NOT_FOUND, throw_on_missing=True)
                if type(value) not in PLAIN_NUMBERS:
                    raise LookupError(key)
            values[key] = value
        return values
    except Exception:  # noqa: BLE001  OmegaConf's own resolution: its result, or its error
        return OmegaConf.to_container(node, resolve=True)


#: an override setting a dotted key to a plain decimal number (`seed=17`,
#: `data.noise_std=0.01`), the shape of most of a sweep's: the grammar's INT and FLOAT
#: tokens of these forms, which Hydra converts with int() and float()
PLAIN_NUMBER_OVERRIDE = re.compile(
    r"(?P<key>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)="
    r"(?P<value>[+-]?(?:0|[1-9][0-9]*)(?P<point>\.[0-9]+)?)"
)


@functools.lru_cache(maxsize=65536)
def parsed_setting(override: str) -> tuple[str, Any] | None:
    """(key, value) an override sets, None for a deletion; a sweep's jobs share most of
    their overrides, and Hydra's grammar parser is slow: a key set to a plain number is
    read as Hydra reads it (int or float) without it, anything else through it."""
    plain = PLAIN_NUMBER_OVERRIDE.fullmatch(override)
    if plain is not None:
        convert = float if plain["point"] else int
        return plain["key"], convert(plain["value"])
    (parsed,) = OverridesParser.create().parse_overrides([override])
    return None if parsed.is_delete() else (parsed.key_or_group, parsed.value())


def config_columns(job_config: DictConfig, overrides: Sequence[str]) -> dict[str, Any]:
    """What a summary row takes from a job's whole config (the task's config, without the
    `hydra` node): `k_stderr` and `hparams`, values read from the environment redacted."""
    columns = {"k_stderr": slope_stderr(job_config), "hparams": hparams_of(job_config, overrides)}
    if "oc.env" in repr(job_config):  # a value read from the environment is not shown
        columns["hparams"] = redacted(columns["hparams"], environment_values(job_config))
    return columns


def resolved_columns(
    resolved: Mapping[str, Any], overrides: Sequence[str]
) -> dict[str, Any] | None:
    """`config_columns` of a job whose task config, resolved into plain dicts, lists and
    values, is `resolved` and holds no `oc.env` (nothing to redact), read without making it
    a DictConfig (the stacked launcher's jobs); None where that could differ (then
    `config_columns` reads the config itself, with its warnings)."""
    hparams = hparams_of_values(dict(resolved), overrides)
    data = resolved.get("data")
    if hparams is None or not isinstance(data, (dict, type(None))):
        return None
    if data is None or "noise_std" not in data:
        return {"k_stderr": None, "hparams": hparams}
    try:
        stderr = stderr_of(data)
    except Exception:  # noqa: BLE001  `slope_stderr` says why, in its own words
        return None
    return {"k_stderr": stderr, "hparams": hparams}


def read_job(
    job_dir: Path,
    number_in_name: bool = False,
    config: bool = True,
    known: dict[str, Any] | None = None,
    overrides: Sequence[str] | None = None,
    config_free: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One summary row: a job's number, overrides, final metrics and how it ended.

    `number_in_name`: the dir's name starts with the job's number (tbpipe names job dirs
    so), read from there instead of from `.hydra/hydra.yaml` (~6 KB of YAML a job).
    `config=False` leaves out what needs the job's whole config (`k_stderr`, `hparams`):
    building it costs most of the time a job takes to read. `known`: those columns as the
    process that ran the job computed them from the config it saved (`config_columns`);
    `overrides`: the job's overrides as that process saved them in `.hydra/overrides.yaml`
    (Hydra's `JobReturn.overrides`), not read back. `config_free`, if given, gets the row
    as `config=False` gives it, before the config's columns are added."""
    hydra_dir = job_dir / ".hydra"
    num = job_number(job_dir.name) if number_in_name else None
    if num is None:
        num = load_yaml(hydra_dir / "hydra.yaml")["hydra"]["job"]["num"]
        num = num if str(num).isdigit() else -1  # a single run (`???`): no job number
    if overrides is None:
        overrides = load_yaml(hydra_dir / "overrides.yaml") or []
    overrides = [str(o) for o in overrides]
    row: dict[str, Any] = {
        "job": int(num),
        "dir": job_dir.name,
        "overrides": " ".join(overrides),
    }
    settings = [setting for o in overrides if (setting := parsed_setting(o)) is not None]
    row["swept"] = {key: copy.copy(value) for key, value in settings}  # the cache keeps its own
    metrics_path = job_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    row.update({key: metrics.get(key) for key in RESULT_COLUMNS if key in metrics})
    final = metrics.get("final") or {}
    row.update({name: value for name, value in final.items() if name not in NAMED_IN_METRICS})
    row["final"] = final
    row["main_metric"] = metrics.get("main_metric")
    if not metrics:
        row.update(status=FAILED, reason="the job wrote no metrics.json")
    elif row.get("status") == RUNNING:
        row.update(status=FAILED, reason=metrics.get("reason") or "the job never finished")
    if config_free is not None:
        config_free.update(row)
    if known is not None:
        row.update(known)
    elif config:
        saved = OmegaConf.create(load_yaml(hydra_dir / "config.yaml"))
        row.update(config_columns(saved, overrides))
    return row


def read_sweep(
    sweep_dir: Path,
    known: Mapping[str, dict[str, Any]] | None = None,
    overrides: Mapping[str, Sequence[str]] | None = None,
    config_free: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Every job of a sweep, in job order (the directories Hydra gave a .hydra/ folder).

    `known`: job dir (absolute) -> its `config_columns`, for the jobs whose configs the
    sweep's process held (Hydra's `on_job_end`): their saved config is not read back;
    `overrides`: job dir (absolute) -> the overrides that process saved for it, likewise.
    `config_free`, if given, gets each job's row as `config=False` reads it, under its
    dir's name (the job's run name under the sweep dir), for every job read whole."""
    jobs = [path.parent.parent for path in Path(sweep_dir).glob("*/.hydra/overrides.yaml")]
    named = numbers_in_names(Path(sweep_dir))
    known, overrides = known or {}, overrides or {}
    rows = []
    for job in jobs:
        path = os.path.abspath(job)
        given = {"known": known.get(path), "overrides": overrides.get(path)}
        free: dict[str, Any] = {}
        rows.append(read_job_or_say_why(job, named, config_free=free, **given))
        if config_free is not None and free:
            config_free[job.name] = free
    return sorted(rows, key=lambda row: row["job"])


#: hydra.sweep.subdir as conf/config.yaml sets it: `<num>_<setting>` (sweeps/naming.py)
TBPIPE_JOB_DIRS = "${tbpipe.job_dir:${hydra.job.num}}"


def numbers_in_names(sweep_dir: Path) -> bool:
    """Whether the sweep named its job dirs tbpipe's way, each starting with its number
    (as its multirun.yaml records); a user's `hydra.sweep.subdir` may name them otherwise."""
    try:
        recorded = load_yaml(sweep_dir / SWEEP_FILE)
        return recorded["hydra"]["sweep"]["subdir"] == TBPIPE_JOB_DIRS
    except Exception:  # no multirun.yaml (a copied sweep), or not Hydra's: read each hydra.yaml
        return False


def read_job_or_say_why(
    job_dir: Path,
    number_in_name: bool = False,
    config: bool = True,
    known: dict[str, Any] | None = None,
    overrides: Sequence[str] | None = None,
    config_free: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A job whose files cannot be read is a failed row, not the end of the summary."""
    try:
        return read_job(job_dir, number_in_name, config, known, overrides, config_free)
    except Exception as error:
        num = job_number(job_dir.name)
        return {
            "job": -1 if num is None else num,
            "dir": job_dir.name,
            "overrides": "(unreadable)",
            "swept": {},
            "status": FAILED,
            "reason": " ".join(f"unreadable job dir: {type(error).__name__}: {error}".split()),
        }


def swept_keys(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Keys overridden in any job, in the order the jobs give them."""
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row["swept"]))
    return list(keys)
