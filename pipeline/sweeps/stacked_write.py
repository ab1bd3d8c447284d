"""A stacked job written straight from its group's tensors, without building the job.

Under `hydra/launcher=stacked` a job with tbpipe's `ScalarSink` needs nothing of its own
model for its scalars: k, k/error, the train and test loss at every step are columns of
what the group's loop kept (pipeline/sweeps/stacked_train.py); its other sinks of tbpipe's
defaults are written to the same files by pipeline/sweeps/stacked_sinks.py. So
`write_job` writes, in the launcher's process, what a job run by Hydra's `run_job` and
`app.run` leaves: the job dir, `.hydra/` (the YAML Hydra writes, from one conversion of the
job's config, read straight from its nodes, instead of two deep copies, each entry the
sweep's jobs share dumped once: pipeline/sweeps/stacked_configs.py), tbpipe.log (logging
set as Hydra's `configure_log` sets it, Python's dictConfig run once for the sweep's jobs:
pipeline/sweeps/stacked_logging.py), run.json (its dir fsynced with metrics.json's), the
train/ and test/ event files (the bytes `tf.summary.scalar` writes, built whole:
pipeline/sweeps/scalar_events.py) and metrics.json (written last: a job cut short reads as
pending, and `tbpipe resume` runs it again). Hydra's callbacks see the job start and end,
and the sweeper gets its return value, as with `run_job`.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import shlex
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobRuntime, JobStatus
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from pipeline.app import summary_line
from pipeline.check import rerun
from pipeline.compat import config_container, resolved_further
from pipeline.runinfo import (
    COMPLETED,
    DurableBatch,
    environment_values,
    redacted,
    this_process,
    write_metrics,
    write_run_info,
)
from pipeline.sweeps.naming import job_dir_of, staged_dir
from pipeline.sweeps.search import objective
from pipeline.sweeps.stacked_configs import (
    list_yaml,
    mentions,
    references_resolved,
    resolved_copy,
    task_config_of,
    yaml_by_entry,
)
from pipeline.sweeps.stacked_logging import job_logging

#: the scalars a stacked loop keeps, by `<writer>/<tag>` (pipeline/tasks.py's names)
KEPT = ("train/loss", "test/loss", "train/k", "train/k/error", "test/k", "test/k/error")
job_log = logging.getLogger("tbpipe")  # <run dir>/tbpipe.log, as pipeline/job.py's


@dataclass
class Scalars:
    """One job's scalars as its `ScalarSink` would write them."""

    steps: np.ndarray  # (T,) int64: the steps written (every `every`-th, and the last)
    values: dict[str, np.ndarray]  # `<writer>/<tag>` -> (T,) float32, in the task's order
    k_true: float
    main_metric: str
    train_seconds: float  # the job's share of its group's training
    #: the job's other sinks (pipeline/sweeps/stacked_sinks.py's JobSinks), or None: scalars only
    sinks: Any = None
    #: the job's task config resolved (plain dicts, lists, values), set by `write_job` while
    #: the job ends when nothing in it is read from the environment: the sweep summary
    #: reads its row's columns from it (pipeline/sweeps/summary.py `resolved_job_columns`)
    resolved_config: dict[str, Any] | None = None


def scalars_of(
    names: Sequence[str], k: np.ndarray, train_loss: np.ndarray, test_loss: np.ndarray,
    k_true: float, every: int,
) -> dict[str, np.ndarray]:  # fmt: skip
    """The task's scalars `names` of one job at its written steps, from its columns of
    the stacked loop: k, |k - k_true| (float32, as the task computes it), the losses."""
    steps = written_steps(len(k) - 1, every)
    k = k[steps]
    error = np.abs(k - np.float32(k_true))
    by_tag = {"loss": None, "k": k, "k/error": error}
    values = {}
    for name in names:
        writer, _, tag = name.partition("/")
        loss = train_loss if writer == "train" else test_loss
        values[name] = loss[steps] if tag == "loss" else by_tag[tag]
    return values


def written_steps(steps: int, every: int) -> np.ndarray:
    """The steps a sink due every `every` steps writes in a run of `steps`: 0, every,
    2 * every ... before the last, and the last (the final state)."""
    return np.unique(np.append(np.arange(0, steps, every), steps)).astype(np.int64)


