"""The settings of a sweep (or of a folder of single runs): table rows, curves, failures.

Jobs are read as `tbpipe report --group-by` reads them (readback.jobs, readback.groups):
seeds pooled, each final metric's mean and 95% interval over the completed jobs. The
curves are each setting's mean over its completed jobs at every step, with the three
bands the page offers (95% interval, +-1 std, min-max); diverged and failed jobs are left
out of both and listed with their reason.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.board_plugin.digest import WRITERS, job_dirs, run_name
from pipeline.readback.groups import (
    default_group_keys,
    group_rows,
    setting_label,
    t_quantile_975,
)
from pipeline.readback.jobs import main_metric_of_rows, numbers_in_names, read_job_or_say_why
from pipeline.readback.runs import find_runs
from pipeline.readback.scalars import read_scalars
from pipeline.runinfo import COMPLETED, DIVERGED

#: points a curve sends to the page at most (evenly spaced steps, the last one kept)
MAX_POINTS = 300


def read_jobs(logdir: Path) -> list[dict[str, Any]]:
    """One row per job of the logdir (`read_job_row`), in the page's order."""
    return [read_job_row(job, Path(logdir)) for job in job_dirs(logdir)]


def read_job_row(job: Path, logdir: Path) -> dict[str, Any]:
    """A job's readback row (what the table needs: no config, no standard error), with
    `run`: its folder relative to the logdir, which names it on the page, and `path`."""
    row = read_job_or_say_why(job, number_in_name=_numbered(job.parent), config=False)
    row["run"] = run_name(job, Path(logdir))
    row["path"] = job
    return row


@functools.lru_cache(maxsize=64)
def _numbered(sweep_dir: Path) -> bool:
    """Whether tbpipe named the sweep's job dirs (their number first): read once a sweep."""
    return numbers_in_names(sweep_dir)


def label(setting: dict[str, Any]) -> str:
    """A setting as the page names it: `data.noise_std=0.1 model=mlp`."""
    return setting_label(setting, "(all runs)")


def sweep_view(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The table's rows (seeds pooled) and the jobs left out, with their reasons."""
    keys = default_group_keys(rows)
    groups = group_rows(rows, keys)
    members = _members(rows, keys)
    settings, failures = [], []
    for group in groups:
        jobs = members[label(group["setting"])]
        done = [r for r in jobs if r.get("status") == COMPLETED]
        diverged = [r for r in jobs if r.get("status") == DIVERGED]
        failed = [r for r in jobs if r not in done and r not in diverged]
        for row in [*diverged, *failed]:
            failures.append(
                {
                    "setting": label(group["setting"]),
                    "run": row["run"],
                    "status": row.get("status") or "failed",
                    "reason": row.get("reason") or "(no reason recorded)",
                }
            )
        settings.append(
            {
                "label": label(group["setting"]),
                "setting": {key: _plain(value) for key, value in group["setting"].items()},
                "jobs": len(jobs),
                "n": group["n"],
                "completed": len(done),
                "failed": len(failed),
                "diverged": len(diverged),
                "stats": {
                    metric: {
                        name: _finite(group.get(f"{metric}_{name}"))
                        for name in ("mean", "std", "ci95_low", "ci95_high")
                    }
                    for metric in group["metrics"]
                },
            }
        )
    return {
        "keys": keys,
        "metrics": groups[0]["metrics"] if groups else [],
        "main_metric": groups[0]["main_metric"] if groups else None,
        "main_tag": main_metric_of_rows(rows),  # its chart: `train/k/error`
        "settings": settings,
        "failures": failures,
    }


def completed_by_setting(rows: Sequence[dict[str, Any]]) -> dict[str, list]:
    """Setting label -> its completed jobs (the ones its curves pool), in the table's order."""
    members = _members(rows, default_group_keys(rows))
    return {
        setting: [row for row in jobs if row.get("status") == COMPLETED]
        for setting, jobs in members.items()
    }


def _members(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, list]:
    members: dict[str, list] = {}
    for row in rows:
        setting = {key: row["swept"].get(key) for key in keys}
        members.setdefault(label(setting), []).append(row)
    return members


def curves(
    job_paths: Sequence[Path], series: SweepSeries | None = None
) -> dict[str, dict[str, list]]:
    """`<writer>/<tag>` -> the mean over the jobs at each step, with its bands. One run's
    series is held at a time: a setting of 200 seeds of 20,000 steps costs its sums only.
    `series`: the sweep's jobs' scalars as its end has them (held by the launcher, or read
    once for the seed-mean runs); without it each job's event files are read here."""
    bands: dict[str, Band] = {}
    for path in job_paths:
        found = series.of(path) if series is not None else read_job_series(path, WRITERS)
        for writer in WRITERS:
            for tag, (steps, values) in found.get(writer, {}).items():
                bands.setdefault(f"{writer}/{tag}", Band()).add_series(steps, values)
    return {tag: bands[tag].edges() for tag in sorted(bands)}


#: a job's scalars as a sweep's end takes them: run (`train`, `test`) -> tag -> (its steps
#: ascending, each step's last value), numpy arrays (int64, float32 or float64)
JobSeries = dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]


