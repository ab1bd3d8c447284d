"""tbpipe from Python (e.g. a notebook): run an experiment or a sweep, read runs back.

The overrides are the command line's, word for word, and pass the same checks first
(`pipeline.check.preflight`), so a typo is the same one-line `BadInput`:

    from pipeline import api
    result = api.run_experiment("model=mlp", "data.noise_std=0.5", run_dir="runs/mlp")
    result.metrics["k"], result.run_dir
    sweep = api.run_sweep("data.noise_std=0.01,0.1,1", "trainer.steps=300")
    api.read_runs(sweep.sweep_dir)            # plain dicts; api.scalars_frame(...) for pandas
    api.resume_run("runs/mlp")                # a stopped run, on from its latest checkpoint

`run_experiment` composes the config with Hydra's compose API and trains in this process:
same config and seed as `tbpipe`, bit-identical series. `run_sweep` runs `tbpipe -m` in a
subprocess, because Hydra's compose API runs no launcher, sweeper or callback: that way a
sweep from Python has the command line's layout (job dirs, multirun.yaml, summary.csv), its
launchers (joblib, submitit) and sweepers (Optuna), and a crashing job cannot take the
notebook down.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

import pipeline.sweeps  # noqa: F401  the sweep checks the preflight runs, the job dir resolver
from pipeline.check import compose as check_compose
from pipeline.check.claim import claim_dir
from pipeline.check.compose import path_override
from pipeline.check.errors import BadInput
from pipeline.check.preflight import check_command_line
from pipeline.job import save_hydra_files
from pipeline.runinfo import METRICS_FILE, read_metrics, start_run
from pipeline.sweeps.naming import label_of


@dataclass(frozen=True)
class RunResult:
    """Where a run wrote its event files and how it ended (the metrics.json dict)."""

    run_dir: Path
    metrics: dict[str, Any]


@dataclass(frozen=True)
class SweepResult:
    """A sweep's root dir (point TensorBoard here), each job's result and tbpipe's output."""

    sweep_dir: Path
    jobs: list[RunResult]
    output: str


def run_experiment(
    *overrides: str,
    run_dir: str | os.PathLike | None = None,
    config_dir: str | os.PathLike | None = None,
) -> RunResult:
    """Train one experiment in this process, as `tbpipe [--config-dir D] <overrides>` would.

    `run_dir` defaults to the config's `hydra.run.dir` (outputs/<date>/<time>); `config_dir`
    is the user's own config dir, searched after tbpipe's (like `--config-dir`).
    """
    from pipeline import app

    argv = _argv(overrides, config_dir, run_dir and path_override("hydra.run.dir", run_dir))
    check_command_line(argv)  # the command line's one-line errors, before TF is imported
    cfg = compose_config(*argv[_skip(config_dir) :], config_dir=config_dir)
    run_dir = Path(OmegaConf.select(cfg, "hydra.run.dir"))
    claim_dir(run_dir, "hydra.run.dir")  # created now, for this run alone
    start_run(run_dir, cfg.trainer.steps)  # metrics.json says running from now on
    task_overrides = [o for o in overrides if not _is_hydra_override(o)]
    with open_dict(cfg):
        hydra_cfg = cfg.pop("hydra")
    save_hydra_files(run_dir, cfg, hydra_cfg, task_overrides)
    command = shlex.join(["tbpipe", *argv[: _skip(config_dir)], *task_overrides])
    # the plots' titles name the run's settings, as the command line's do (pipeline/job.py)
    label = label_of(task_overrides, hydra_cfg.job.config.override_dirname.exclude_keys)
    metrics = app.run(
        cfg, run_dir, command=command, overrides=task_overrides, checked=True, label=label
    )
    return RunResult(run_dir=run_dir, metrics=metrics)