class DurableWrites:
    """Each written job's run.json and metrics.json put on disk off the launcher's thread,
    many jobs' at once.

    Why: both files are written durably (atomically, and on disk before the job counts as
    done), and the wait for the disk, not the CPU, is most of what that costs. A thread of
    its own writes them as the launcher hands them over, staged in a `runinfo.DurableBatch`:
    every `together` jobs (the launcher's `synced_together`), or once no job has come for
    `PAUSE_SECONDS`, the batch is synced and renamed into place, two syncs for the batch
    where each job alone would take three fsyncs. A job's two files come after every other
    file of the job, metrics.json last, so a job cut short (by a kill, before its batch was
    synced) still reads as pending. Leaving the block commits what was handed over and
    raises the first error (a full disk): the jobs before it are written, those after it
    are left pending.
    """

    #: the longest a staged job waits for more jobs before its batch is synced
    PAUSE_SECONDS = 0.5

    def __init__(self, together: int = 1) -> None:
        self._together = max(1, together)
        self._handed: queue.SimpleQueue = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._writer = threading.Thread(target=self._write, name="tbpipe-durable", daemon=True)
        self._writer.start()

    def __enter__(self) -> DurableWrites:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._handed.put(None)
        self._writer.join()
        if exc_info[0] is None and self._error is not None:  # an error on its way stays
            raise self._error

    def finish(self, run_dir: Path, run_info: tuple, metrics: dict[str, Any]) -> None:
        """run.json (`write_run_info(run_dir, *run_info)`), then metrics.json, on disk."""
        self._handed.put((run_dir, run_info, metrics))

    def _write(self) -> None:
        batch = DurableBatch()
        while True:
            try:
                job = self._handed.get(timeout=self.PAUSE_SECONDS if len(batch) else None)
            except queue.Empty:
                job = ()  # a pause: what is staged is committed
            if job and self._error is None:
                run_dir, run_info, metrics = job
                try:
                    write_run_info(run_dir, *run_info, batch=batch)
                    write_metrics(run_dir, metrics, batch=batch)
                except BaseException as error:  # e.g. a full disk: the jobs after it wait
                    self._error = error
            if not job or len(batch) >= 2 * self._together or self._error:  # end, pause
                try:
                    batch.commit()
                except BaseException as error:
                    self._error = self._error or error
            if job is None:
                return


def write_job(
    config: DictConfig,
    scalars: Scalars,
    callbacks: Any,
    task_function: Any,
    durable: DurableWrites,
) -> JobReturn:
    """One job of a sweep written as Hydra's `run_job` and pipeline/job.py would leave it
    (its run.json and metrics.json handed to `durable`); its JobReturn."""
    before = HydraConfig.instance().cfg  # put back once the job is written, as run_job does
    try:
        return _write_job(config, scalars, callbacks, task_function, durable)
    finally:
        HydraConfig.instance().cfg = before


