"""The config diff: the keys whose values differ across a sweep's jobs, or between two.

Each job's `.hydra/config.yaml` (the config it ran with, saved by Hydra) is flattened to
dotted keys (`optimizer.learning_rate`), read with readback's YAML loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.board_plugin.digest import job_dirs
from pipeline.readback.status import load_yaml


def flattened(config: Any, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`; lists stay values (`model.units=[64, 64]`)."""
    if not isinstance(config, dict):
        return {prefix: config}
    flat: dict[str, Any] = {}
    for key, value in config.items():
        flat.update(flattened(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def job_configs(logdir: Path) -> dict[str, dict[str, Any]]:
    """run (the job dir relative to the logdir) -> its flattened config."""
    configs = {}
    for job in job_dirs(logdir):
        run = job.relative_to(logdir).as_posix() if job != Path(logdir) else "."
        try:
            configs[run] = flattened(load_yaml(job / ".hydra" / "config.yaml") or {})
        except (OSError, ValueError, AttributeError):  # a damaged or missing config: no column
            configs[run] = {}
    return configs


def config_diff(logdir: Path, a: str | None = None, b: str | None = None) -> dict[str, Any]:
    """{"runs": [...], "across": [{key, values: [distinct values]}], "between": [...]}:
    the keys that differ across all jobs, and, when two runs `a` and `b` are named, the
    keys where those two differ with both values."""
    configs = job_configs(Path(logdir))
    keys = sorted({key for config in configs.values() for key in config})
    across = []
    for key in keys:
        values = {repr(config.get(key)): config.get(key) for config in configs.values()}
        if len(values) > 1:
            across.append({"key": key, "values": [_shown(v) for v in values.values()]})
    between = None
    if a in configs and b in configs:
        between = [
            {"key": key, "a": _shown(configs[a].get(key)), "b": _shown(configs[b].get(key))}
            for key in keys
            if configs[a].get(key) != configs[b].get(key)
        ]
    return {"runs": sorted(configs), "across": across, "a": a, "b": b, "between": between}


def _shown(value: Any) -> str:
    return "(not set)" if value is None else str(value)