def run_sweep(
    *overrides: str,
    sweep_dir: str | os.PathLike | None = None,
    config_dir: str | os.PathLike | None = None,
    timeout: float | None = None,
) -> SweepResult:
    """Run `tbpipe -m <overrides>` in a subprocess; return each job's run dir and metrics.

    Jobs run one after another unless the overrides choose another launcher
    (`hydra/launcher=joblib`). Raises `BadInput` for a bad override (nothing is run) and
    `RuntimeError` if the sweep stops; a job that diverges or fails does not stop the others.
    Your own modules must be importable by the new process (PYTHONPATH or the current dir).
    """
    argv = _argv(overrides, config_dir, sweep_dir and path_override("hydra.sweep.dir", sweep_dir))
    check_command_line(["-m", *argv])
    if sweep_dir is None:
        sweep_dir = _resolved_sweep_dir(argv[_skip(config_dir) :], config_dir)
        argv.append(path_override("hydra.sweep.dir", sweep_dir))
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "-m", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise RuntimeError(f"tbpipe -m stopped (exit {done.returncode}): {last}")
    jobs = [RunResult(path, read_metrics(path)) for path in _job_dirs(Path(sweep_dir))]
    return SweepResult(sweep_dir=Path(sweep_dir), jobs=jobs, output=done.stdout)


def resume_run(run_dir: str | os.PathLike) -> RunResult:
    """Go on with a stopped run in this process, as `tbpipe resume <run dir>` does: from
    its latest checkpoint to its planned end, with the settings it recorded; a completed
    or diverged run is left as it is. The same checks first, the same one-line `BadInput`:
    a run still running, or one whose settings today's configs no longer compose to (or
    that ran with other versions), is refused with nothing changed. A sweep is resumed
    with `tbpipe resume <sweep dir>` (its launcher relaunches its jobs).
    """
    from pipeline import app
    from pipeline.check.claim import claim_dir
    from pipeline.readback.status import recorded_overrides
    from pipeline.sweeps.resume import plan_run, refuse_if_owned

    run_dir = Path(run_dir)
    if not (run_dir / ".hydra" / "config.yaml").is_file():
        raise BadInput(
            f"cannot resume {run_dir}: it holds no run (.hydra/config.yaml); "
            "a sweep dir is resumed with `tbpipe resume`"
        )
    refuse_if_owned(run_dir)
    if plan_run(run_dir) is None:  # completed or diverged (said on stdout)
        return RunResult(run_dir=run_dir, metrics=read_metrics(run_dir))
    claim = claim_dir(run_dir, "hydra.run.dir", resuming=True)
    try:
        # what it recorded is what today's configs compose to: `plan_run` checked that
        cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
        hydra_cfg = OmegaConf.load(run_dir / ".hydra" / "hydra.yaml").hydra
        task = recorded_overrides(run_dir)
        label = label_of(task, hydra_cfg.job.config.override_dirname.exclude_keys)
        metrics = app.run(
            cfg, run_dir, command=shlex.join(["tbpipe", *task]), overrides=task,
            checked=True, resume=True, label=label,
        )  # fmt: skip
    finally:
        claim.release()
    return RunResult(run_dir=run_dir, metrics=metrics)


def compose_config(*overrides: str, config_dir: str | os.PathLike | None = None) -> DictConfig:
    """The config `tbpipe <overrides>` runs, with its `hydra` node (Hydra's compose API)."""
    return check_compose.compose_config(overrides, config_dir=config_dir)


# -- reading runs back ------------------------------------------------------------------
def read_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """One run as plain data: metrics, overrides and every scalar series.

    `scalars` maps `<writer>/<tag>` (e.g. `train/k`, `test/loss`) to [(step, value), ...],
    read from the event files by TensorBoard's rules and its Event proto, as its reader
    gives them (pipeline/readback/scalars.py), without importing TensorFlow: quiet, and
    well under a second.
    """
    from pipeline.readback.scalars import load_scalar_runs

    run_dir = Path(run_dir)
    scalars: dict[str, list[tuple[int, float]]] = {}
    for name, run in load_scalar_runs(run_dir):
        for tag in run.tags("scalars"):
            scalars[tag if name == "." else f"{name}/{tag}"] = run.scalars(tag)
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    overrides = (
        OmegaConf.to_object(OmegaConf.load(overrides_file)) if overrides_file.exists() else []
    )
    metrics = read_metrics(run_dir) if (run_dir / METRICS_FILE).exists() else {}
    return {"run_dir": run_dir, "metrics": metrics, "overrides": overrides, "scalars": scalars}