def _write_job(
    config: DictConfig,
    scalars: Scalars,
    callbacks: Any,
    task_function: Any,
    durable: DurableWrites,
) -> JobReturn:
    # What Hydra's `set_config` does, without its copy of the hydra node (the job's config
    # is this job's alone): the job dir's name and `${hydra:...}` read the job's own node
    hydra_node = config.hydra
    OmegaConf.set_readonly(hydra_node, True)
    HydraConfig.instance().cfg = config
    saved = config_container(config)  # OmegaConf.to_container(resolve=False, enum_to_str=True)
    hydra_saved = saved.pop("hydra")
    # the job dir's name read from the container where it can be (pipeline/sweeps/naming.py)
    subdir = job_dir_of(hydra_saved)
    sweep = hydra_node.sweep
    subdir = str(sweep.subdir) if subdir is None else subdir
    run_dir = Path(os.path.abspath(os.path.join(str(sweep.dir), subdir)))
    with read_write(hydra_node.runtime), open_dict(hydra_node.runtime):
        hydra_node.runtime.output_dir = str(run_dir)
    hydra_saved["runtime"]["output_dir"] = str(run_dir)  # in its place, or last if new
    task = list(hydra_saved["overrides"]["task"])
    if hydra_node.output_subdir is None:
        run_dir.mkdir(parents=True, exist_ok=True)
    else:  # `.hydra`, as Hydra saves a job's configs
        made_with_configs(run_dir, str(hydra_node.output_subdir), {
            "config.yaml": yaml_by_entry(saved),
            "hydra.yaml": yaml_by_entry(hydra_saved, under="hydra"),
            "overrides.yaml": list_yaml(task),
        })  # fmt: skip
    job_logging.configure(config, {**saved, "hydra": hydra_saved})  # tbpipe.log, as Hydra's
    callbacks.on_job_start(config=config, task_function=task_function)
    # the job's own config resolved, as its task would get it: resolving the `hydra` node
    # would also render its help pages (resolvers that compose every config group); read
    # from `saved` where its interpolations only name plain values, else by OmegaConf
    from_environment = mentions(saved, "oc.env")
    resolved = None if from_environment else references_resolved(saved)
    task_cfg = _UNMADE if resolved is not None else task_config_of(saved)
    # values read with ${oc.env:...} are not recorded (none: nothing to resolve for them)
    secrets = environment_values(task_cfg) if from_environment else set()
    resolved = resolved_copy(task_cfg, saved) if resolved is None else resolved
    shown = redacted(resolved, secrets) if secrets else resolved  # (new lists and dicts)
    scalars.resolved_config = None if from_environment else resolved
    command = redacted(rerun.command_for(task) or shlex.join(["tbpipe", *task]), secrets)
    job_log.info("started: %s (run dir %s)", command, run_dir)
    metrics = write_run(run_dir, shown, command, redacted(task, secrets), scalars, durable)
    job_log.info(
        "ended: %s after %s of %s steps in %s s (training %s s)", metrics["status"],
        metrics["steps"], metrics["steps_planned"], metrics["seconds"], metrics["train_seconds"],
    )  # fmt: skip
    line = summary_line(metrics, run_dir)
    job_log.info("%s", line)
    print(line, flush=True)
    ret = WrittenJobReturn(saved, task_cfg, overrides=task, hydra_cfg=HydraConfig.instance().cfg)
    sweeper = hydra_saved.get("sweeper")
    direction = "minimize"  # the sweeper's, where it has one (an Enum's text is its own)
    if not isinstance(sweeper, dict) or "direction" in sweeper:
        direction = str(config.hydra.sweeper.get("direction", "minimize"))
    name = plain(saved, "objective", config, None)
    ret.return_value = objective(metrics, name, direction.lower() == "maximize")
    ret.status = JobStatus.COMPLETED
    ret.working_dir = os.getcwd()
    ret.task_name = JobRuntime.instance().get("name")
    for handler in logging.getLogger("tbpipe").handlers:
        handler.flush()
    callbacks.on_job_end(config=config, job_return=ret)
    scalars.resolved_config = None  # read by the summary as the job ended
    return ret


#: a written job's task config not made yet (`WrittenJobReturn`)
_UNMADE: Any = object()


class WrittenJobReturn(JobReturn):
    """A written job's `JobReturn`, whose `cfg` (its task config as a DictConfig, as
    Hydra's `run_job` gives it) is made from its saved container only when read: the
    sweep summary takes the job's columns from its resolved config instead, and nothing
    else of tbpipe reads it."""

    def __init__(self, saved: dict, cfg: Any = _UNMADE, **fields: Any) -> None:
        super().__init__(**fields)
        self._saved, self._cfg = saved, cfg

    @property
    def cfg(self) -> Any:
        if self._cfg is _UNMADE:
            self._cfg = task_config_of(self._saved)
        return self._cfg

    @cfg.setter
    def cfg(self, value: Any) -> None:
        self._cfg, self._saved = value, None


def plain(saved: dict[str, Any], key: str, node: DictConfig, default: Any) -> Any:
    """`node.get(key, default)`, read from `saved` (`node` as a container, unresolved) where
    it holds no such key, null, or a text that is a value of its own (no `${...}`, not
    `???`); else OmegaConf's value (resolved, its type kept)."""
    value = saved.get(key, default)
    if value is None or (type(value) is str and not resolved_further(value)):
        return value
    return node.get(key, default)


