"""Sweeps through a real Slurm scheduler with tbpipe's `hydra/launcher=slurm` preset.

The story: "my sweep outgrew this machine; the cluster runs Slurm". The cluster here is
the single-node one of scripts/slurm-local.sh (`make slurm`, as root; `.ci/run` starts
it). Every job goes through sbatch, slurmctld and slurmd like on a real cluster; the
results must equal the basic launcher's bit for bit, and a job that Slurm ends early
(scancel) must say so in summary.csv while the others finish.

Without sbatch on PATH these tests skip (a machine without Slurm); so they do where CI
could not start Slurm (TBPIPE_SLURM_SKIP says why). To leave them out locally:
`pytest -m "not slow"` (make test-fast) or `pytest --deselect tests/test_slurm.py`.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.readback import status
from pipeline.runinfo import COMPLETED, DIED, INTERRUPTED, RUNNING, read_metrics, write_metrics
from pipeline.sweeps.slurm import record_slurm_ending
from tests.conftest import TBPIPE, launcher_sweep
from tests.test_launchers import (
    assert_one_summary,
    assert_same_results,
    job_dirs,
    scalar_series,
)

NO_SLURM = (
    "no sbatch on PATH: start a local Slurm with `make slurm` (scripts/slurm-local.sh, as root)"
    if shutil.which("sbatch") is None
    else os.environ.get("TBPIPE_SLURM_SKIP")
)
needs_slurm = pytest.mark.skipif(NO_SLURM is not None, reason=str(NO_SLURM))
#: jobs get one core each, so the 2-core machine runs two at once
ONE_CORE = "hydra.launcher.cpus_per_task=1"


@pytest.fixture(scope="module")
def cluster() -> str:
    """The node must be up: a Slurm that is installed but stopped is a failure, not a skip."""
    state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    states = state.stdout.split()
    assert state.returncode == 0 and {"idle", "mix", "alloc"} & set(states), (
        f"Slurm is installed but no node is up ({state.stdout.strip()} {state.stderr.strip()});"
        " start it with `make slurm` (scripts/slurm-local.sh start, as root)"
    )
    return states[0]


@pytest.fixture(scope="module")
def slurm(cluster, tmp_path_factory) -> tuple[Path, str, str]:
    return launcher_sweep(tmp_path_factory, "slurm", ONE_CORE)


@pytest.mark.slow
@needs_slurm
def test_slurm_gives_the_same_job_dirs_and_bit_identical_scalars(basic, slurm):
    sweep_dir, stdout, stderr = slurm
    assert_same_results(sweep_dir, basic[0])
    assert_one_summary(sweep_dir, stdout)
    # nothing but the sweep: no sacct warnings (accounting is off), no errors
    for word in ("sacct", "WARNING", "ERROR", "Traceback"):
        assert word not in stdout + stderr, (word, stdout, stderr)


@pytest.mark.slow
@needs_slurm
def test_slurm_jobs_ran_as_slurm_jobs_with_their_logs_in_the_job_dir(slurm):
    sweep_dir, _, _ = slurm
    slurm_ids = set()
    for name, job in job_dirs(sweep_dir).items():
        log = (job / "tbpipe.log").read_text()
        assert "launcher submitit_slurm" in log, log
        assert "'TF_NUM_INTRAOP_THREADS': '1'" in log, log  # cpus_per_task=1
        assert "k = " in (job / "stdout.log").read_text(), name
        # submitit's folder per Slurm job: <array id>_<task>, one per job of the sweep
        (linked,) = [
            p
            for p in (sweep_dir / ".submitit").rglob("*_log.out")
            if p.stat().st_ino == (job / "stdout.log").stat().st_ino
        ]
        slurm_ids.add(linked.parent.name)
    assert len(slurm_ids) == 2 and len({i.split("_")[0] for i in slurm_ids}) == 1  # one array


def dirs_of_job(sweep_dir: Path, job: int) -> list[Path]:
    """Job `job`'s dir: `<num>_<setting>`, or `<num>` alone when nothing varies by job."""
    return [p for p in sweep_dir.glob(f"{job}*") if p.name.split("_", 1)[0] == str(job)]


def slurm_job_of(sweep_dir: Path, job: int) -> str:
    """The Slurm id (`<array>_<task>`) of sweep job `job`: submitit's folder for it."""
    (folder,) = (sweep_dir / ".submitit").glob(f"*_{job}")
    return folder.name


