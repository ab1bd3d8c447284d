"""tbpipe's Slurm launcher: the submitit plugin's, waiting on Slurm's queue instead of sacct.

`hydra/launcher=slurm` (conf/hydra/launcher/slurm.yaml) names `SlurmLauncher` below. It
submits the sweep exactly as hydra-submitit-launcher does (one job array through
submitit, the same pickled job, the same job dirs), and differs in how it waits:

- The plugin waits through submitit, which asks `sacct` for job states. sacct needs
  Slurm's accounting database; on a cluster without one (scripts/slurm-local.sh, many
  small clusters) it fails, submitit warns on every poll, and a job that ends without
  writing its result (scancel, a node failure, killed for memory) is never seen to end:
  the sweep waits forever. Here a job is done when its result file exists or when it has
  left Slurm's queue (`squeue`, which needs no accounting); sacct is never called.
- The plugin stops the whole sweep, with a traceback and no summary, at the first job
  that left no result. Here such a job is reported in one line and counts as a failed
  job (as a failed job does under the basic launcher), its metrics.json says how Slurm
  ended it, and the sweep summary is written for every job.
- A job that Slurm runs again (requeued by `scontrol requeue`, a preemption, or submitit's
  own requeue at the time limit through the plugin's `checkpoint` hook, when
  `max_num_timeout` > 0) goes on from its latest checkpoint: `resumed_job` below.
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher import submitit_launcher
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import OmegaConf

from pipeline.runinfo import (
    DIED,
    INTERRUPTED,
    RESUME_ENV,
    RUNNING,
    read_metrics,
    record_unfinished,
    write_metrics,
)

log = logging.getLogger(__name__)

#: Slurm job states after which a job runs no more (a requeued job is PENDING again)
ENDED = {
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "TIMEOUT",
}
#: seconds between two looks at the queue (result files are looked for every second)
QUEUE_POLL_S = 5.0
#: a job that ended may still be writing its result file (a slow shared file system)
RESULT_GRACE_S = 10.0


def queue_states(job_ids: Sequence[str]) -> dict[str, str] | None:
    """`{"12_0": "RUNNING", ...}` for the jobs Slurm still knows; None if squeue failed.

    `-r` lists each array task on its own line; `--states=all` keeps jobs that ended a
    short while ago (Slurm forgets them after MinJobAge, 300 s by default).
    """
    arrays = sorted({job_id.split("_")[0] for job_id in job_ids})
    command = ["squeue", "-h", "-r", "--states=all", "-o", "%i|%T", "-j", ",".join(arrays)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    states = {}
    for line in done.stdout.splitlines():
        job_id, _, state = line.strip().partition("|")
        states[job_id] = state.split()[0] if state else "UNKNOWN"
    return states


def wait_for_jobs(jobs: Sequence[Any]) -> dict[str, str]:
    """Wait until every job wrote its result or left the queue; the ending of those without.

    A job Slurm says has ended gets RESULT_GRACE_S for its result file to appear (it is
    written before the job ends, but a shared file system may show it late).
    """
    waiting = {job.job_id: job for job in jobs}
    without_result: dict[str, str] = {}
    ended_at: dict[str, float] = {}
    next_look = 0.0
    while waiting:
        for job_id in [i for i, job in waiting.items() if job.paths.result_pickle.exists()]:
            del waiting[job_id]
        now = time.monotonic()
        if waiting and now >= next_look:
            next_look = now + QUEUE_POLL_S
            states = queue_states(list(waiting)) or {}  # squeue failed: look again later
            for job_id in waiting if states else ():
                state = states.get(job_id, "after leaving Slurm's queue")
                if state in ENDED or job_id not in states:
                    ended_at.setdefault(job_id, now)
                    if now - ended_at[job_id] >= RESULT_GRACE_S:
                        without_result[job_id] = state
        for job_id in without_result:
            waiting.pop(job_id, None)
        if waiting:
            time.sleep(1.0)
    return without_result


def job_dir_of(sweep_dir: Path, job_num: int) -> Path | None:
    """The dir Hydra made for job `job_num` (None if the job never started)."""
    for saved in Path(sweep_dir).glob("*/.hydra/hydra.yaml"):
        try:
            if int(OmegaConf.load(saved).hydra.job.num) == job_num:
                return saved.parent.parent
        except Exception:  # a half-written file of another job: not this one
            continue
    return None


def record_slurm_ending(job_dir: Path, slurm_job: str, state: str) -> str:
    """Say in the job's metrics.json how Slurm ended it; returns the reason it now gives.

    A run that stopped cleanly (SIGTERM from scancel: `interrupted`) keeps its status and
    gets Slurm's word added to its reason; one that still says `running` (killed before it
    could write) `died`.
    """
    said = f"Slurm job {slurm_job} ended {state} without a result"
    try:
        metrics = read_metrics(job_dir)
    except (OSError, ValueError):
        metrics = {}
    if metrics.get("status") in (None, RUNNING):
        return record_unfinished(job_dir, DIED, said)
    reason = metrics.get("reason") or ""
    if said not in reason:
        metrics["reason"] = f"{reason}; {said}" if reason else said
        write_metrics(job_dir, metrics)
    return metrics["reason"]


def requeued() -> bool:
    """Whether Slurm runs this job again: requeued by `scontrol requeue`, a preemption, or
    submitit at the time limit (Slurm counts the restarts in SLURM_RESTART_COUNT)."""
    return int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0


class SlurmLauncher(submitit_launcher.SlurmLauncher):
    """hydra-submitit-launcher's Slurm launcher that waits on `squeue` (see module doc)."""

    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
        """One job, in its own process on the cluster. Run again by Slurm, it goes on from
        its latest checkpoint as `tbpipe resume` would (a completed run stays as it is)."""
        if requeued():
            os.environ[RESUME_ENV] = "1"
        return super().__call__(*args, **kwargs)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit's hook, called in the job when Slurm sends USR2 (`signal_delay_s` before
        the time limit, or at a preemption). submitit then requeues the job, unless it ran
        into its time limit more than `max_num_timeout` times. The run's state is already on
        disk (a checkpoint every `trainer.checkpoint_every` steps); metrics.json says the
        job stopped, and why, until Slurm runs it again and it goes on from there."""
        try:
            run_dir = HydraConfig.get().runtime.output_dir
        except ValueError:  # the signal came before the job's run began: nothing to say
            run_dir = None
        if run_dir is not None and Path(run_dir, "metrics.json").exists():
            record_unfinished(
                run_dir,
                INTERRUPTED,
                "Slurm sent USR2 (time limit near, or preempted): submitit requeues the job, "
                "which goes on from its latest checkpoint",
            )
        return super().checkpoint(*args, **kwargs)

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        jobs = self.submit(job_overrides, initial_job_idx)
        ended = wait_for_jobs(jobs)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        returns = []
        for num, (job, overrides) in enumerate(zip(jobs, job_overrides, strict=True)):
            if job.job_id not in ended:
                returns.append(job.results()[0])  # the result file exists: no sacct call
                continue
            job_num = initial_job_idx + num
            job_dir = job_dir_of(sweep_dir, job_num)
            where = "it never started" if job_dir is None else f"logs: {job_dir}"
            if job_dir is not None:
                record_slurm_ending(job_dir, job.job_id, ended[job.job_id])
            log.warning(
                "job %d (Slurm job %s) ended %s without a result; %s",
                job_num,
                job.job_id,
                ended[job.job_id],
                where,
            )
            # counts as a failed job, as under the basic launcher: the sweep goes on
            failed = JobReturn(
                overrides=list(overrides),
                working_dir=None if job_dir is None else str(job_dir),
                status=JobStatus.COMPLETED,
            )
            failed.return_value = math.inf
            returns.append(failed)
        return returns

    def submit(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
        """Submit the sweep as one job array, as the plugin's `launch` does; the jobs."""
        import submitit

        params = dict(self.params)
        executor = submitit.AutoExecutor(
            cluster="slurm",  # submitit's own name for its Slurm executor
            folder=params.pop("submitit_folder"),
            slurm_max_num_timeout=params.pop("max_num_timeout"),
        )
        shared = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{key if key in shared else f"slurm_{key}": value for key, value in params.items()}
        )
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        log.info("Submitit 'slurm' sweep output dir : %s", sweep_dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            sweep_dir.chmod(int(str(self.config.hydra.sweep.mode), 8))
        job_params = []
        for num, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info("\t#%d : %s", num, " ".join(filter_overrides(overrides)))
            state = Singleton.get_state()
            job_params.append((list(overrides), "hydra.sweep.dir", num, f"job_id_for_{num}", state))
        return executor.map_array(self, *zip(*job_params, strict=True))