def made_with_configs(run_dir: Path, subdir: str, files: Mapping[str, str]) -> None:
    """Make `run_dir` with its saved configs in `subdir`, whole: they are written in a
    sibling dir that one rename makes the job dir. A sweep killed at any instant leaves each
    job dir either absent (or as empty as it was) or holding the settings `tbpipe resume`
    checks it by, never a dir with files but no `.hydra/config.yaml` (which resume must
    refuse). A job dir that already holds files is written in place, config.yaml last."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = staged_dir(run_dir)
    shutil.rmtree(staging, ignore_errors=True)  # left by a killed process of the same pid
    _write_configs(staging / subdir, files)
    try:
        os.rename(staging, run_dir)  # over an empty dir too: POSIX replaces it
    except OSError:  # the dir holds files: its configs written there
        shutil.rmtree(staging)
        _write_configs(run_dir / subdir, files)


def _write_configs(saved_dir: Path, files: Mapping[str, str]) -> None:
    """`files` written into `saved_dir` (made with the umask's mode), config.yaml last."""
    saved_dir.mkdir(parents=True, exist_ok=True)
    for name in sorted(files, key="config.yaml".__eq__):
        (saved_dir / name).write_text(files[name], encoding="utf-8")


def write_run(
    run_dir: Path,
    shown: Any,
    command: str,
    overrides: Sequence[str],
    scalars: Scalars,
    durable: DurableWrites,
) -> dict[str, Any]:
    """What `app.run` leaves in `run_dir` for a scalars-only job, from `scalars`: the event
    files, then run.json and metrics.json (completed, last) through `durable`; returns the
    metrics."""
    started = time.perf_counter()
    begun = time.time()
    steps = int(scalars.steps[-1])
    final = {name: float(values[-1]) for name, values in scalars.values.items()}
    sinks = scalars.sinks
    also = None
    if sinks is not None:  # the other sinks' Events, first in the same files
        also = functools.partial(
            sinks.events, run_dir=run_dir, shown=shown, command=command, overrides=overrides,
            final=final,
        )  # fmt: skip
    write_events(run_dir, shown["writer"], scalars, also)
    lesson = {}
    if "train/k" in final:
        lesson = {"k": final["train/k"], "k_true": scalars.k_true}
        lesson["k_error"] = final.get("train/k/error")
    metrics = {
        **lesson,
        "train_loss": final["train/loss"],
        "test_loss": final["test/loss"],
        "final": final,
        "main_metric": scalars.main_metric,
        "steps": steps,
        "steps_planned": steps,
        "seconds": round(time.perf_counter() - started + scalars.train_seconds, 4),
        "train_seconds": round(scalars.train_seconds, 4),
        "checkpoint_seconds": 0.0,
        "status": COMPLETED,
        **process_of(os.getpid()),
        "started_at": begun,
        "heartbeat_at": time.time(),
    }
    durable.finish(run_dir, (command, overrides, shown), metrics)
    return metrics


@functools.lru_cache(maxsize=1)
def process_of(pid: int) -> dict[str, Any]:
    """`runinfo.this_process()` of the launcher's process `pid`, read once for its jobs."""
    return this_process()


def write_events(
    run_dir: Path, writer_dirs: Mapping[str, Any], scalars: Scalars, also: Any = None
) -> None:
    """The train/ and test/ event files: each scalar at each of its steps, as
    `tf.summary.scalar` on the writers `app.run` would open writes it, built whole
    (pipeline/sweeps/scalar_events.py: TensorFlow's bytes but for the wall times, no
    summary writer or op). With the job's other sinks, `also()` gives their Events by
    writer (pipeline/sweeps/stacked_sinks.py), written first in the same files: one event
    file a directory (pipeline/writers.py), as a run's."""
    from pipeline.sweeps.scalar_events import write_scalar_files

    before = also() if also is not None else None
    write_scalar_files(run_dir, writer_dirs, scalars.steps, scalars.values, before)