def test_slurm_ending_is_added_to_a_run_that_said_how_it_ended(tmp_path):
    write_metrics(tmp_path, {"steps": 10, "status": INTERRUPTED, "reason": "SIGTERM at 10"})
    record_slurm_ending(tmp_path, "7_1", "CANCELLED")
    record_slurm_ending(tmp_path, "7_1", "CANCELLED")  # said once, however often it is told
    metrics = read_metrics(tmp_path)
    assert metrics["status"] == INTERRUPTED and metrics["steps"] == 10
    assert metrics["reason"] == "SIGTERM at 10; Slurm job 7_1 ended CANCELLED without a result"


def test_a_run_killed_before_it_could_say_so_died(tmp_path):
    write_metrics(tmp_path, {"steps": 0, "status": RUNNING})
    reason = record_slurm_ending(tmp_path, "7_0", "OUT_OF_MEMORY")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == DIED
    assert metrics["reason"] == reason == "Slurm job 7_0 ended OUT_OF_MEMORY without a result"


#: what Slurm does to a running job, one job each, in one sweep (one submission, one array):
#: job 0 is requeued (`scontrol requeue`, as a preemption does: SIGTERM, back in the queue),
#: job 1 (5 million steps, minutes) is cancelled (`scancel`), job 2 gets USR2 (Slurm sends
#: it `signal_delay_s` before the time limit), job 3 runs through untouched
ENDED_EARLY_STEPS = ("12000", "5000000", "12000", "12000")
REQUEUED, CANCELLED, USR2, UNTOUCHED = range(4)


