"""Images side by side by setting, and the distribution-reading guide of one histogram.

Both read event files through readback (`runs.load_run`, `histogram_guide.read_histogram`),
the same code as `tbpipe report --histograms`. A run is named as TensorBoard names it,
its folder relative to the logdir (`3_noise_std=1,seed=0/train`), and must lie inside it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pipeline.board_plugin.digest import WRITERS
from pipeline.board_plugin.sweep_view import label, read_jobs
from pipeline.readback.groups import default_group_keys
from pipeline.readback.histogram_guide import DISTRIBUTION_PERCENTILES, read_histogram
from pipeline.readback.runs import HISTOGRAMS, IMAGES, load_run, share_between

#: a normal's shares inside +-0.5 and +-1.5 standard deviations (erf(z / sqrt 2))
NORMAL_WITHIN = {"0.5": math.erf(0.5 / math.sqrt(2)), "1.5": math.erf(1.5 / math.sqrt(2))}


def run_path(logdir: Path, run: str | None) -> Path | None:
    """The folder of TensorBoard run `run`, or None when it is not a folder inside logdir."""
    if not run:
        return None
    root = Path(logdir).resolve()
    path = (root / run).resolve()
    return path if path.is_dir() and (path == root or root in path.parents) else None


def images_by_setting(logdir: Path, tag: str | None = None) -> dict[str, Any]:
    """The image tags (`<writer>/<tag>`) and, for `tag` (default: the first), each
    setting's runs holding it at their last step, settings in the table's order."""
    rows = read_jobs(Path(logdir))
    keys = default_group_keys(rows)
    by_setting: dict[str, list] = {}
    tags: dict[str, None] = {}
    for row in rows:
        setting = label({key: row["swept"].get(key) for key in keys})
        by_setting.setdefault(setting, [])
        for writer in WRITERS:
            path = row["path"] / writer
            if not path.is_dir():
                continue
            images = load_run(path, {IMAGES}, ends_only=True)
            for name in images.tags(IMAGES):
                tags[f"{writer}/{name}"] = None
                step = images.images(name)[-1][0]
                by_setting[setting].append(
                    {"run": f"{row['run']}/{writer}", "tag": name, "step": step,
                     "status": row.get("status")}
                )  # fmt: skip
    chosen = tag if tag in tags else next(iter(tags), None)
    settings = [
        {
            "label": setting,
            "images": [i for i in shown if f"{i['run'].rsplit('/', 1)[1]}/{i['tag']}" == chosen],
        }
        for setting, shown in by_setting.items()
    ]
    return {"tags": list(tags), "tag": chosen, "settings": settings}


def image_bytes(logdir: Path, run: str, tag: str) -> tuple[str, bytes] | None:
    """(content type, bytes) of the last image of `tag` in `run`, or None."""
    path = run_path(logdir, run)
    if path is None:
        return None
    images = load_run(path, {IMAGES}, ends_only=True)
    if tag not in images.tags(IMAGES):
        return None
    data = images.images(tag)[-1][1]
    return ("image/png" if data.startswith(b"\x89PNG") else "image/jpeg"), data


def histogram_guide(
    logdir: Path, run: str | None, tag: str | None = None, step: str | None = None
) -> dict[str, Any]:
    """For `run`: its histogram tags and steps; for a tag and step (default: the last),
    the percentile edges DISTRIBUTIONS draws beside a normal's with the same mean and
    std, and the shares inside +-0.5 and +-1.5 std (and inside (-0.5, 0.5), (-1.5, 1.5))."""
    runs = [f"{row['run']}/{w}" for row in read_jobs(Path(logdir)) for w in WRITERS]
    path = run_path(logdir, run) if run else None
    if path is None:
        return {"runs": runs, "run": None, "tags": [], "reading": None}
    data = load_run(path, {HISTOGRAMS})
    tags = {name: [s for s, _ in data.histograms(name)] for name in data.tags(HISTOGRAMS)}
    chosen = tag if tag in tags else next(iter(tags), None)
    out: dict[str, Any] = {"runs": runs, "run": run, "tags": tags, "tag": chosen, "reading": None}
    if chosen is None:
        return out
    series = dict(data.histograms(chosen))
    at = int(step) if step and step.lstrip("-").isdigit() and int(step) in series else max(series)
    reading = read_histogram(series[at], run=run, tag=chosen, step=at)
    from scipy.stats import norm  # the normal's quantiles at the same percentiles

    edges = [
        {
            "percentile": p,
            "value": reading.percentiles.get(f"{p:g}"),
            "normal": reading.mean + reading.std * float(norm.ppf(p / 100)),
        }
        for p in DISTRIBUTION_PERCENTILES
    ]
    buckets, mean, std = series[at], reading.mean, reading.std
    out["step"] = at
    out["reading"] = {
        "count": reading.count,
        "mean": mean,
        "std": std,
        "edges": [{k: _finite(v) for k, v in edge.items()} for edge in edges],
        "within_std": {
            "0.5": share_between(buckets, mean - 0.5 * std, mean + 0.5 * std),
            "1.5": share_between(buckets, mean - 1.5 * std, mean + 1.5 * std),
        },
        "within_units": {"0.5": reading.within_half, "1.5": reading.within_one_and_half},
        "normal_within": NORMAL_WITHIN,
    }
    return out


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
