"""What a run leaves beside its event files: metrics.json (atomic) and run.json (how to redo it)."""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.json"

# -- how a run ended: the `status` in metrics.json (docs/ERRORS.md lists the exit codes) --
RUNNING = "running"  # written as soon as the run starts; replaced when it ends
COMPLETED = "completed"
DIVERGED = "diverged"  # the loss became NaN or Inf
INTERRUPTED = "interrupted"  # SIGINT / SIGTERM
FAILED = "failed"  # an error inside the run, or a job that left no metrics
ENDINGS = (COMPLETED, DIVERGED, INTERRUPTED, FAILED)

#: what metrics.json holds, in this order: final statistics, progress, time, ending
METRIC_KEYS = (
    "k",
    "k_true",
    "k_error",
    "train_loss",
    "test_loss",
    "steps",
    "steps_planned",
    "seconds",
    "train_seconds",
    "status",
    "reason",
)


def strict_json_value(value: Any) -> Any:
    """NaN and infinities become null: the JSON we write is strict (allow_nan=False)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> Path:
    """Write metrics.json through a temporary file and a rename, so it is never half-written."""
    path = Path(run_dir) / METRICS_FILE
    tmp = path.with_suffix(".json.tmp")
    clean = {key: strict_json_value(value) for key, value in metrics.items()}
    tmp.write_text(json.dumps(clean, indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return path


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """The metrics of a finished (or failed) run."""
    return json.loads((Path(run_dir) / METRICS_FILE).read_text())


RUN_FILE = "run.json"
#: The packages whose versions decide a run's numbers (distribution names).
PACKAGES = ("tensorflow", "tensorboard", "hydra-core", "omegaconf", "numpy")


def versions() -> dict[str, str]:
    """Python and the packages that shape a run's numbers, without importing them."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def write_run_info(
    run_dir: Path, command: str, overrides: Sequence[str] = (), config: Any = None
) -> Path:
    """run.json: what reproduces this run: command, overrides, resolved config, versions.

    `rerun` runs the saved config (.hydra/) again, checked, into a new run dir.
    """
    run_dir = Path(run_dir)
    info = {
        "command": command,
        "overrides": list(overrides),
        "rerun": shlex.join(["tbpipe", "rerun", str(run_dir.resolve())]),
        "versions": versions(),
        "platform": platform.platform(),
        "config": config,
    }
    path = run_dir / RUN_FILE
    path.write_text(json.dumps(info, indent=2) + "\n")
    return path


def record_unfinished(run_dir: Path, status: str, reason: str) -> str:
    """Mark a run that stopped early (`failed`, `interrupted`) unless it already says how it ended.

    Called when an exception escaped training: metrics.json may be missing or still say
    "running". Returns the reason metrics.json gives, so the message and the file agree.
    """
    run_dir = Path(run_dir)
    try:
        metrics = read_metrics(run_dir)
    except (OSError, ValueError):
        metrics = {}
    if metrics.get("status") not in (None, RUNNING):
        return str(metrics.get("reason", reason))
    ended = {key: metrics.get(key) for key in METRIC_KEYS[:7]}  # statistics and progress
    ended.update(seconds=None, status=status, reason=" ".join(str(reason).split()))
    run_dir.mkdir(parents=True, exist_ok=True)
    write_metrics(run_dir, ended)
    return ended["reason"]