@pytest.fixture(scope="module")
def ended_early(cluster, tmp_path_factory) -> dict:
    """ENDED_EARLY_STEPS swept through Slurm, each job treated as its number says once it
    has saved a checkpoint: the sweep dir, its return code, stdout and stderr, the Slurm id
    of the cancelled job."""
    sweep_dir = tmp_path_factory.mktemp("ended_early") / "sweep"
    command = [
        TBPIPE,
        "-m",
        f"trainer.steps={','.join(ENDED_EARLY_STEPS)}",
        "trainer.checkpoint_every=500",
        "trainer.progress=false",
        # not `sinks=[scalars]`: TensorFlow reads a checkpoint back through a glob, and a
        # job dir named `...sinks=[scalars]...` is a pattern that matches nothing
        "sinks=scalars",
        "sinks.scalars.every=10",  # a tenth of the records to write and read back
        "hydra/launcher=slurm",
        ONE_CORE,
        "hydra.launcher.timeout_min=5",  # under 10 min, submitit counts USR2 as the time limit
        "hydra.launcher.max_num_timeout=2",  # ... and requeues the job twice at most
        f"hydra.sweep.dir={sweep_dir}",
    ]
    sweep = subprocess.Popen(
        command, cwd=sweep_dir.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # jobs 0 and 1 start first (a core each); job 2 gets the core job 0 leaves
        wait_until_checkpointed(sweep_dir, job=REQUEUED, timeout=180)
        subprocess.run(["scontrol", "requeue", slurm_job_of(sweep_dir, REQUEUED)], check=True)
        wait_until_checkpointed(sweep_dir, job=CANCELLED, timeout=180)  # a step past 0
        cancelled = slurm_job_of(sweep_dir, CANCELLED)
        subprocess.run(["scancel", cancelled], check=True)
        wait_until_checkpointed(sweep_dir, job=USR2, timeout=180)
        usr2 = ["scancel", "--signal=USR2", slurm_job_of(sweep_dir, USR2)]
        subprocess.run(usr2, check=True)
        stdout, stderr = sweep.communicate(timeout=400)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            subprocess.run(["scancel", "--name=tbpipe"], check=False)
    return {"sweep_dir": sweep_dir, "returncode": sweep.returncode, "stdout": stdout,
            "stderr": stderr, "cancelled": cancelled}  # fmt: skip


@pytest.mark.slow
@needs_slurm
def test_scancel_of_a_job_is_an_honest_row_in_the_summary_and_the_others_finish(
    ended_early, capsys
):
    """The cancelled job ends early; the others complete, the sweep ends with one summary
    whose row for it says interrupted, by Slurm's CANCELLED; so does `tbpipe status`."""
    sweep_dir, stdout, stderr = (ended_early[key] for key in ("sweep_dir", "stdout", "stderr"))
    slurm_id = ended_early["cancelled"]
    assert ended_early["returncode"] == 0, stderr  # one job cancelled; the sweep ran to its end
    assert "Traceback" not in stderr and "sacct" not in stdout + stderr, stderr
    said = f"job {CANCELLED} (Slurm job {slurm_id}) ended CANCELLED without a result"
    assert said in stdout + stderr
    assert stdout.count("sweep summary (4 jobs)") == 1, stdout
    with open(sweep_dir / "summary.csv") as stream:
        rows = {int(row["job"]): row for row in csv.DictReader(stream)}
    assert [rows[job]["status"] for job in sorted(rows)] == [
        COMPLETED, INTERRUPTED, COMPLETED, COMPLETED
    ], rows  # fmt: skip
    assert f"Slurm job {slurm_id} ended CANCELLED" in rows[CANCELLED]["reason"], rows[CANCELLED]
    steps = int(rows[CANCELLED]["steps"])
    (long_job,) = dirs_of_job(sweep_dir, CANCELLED)
    assert 0 < steps < 5_000_000 and read_metrics(long_job)["steps"] == steps
    # `tbpipe status` says the same (and exits 1: not every job completed); its main() in
    # this process (the console script's own runs: tests/test_statuses.py)
    assert status.main([str(sweep_dir), "--json"]) == 1
    printed = capsys.readouterr()
    assert printed.err == "", printed.err
    jobs = {row["job"]: row for row in json.loads(printed.out)}
    assert [jobs[job]["state"] for job in range(4)] == [
        COMPLETED, INTERRUPTED, COMPLETED, COMPLETED
    ], jobs  # fmt: skip
    assert f"Slurm job {slurm_id} ended CANCELLED" in jobs[CANCELLED]["reason"], jobs[CANCELLED]


@pytest.mark.slow
@needs_slurm
def test_requeued_jobs_go_on_from_their_checkpoints_to_the_same_series(ended_early):
    """The job requeued by `scontrol requeue` and the one given USR2 (submitit calls the
    launcher's checkpoint hook and, as `max_num_timeout` allows, requeues it) run again,
    go on from their last checkpoint, and end with the untouched job's series: the same
    float32 bytes at every recorded step (every 10th), each step once."""
    sweep_dir = ended_early["sweep_dir"]
    jobs = {int(name.split("_")[0]): path for name, path in job_dirs(sweep_dir).items()}
    reference = scalar_series(jobs[UNTOUCHED])
    assert len(reference["train/loss"][0]) == 1201  # steps 0, 10, ..., 12000, each once
    assert "resumed_from" not in read_metrics(jobs[UNTOUCHED])
    for num in (REQUEUED, USR2):
        metrics = read_metrics(jobs[num])
        assert metrics["status"] == COMPLETED and metrics["resumed_from"] > 0, metrics
        got = scalar_series(jobs[num])
        assert sorted(got) == sorted(reference), num
        for tag, (steps, values) in reference.items():
            assert np.array_equal(got[tag][0], steps), (num, tag)
            assert got[tag][1].tobytes() == values.tobytes(), (num, tag)
    assert "Calling checkpoint method" in slurm_logs(sweep_dir, job=USR2)  # submitit's hook
    assert "DUE TO JOB REQUEUE" in slurm_logs(sweep_dir, job=REQUEUED)  # Slurm's own requeue


def wait_until_checkpointed(sweep_dir: Path, job: int, timeout: float) -> Path:
    """The job dir of `job` once its run has saved a checkpoint (trainer.checkpoint_every)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job_dir in dirs_of_job(sweep_dir, job):
            if (job_dir / "checkpoints" / "checkpoint").exists():
                return job_dir
        time.sleep(0.2)
    raise AssertionError(f"job {job} saved no checkpoint within {timeout} s")


def slurm_logs(sweep_dir: Path, job: int) -> str:
    """submitit's stdout and stderr files of sweep job `job`, every run of it."""
    folder = sweep_dir / ".submitit" / slurm_job_of(sweep_dir, job)
    return "".join(path.read_text() for path in sorted(folder.glob("*_log.*")))