def read_job_series(job_dir: Path, writers: Sequence[str] | None = None) -> JobSeries:
    """Every scalar of a job's runs (`writers` only, if given; never the job root's HParams
    session) read from its event files, a step written twice taken with its last value."""
    job_dir = Path(job_dir)
    if writers is None:
        runs = [(name, path) for name, path in find_runs(job_dir) if name != "."]
    else:
        runs = [(name, job_dir / name) for name in writers if (job_dir / name).is_dir()]
    out: JobSeries = {}
    for name, path in runs:
        found = read_scalars(path).series  # scalars only, not the whole accumulator
        if found:
            out[name] = {tag: last_per_step(points) for tag, points in found.items()}
    return out


def last_per_step(points: Sequence[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Steps ascending and each step's last value, as numpy arrays (int64, float64)."""
    steps = np.fromiter((step for step, _ in points), dtype=np.int64, count=len(points))
    values = np.fromiter((value for _, value in points), dtype=np.float64, count=len(points))
    return _last_of_each_step(steps, values)


def _last_of_each_step(steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each step once, ascending, with the value written last for it (as a reader keeps)."""
    # the last occurrence of each step: the first one in the reversed arrays
    unique, first = np.unique(steps[::-1], return_index=True)
    return unique, values[::-1][first]


def written_series(steps: np.ndarray, values: dict[str, np.ndarray]) -> JobSeries:
    """A job's scalars as its launcher wrote them (`<writer>/<tag>` -> one value per step of
    `steps`, pipeline/sweeps/stacked_write.Scalars), in the form read_job_series gives."""
    steps = np.array(steps, dtype=np.int64)  # a copy: the launcher may reuse its arrays
    ascending = bool((steps[1:] > steps[:-1]).all())  # each step once, in order (the rule)
    out: JobSeries = {}
    for name, column in values.items():
        writer, _, tag = name.partition("/")
        if ascending:  # what _last_of_each_step gives, without sorting the steps again
            out.setdefault(writer, {})[tag] = (steps, np.array(column))
        else:
            out.setdefault(writer, {})[tag] = _last_of_each_step(steps, np.asarray(column))
    return out


class SweepSeries:
    """Every job's scalars for what a sweep's end computes from them: its seed-mean runs
    (pipeline/sweeps/replicates.py) and the tab's curves (the digest).

    Where the launcher held a job's values (`hold`: the stacked launcher writes them from
    its arrays) they are taken as they are, and the job's event files are not read;
    otherwise a job's files are read once, and kept for the second reader while the sweep's
    read series fit in `KEPT_BYTES` (past that, a job is read again). The values are what
    the event files hold: a float32 written is read back as the same float32.
    """

    #: bytes of read series kept for the second reader: a sweep small enough for the digest
    #: to take its curves at its end (digest.CURVES_AT_SWEEP_END of event files) fits
    KEPT_BYTES = 64 * 2**20

    def __init__(self, held: dict[str, JobSeries] | None = None) -> None:
        self.held: dict[str, JobSeries] = {}
        self.read: dict[str, JobSeries] = {}
        self.kept = 0
        self.reads = 0  # how many jobs' event files were read (tests/test_sweep_series.py)
        for job_dir, series in (held or {}).items():
            self.hold(job_dir, series)

    def hold(self, job_dir: str | Path, series: JobSeries) -> None:
        """A job's values as its launcher wrote them: its files need not be read."""
        self.held[_key(job_dir)] = series

    def of(self, job_dir: str | Path) -> JobSeries:
        """The job's scalars: held, kept from an earlier reading, or read now."""
        key = _key(job_dir)
        found = self.held.get(key)
        if found is None:
            found = self.read.get(key)
        if found is None:
            found = read_job_series(Path(job_dir))
            self.reads += 1
            size = sum(s.nbytes + v.nbytes for tags in found.values() for s, v in tags.values())
            if self.kept + size <= self.KEPT_BYTES:
                self.read[key] = found
                self.kept += size
        return found


def _key(job_dir: str | Path) -> str:
    """One spelling of a job dir, whoever names it (the launcher, summary.csv's rows)."""
    return os.path.abspath(job_dir)


class Band:
    """A tag's runs summed step by step (Welford's running mean and sum of squared
    deviations, the minimum and maximum), one run at a time; a value that is not finite
    counts as missing. A step written twice counts with its last value, as a chart shows it."""

    def __init__(self) -> None:
        self.steps = np.zeros(0, dtype=np.int64)
        self.n, self.mean, self.m2, self.low, self.high = (np.zeros(0) for _ in range(5))

    def add_series(self, steps: np.ndarray, values: np.ndarray) -> None:
        """One run's steps (ascending, each once) and values (`last_per_step`)."""
        values = np.asarray(values, dtype=np.float64)
        if not np.array_equal(steps, self.steps):
            self._widen(steps)
        at = np.searchsorted(self.steps, steps)
        taken = np.isfinite(values)
        at, values = at[taken], values[taken]
        self.n[at] += 1
        delta = values - self.mean[at]
        self.mean[at] += delta / self.n[at]
        self.m2[at] += delta * (values - self.mean[at])
        self.low[at] = np.fmin(self.low[at], values)
        self.high[at] = np.fmax(self.high[at], values)

    def _widen(self, steps: np.ndarray) -> None:
        """Make room for steps no run before had (NaN: no run has a value there yet)."""
        union = np.union1d(self.steps, steps)
        if len(union) == len(self.steps):
            return
        at = np.searchsorted(union, self.steps)
        for name, empty in (("n", 0), ("mean", 0), ("m2", 0), ("low", np.nan), ("high", np.nan)):
            wider = np.full(len(union), empty, dtype=np.float64)
            wider[at] = getattr(self, name)
            setattr(self, name, wider)
        self.steps = union

    def edges(self) -> dict[str, list]:
        """Steps (at most MAX_POINTS, evenly spaced, the last kept), n, the mean and the edges
        of the 95% interval of the mean, of +-1 std and of min-max, at the steps any run has."""
        chosen = np.arange(len(self.steps))
        if len(chosen) > MAX_POINTS:
            stride = math.ceil(len(chosen) / MAX_POINTS)
            chosen = np.append(chosen[:-1:stride], chosen[-1])
        chosen = chosen[self.n[chosen] > 0]
        n, mean = self.n[chosen], self.mean[chosen]
        with np.errstate(invalid="ignore", divide="ignore"):  # one run at a step: no std, 0
            std = np.where(n > 1, np.sqrt(np.maximum(self.m2[chosen], 0) / (n - 1)), 0.0)
            counts, at = np.unique(n, return_inverse=True)  # each count's quantile once
            t = np.array([t_quantile_975(int(k) - 1) if k > 1 else 0.0 for k in counts])[at]
            half = np.where(n > 1, t * std / np.sqrt(n), 0.0)
        return {
            "step": self.steps[chosen].tolist(),
            "n": n.astype(int).tolist(),
            "mean": mean.tolist(),
            "ci_low": (mean - half).tolist(),
            "ci_high": (mean + half).tolist(),
            "std_low": (mean - std).tolist(),
            "std_high": (mean + std).tolist(),
            "min": self.low[chosen].tolist(),
            "max": self.high[chosen].tolist(),
        }


def _finite(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def _plain(value: Any) -> Any:
    """A setting's value as JSON can carry it (Hydra gives lists, strings, numbers)."""
    return (
        value if isinstance(value, (int, float, str, bool, list)) or value is None else str(value)
    )


def runs_stamp(logdir: Path) -> tuple:
    """What changes when a run is added, ends or writes its heartbeat: the job dirs and
    their metrics.json times. A view computed under the same stamp is still true."""
    stamp = []
    for job in job_dirs(logdir):
        try:
            stamp.append((str(job), (job / "metrics.json").stat().st_mtime_ns))
        except OSError:  # not started yet
            stamp.append((str(job), None))
    return tuple(stamp)
