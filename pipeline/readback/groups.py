"""Many seeds, one answer: a sweep's jobs grouped by setting, with mean, spread and a 95% interval.

One seed per setting cannot say how the estimate of k degrades with noise; the same
setting run with several seeds can. Jobs are grouped by every swept key except `seed`
(or the keys the user names), and each group gets, per metric, n, mean, standard
deviation and a 95% confidence interval of the mean (Student's t). Jobs that did not
complete are counted in `failed` and left out of every statistic. Pure Python: the sweep
summary, `tbpipe report --group-by` and `pipeline.api` use the same code.
"""

from __future__ import annotations

import csv
import functools
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from pipeline.check.schema import is_number
from pipeline.check.text_table import Column, sweep_number, text_table
from pipeline.readback.jobs import column_of, final_columns, main_metric_of_rows, swept_keys
from pipeline.runinfo import COMPLETED

#: the setting column of a table grouped by no key
ALL_JOBS = "(all jobs)"
#: what varies between replicates of one setting, never a grouping key by default
SEED_KEYS = ("seed",)
#: the metrics summarised per setting, as metrics.json names them (k and k_error where the
#: task estimates k), then the task's other scalars (`test/accuracy`): `grouped_metrics`
GROUPED_METRICS = ("k", "k_error", "train_loss", "test_loss")


