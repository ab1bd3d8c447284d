"""What a run leaves beside its event files: metrics.json, written atomically."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.json"


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