def read_runs(logdir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every tbpipe run under `logdir` (a run dir, a sweep dir, outputs/), as `read_run`."""
    root = Path(logdir)
    return [read_run(path.parent) for path in sorted(root.rglob(METRICS_FILE))]


def settings_table(
    sweep_dir: str | os.PathLike, group_by: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """A sweep's jobs grouped by setting (default: every swept key except `seed`), one dict
    per setting: the setting's keys, n, failed, mean/std/95% interval of k, |k - k_true|,
    train and test loss, k_stderr; as `tbpipe report DIR --group-by` and
    summary_by_setting.csv give it."""
    from pipeline.readback.groups import default_group_keys, flat, group_rows
    from pipeline.readback.jobs import read_sweep

    rows = read_sweep(Path(sweep_dir))
    keys = list(group_by) if group_by is not None else default_group_keys(rows)
    return [flat(group, keys) for group in group_rows(rows, keys)]


def scalars_table(logdir: str | os.PathLike) -> list[dict[str, Any]]:
    """One row per scalar point under `logdir`: run (relative dir), tag, step, value."""
    root = Path(logdir)
    rows = []
    for run in read_runs(root):
        name = run["run_dir"].relative_to(root).as_posix()
        for tag, points in run["scalars"].items():
            rows.extend({"run": name, "tag": tag, "step": s, "value": v} for s, v in points)
    return rows


def scalars_frame(logdir: str | os.PathLike) -> Any:
    """`scalars_table` as a pandas DataFrame (pandas is optional: not a tbpipe dependency)."""
    try:
        import pandas
    except ImportError:
        raise ImportError(
            "scalars_frame needs pandas (pip install pandas); "
            "scalars_table gives the same rows as plain dicts"
        ) from None
    return pandas.DataFrame(scalars_table(logdir), columns=["run", "tag", "step", "value"])


# -- helpers ----------------------------------------------------------------------------
def _argv(overrides: Sequence[str], config_dir: Any, extra: Any) -> list[str]:
    head = ["--config-dir", str(Path(config_dir).resolve())] if config_dir is not None else []
    return [*head, *overrides, *([str(extra)] if extra else [])]


def _skip(config_dir: Any) -> int:
    """How many leading argv words are `--config-dir D`."""
    return 0 if config_dir is None else 2


def _is_hydra_override(override: str) -> bool:
    """Hydra's own settings (hydra.run.dir, hydra/launcher=...) are not the task's."""
    return re.split(r"[./=@]", override.lstrip("+~"), maxsplit=1)[0] == "hydra"


def _resolved_sweep_dir(overrides: Sequence[str], config_dir: Any) -> str:
    """The config's `hydra.sweep.dir`, resolved now (e.g. multirun/<date>/<time>)."""
    cfg = check_compose.compose_config(overrides, multirun=True, config_dir=config_dir)
    return str(OmegaConf.select(cfg, "hydra.sweep.dir"))


def _job_dirs(sweep_dir: Path) -> list[Path]:
    """Job dirs in job order: `<num>_<overrides>` (pipeline/sweeps/naming.py names them)."""
    from pipeline.readback.status import job_number

    def number(path: Path) -> tuple[int, str]:
        num = job_number(path.name)
        return (sys.maxsize if num is None else num, path.name)

    return sorted((p.parent for p in sweep_dir.glob(f"*/{METRICS_FILE}")), key=number)


__all__ = [
    "BadInput",
    "RunResult",
    "SweepResult",
    "compose_config",
    "read_run",
    "read_runs",
    "resume_run",
    "run_experiment",
    "run_sweep",
    "scalars_frame",
    "scalars_table",
    "settings_table",
]
