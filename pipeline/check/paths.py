"""Every path a run writes lies inside the run's own new directory; checked before anything is.

A run writes its dir, Hydra's saved config (`hydra.output_subdir`), its log file
(`hydra.job_logging`) and its two event dirs (`writer.train`, `writer.test`); a sweep job
writes the same inside `hydra.sweep.dir/hydra.sweep.subdir`. Each of these is an override
away from `../earlier-run`, which would add events to another run or overwrite its
metrics.json and saved config. Here each path is resolved (symlinks followed, `..`
folded) and must lie inside the dir it belongs to; a sweep's jobs must get dirs of their
own (pipeline/check/sweep_paths.py). Imports no TensorFlow.
"""

from __future__ import annotations

import os
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from pipeline.check.errors import BadInput, shorten
from pipeline.compat import overrides_dirname


def resolved(path: str | os.PathLike) -> str:
    """The absolute path with symlinks of its existing part followed and `..` folded."""
    return os.path.realpath(os.path.abspath(path))


def inside(path: str, folder: str, *, strictly: bool = True) -> bool:
    """Whether resolved `path` lies inside resolved `folder` (or is it, unless strictly)."""
    if path == folder:
        return not strictly
    return os.path.commonpath([path, folder]) == folder


def output_dir(key: str, value: Any) -> str:
    """A run or sweep dir value, refused when empty (that would be the current dir)."""
    if value is None or not str(value).strip():
        raise BadInput(
            f"bad value {key}={'' if value is None else value}: must be a directory path "
            "(empty would mean the current directory, which tbpipe never writes into)"
        )
    return resolved(str(value))


def check_run_paths(cfg: DictConfig) -> None:
    """A single run: everything it writes lies inside `hydra.run.dir`."""
    run_dir = output_dir("hydra.run.dir", cfg.hydra.run.dir)
    check_job_paths(cfg, run_dir)


def job_dir_of(job_cfg: DictConfig, overrides: list[str], num: int, sweep_dir: str) -> str:
    """Where job `num` of a sweep writes, as Hydra's launchers compute it."""
    with read_write(job_cfg), open_dict(job_cfg):
        job_cfg.hydra.job.num = num
        job_cfg.hydra.job.id = str(num)
        job_cfg.hydra.job.override_dirname = overrides_dirname(overrides, job_cfg)
        subdir = OmegaConf.select(job_cfg, "hydra.sweep.subdir")
    if subdir is None or not str(subdir).strip():
        raise BadInput(
            f"bad value hydra.sweep.subdir={'' if subdir is None else subdir}: must name "
            "each job's dir inside the sweep dir"
        )
    job_dir = resolved(os.path.join(sweep_dir, str(subdir)))
    if not inside(job_dir, sweep_dir):
        raise BadInput(
            f"bad value hydra.sweep.subdir={shorten(subdir)}: job {num} would write into "
            f"{job_dir}, outside the sweep dir {sweep_dir}; a job's dir must lie inside it"
        )
    return job_dir


def check_job_paths(cfg: DictConfig, job_dir: str) -> None:
    """Saved config, log files and event dirs of one job lie inside its `job_dir`."""
    subdir = OmegaConf.select(cfg, "hydra.output_subdir")
    if subdir is not None:
        _must_be_inside("hydra.output_subdir", subdir, job_dir, "the saved config")
    with read_write(cfg), open_dict(cfg):
        cfg.hydra.runtime.output_dir = job_dir  # what the log file names resolve against
        for name, handler in (OmegaConf.select(cfg, "hydra.job_logging.handlers") or {}).items():
            if isinstance(handler, DictConfig) and handler.get("filename") is not None:
                key = f"hydra.job_logging.handlers.{name}.filename"
                _must_be_inside(key, handler.filename, job_dir, "the job's log")
    writer = cfg.get("writer")
    if isinstance(writer, DictConfig):
        found: dict[str, str] = {}
        for name in ("train", "test"):
            if isinstance(writer.get(name), str):
                found[name] = _must_be_inside(
                    f"writer.{name}", writer[name], job_dir, "its events", strictly=False
                )
        if len(found) == 2 and found["train"] == found["test"]:
            raise BadInput(
                f"bad value writer.train={writer.train}, writer.test={writer.test}: train and "
                "test events need folders of their own (TensorBoard reads one writer a folder)"
            )


def _must_be_inside(key: str, value: Any, job_dir: str, what: str, strictly: bool = True) -> str:
    path = resolved(os.path.join(job_dir, str(value)))
    if not str(value).strip() or not inside(path, job_dir, strictly=strictly):
        raise BadInput(
            f"bad value {key}={shorten(value)}: {what} would go to {path}, outside the run "
            f"dir {job_dir}; it must lie inside the run dir"
        )
    return path