def grouped_metrics(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The metrics a sweep's groups summarise: metrics.json's that its jobs have, then the
    task's other scalars."""
    named = [metric for metric in GROUPED_METRICS if any(metric in row for row in rows)]
    return [*named, *final_columns(rows)]


#: the statistics each metric gets, as column suffixes
STATISTICS = ("mean", "std", "ci95_low", "ci95_high")
GROUPED_FILE = "summary_by_setting.csv"


def varying_keys(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Swept keys that take more than one value across the jobs."""
    return [
        key for key in swept_keys(rows) if len({repr(row["swept"].get(key)) for row in rows}) > 1
    ]


def seeds_vary(rows: Sequence[dict[str, Any]]) -> bool:
    """True when some setting was run with several seeds: then the grouped table tells more."""
    return any(key in SEED_KEYS for key in varying_keys(rows))


def default_group_keys(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Every swept key that varies, except the seed."""
    return [key for key in varying_keys(rows) if key not in SEED_KEYS]


@functools.lru_cache(maxsize=1024)
def t_quantile_975(df: int) -> float:
    """Student's t 97.5% quantile with `df` degrees of freedom (two-sided 95% interval).

    SciPy's `stdtrit`, the function `scipy.stats.t.ppf` calls (the same float): importing
    scipy.special alone takes a fraction of what scipy.stats takes, and a sweep's groups
    mostly share one count of seeds, so each count is asked once."""
    from scipy.special import stdtrit  # imported only when an interval is computed

    return float(stdtrit(df, 0.975))


def describe(values: Sequence[float]) -> dict[str, float | None]:
    """mean, std (n - 1), and the 95% interval of the mean; None where n is too small."""
    n = len(values)
    if n == 0:
        return dict.fromkeys(STATISTICS)
    mean = statistics.fmean(values)
    if n == 1:
        return {"mean": mean, "std": None, "ci95_low": None, "ci95_high": None}
    std = statistics.stdev(values)
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half}


def setting_of(row: dict[str, Any], keys: Sequence[str]) -> tuple:
    return tuple(row["swept"].get(key) for key in keys)


def group_rows(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """One dict per setting: its values, n, failed, jobs and each metric's statistics.

    Settings come in the order of their values (numbers ascending), so a table or plot
    reads along the swept axis. `k_stderr` is the mean over the group's completed jobs
    of the theoretical standard error of the slope (each seed draws its own x).
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    settings: dict[str, tuple] = {}
    for row in rows:  # keyed by text: a setting may hold a list (model.units=[64,64])
        setting = setting_of(row, keys)
        settings.setdefault(repr(setting), setting)
        groups.setdefault(repr(setting), []).append(row)
    metrics = grouped_metrics(rows)
    main = column_of(main_metric_of_rows(rows))
    out = []
    for text in sorted(groups, key=lambda text: _order(settings[text])):
        members, setting = groups[text], settings[text]
        done = [r for r in members if r.get("status") == COMPLETED and is_number(r.get(main))]
        group: dict[str, Any] = {
            "setting": dict(zip(keys, setting, strict=True)),
            "n": len(done),
            "failed": len(members) - len(done),
            "jobs": [r["job"] for r in members],
            "metrics": metrics,
            "main_metric": main,
        }
        for metric in metrics:
            values = [float(r[metric]) for r in done if is_number(r.get(metric))]
            for name, value in describe(values).items():
                group[f"{metric}_{name}"] = value
        stderrs = [r["k_stderr"] for r in done if is_number(r.get("k_stderr"))]
        group["k_stderr"] = statistics.fmean(stderrs) if stderrs else None
        out.append(group)
    return out


def _order(setting: tuple) -> tuple:
    """Numbers by value, lists of numbers by their values (`model.units=[16]` before
    `[256]`), anything else by its text, None last."""
    return tuple(_value_order(value) for value in setting)


def _value_order(value: Any) -> tuple:
    if is_number(value):
        return (0, value, "")
    if isinstance(value, (list, tuple)) and all(is_number(item) for item in value):
        return (1, tuple(value), "")
    return (2 if value is not None else 3, 0, str(value))


def columns(keys: Sequence[str], metrics: Sequence[str] = GROUPED_METRICS) -> list[str]:
    """The grouped table's columns: the setting, counts, each metric's statistics."""
    stats = [f"{metric}_{name}" for metric in metrics for name in STATISTICS]
    return [*keys, "n", "failed", *stats, *(["k_stderr"] if "k" in metrics else [])]


def metrics_of_groups(groups: Sequence[dict[str, Any]]) -> list[str]:
    """The metrics the groups summarise (the tutorial's when there is no group)."""
    return list(groups[0]["metrics"]) if groups else list(GROUPED_METRICS)


def flat(group: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """A group as one flat record (the CSV/JSON row): setting keys first."""
    names = columns(keys, group["metrics"])
    return {**group["setting"], **{c: group.get(c) for c in names if c not in keys}}


def write_grouped_csv(groups: Sequence[dict[str, Any]], keys: Sequence[str], path: Path) -> Path:
    """summary_by_setting.csv: one row per setting (empty cells where n is too small)."""
    with open(path, "w", newline="") as stream:
        write_grouped_rows(groups, keys, stream)
    return Path(path)


def write_grouped_rows(
    groups: Sequence[dict[str, Any]], keys: Sequence[str], stream: TextIO, end: str = "\r\n"
) -> None:
    """The groups as CSV rows under their columns' names (summary_by_setting.csv, and
    `tbpipe report --group-by --csv` with `end` "\\n"); a missing value is an empty cell."""
    names = columns(keys, metrics_of_groups(groups))
    writer = csv.DictWriter(stream, fieldnames=names, lineterminator=end)
    writer.writeheader()
    writer.writerows(flat(group, keys) for group in groups)


def grouped_table(groups: Sequence[dict[str, Any]], keys: Sequence[str]) -> str:
    """The table printed at the end of a sweep over settings x seeds: k's statistics for
    the tutorial's line, else the main metric's."""
    if groups and "k" not in groups[0]["metrics"]:
        return metric_table(groups)
    columns = [
        Column("n", ">", 3),
        Column("failed", ">", 6, gap=1),
        Column("k mean", ">", 9),
        Column("k std", ">", 9, gap=1),
        Column("95% interval of k", ">", 21),
        Column("|k-k_true|", ">", 10),
        Column("std.err", ">", 9),
        Column("setting"),
    ]
    rows = [
        [
            *_counts(g),
            sweep_number(g["k_mean"]),
            sweep_number(g["k_std"]),
            _interval(g["k_ci95_low"], g["k_ci95_high"]),
            sweep_number(g["k_error_mean"]),
            sweep_number(g["k_stderr"]),
            setting_label(g["setting"], ALL_JOBS),
        ]
        for g in groups
    ]
    return text_table(columns, rows)


def metric_table(groups: Sequence[dict[str, Any]]) -> str:
    """The grouped table of a task without k: its main metric's mean, std and interval."""
    main = groups[0]["main_metric"]
    columns = [
        Column("n", ">", 3),
        Column("failed", ">", 6, gap=1),
        Column(f"{main} mean", ">", 20),
        Column("std", ">", 9, gap=1),
        Column("95% interval", ">", 21),
        Column("setting"),
    ]
    rows = [
        [
            *_counts(g),
            sweep_number(g.get(f"{main}_mean")),
            sweep_number(g.get(f"{main}_std")),
            _interval(g.get(f"{main}_ci95_low"), g.get(f"{main}_ci95_high")),
            setting_label(g["setting"], ALL_JOBS),
        ]
        for g in groups
    ]
    return text_table(columns, rows)


def _counts(group: dict[str, Any]) -> list[str]:
    return [str(group["n"]), str(group["failed"])]


def _interval(low: float | None, high: float | None) -> str:
    return "-" if low is None else f"[{low:.4f}, {high:.4f}]"


def setting_label(setting: Mapping[str, Any], none: str = "", sep: str = " ") -> str:
    """A setting as people read it in a table, a plot or the tbpipe tab, keys whole
    (`data.noise_std=0.1 model=mlp`); `none` for a setting of no keys. A folder name has
    its own shell-safe form (pipeline/sweeps/naming.py)."""
    return sep.join(f"{key}={value}" for key, value in setting.items()) or none
