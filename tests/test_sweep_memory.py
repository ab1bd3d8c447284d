"""A sweep of hundreds of jobs in one process: every job complete, memory flat (issue 20).

Hydra's launcher and sweeper keep each finished job's result, which held the job's
composed configs (~0.1 MB a job); pipeline/sweeps/results.py drops them as each job ends.
The probe (benchmarks/memory_probe.py) records the process's resident memory as each job
ends, from inside the real console script's process.
"""

from __future__ import annotations

import csv
import json

import pytest
from hydra import compose

from pipeline.check.compose import tbpipe_configs
from pipeline.readback.runs import SCALARS, load_run
from pipeline.runinfo import COMPLETED
from tests.conftest import ROOT, run_tbpipe

JOBS = 200
#: memory may grow this much a job from job 50 on: ~7x what a sweep grows by now
#: (~0.005 MiB a job), half of what it grew by while each result kept its configs (~0.1-0.15)
MIB_PER_JOB = 0.05


def test_forget_configs_is_the_last_callback_called_as_a_job_ends():
    """Hydra calls on_job_end in reverse order: listed first, it runs after every other
    callback, a user's `+hydra.callbacks.*` included, so they all still see the configs."""
    with tbpipe_configs():
        cfg = compose(config_name="config", return_hydra_config=True)
    callbacks = list(cfg.hydra.callbacks)
    assert callbacks[0] == "forget_configs", callbacks
    assert cfg.hydra.callbacks.forget_configs._target_ == (
        "pipeline.sweeps.results.ForgetJobConfigs"
    )


def test_what_the_first_job_loaded_is_frozen_as_the_second_starts():
    """pipeline/sweeps/heap.py: a process's first job pays no collection (a single run, a
    Slurm job); its second makes one, then leaves the survivors out of later scans."""
    import gc

    from pipeline.sweeps.heap import FreezeWhatTheFirstJobLoaded

    gc.unfreeze()
    try:
        freeze = FreezeWhatTheFirstJobLoaded()
        freeze.on_job_start(config=None)
        assert gc.get_freeze_count() == 0
        freeze.on_job_start(config=None)
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # this test process's modules, at least
        gc.collect()
        freeze.on_job_start(config=None)  # once only: later jobs' objects are collected
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


@pytest.mark.slow
def test_a_200_job_sweep_in_one_process_writes_every_job_with_flat_memory(tmp_path):
    sweep_dir, probe = tmp_path / "sweep", tmp_path / "rss.txt"
    result = run_tbpipe(
        "-m", f"seed=range({JOBS})", "trainer.steps=5", "sinks=[scalars]",
        "trainer.progress=false", f"hydra.sweep.dir={sweep_dir}",
        "+hydra.callbacks.memory._target_=benchmarks.memory_probe.MemoryProbe",
        f"+hydra.callbacks.memory.path={probe}",
        cwd=tmp_path, env={"PYTHONPATH": str(ROOT)}, timeout=600,
    )  # fmt: skip
    for word in ("ERROR", "Warning", "Traceback"):
        assert word not in result.stderr, result.stderr[-2000:]

    rows = [line.split() for line in probe.read_text().splitlines()]
    rss = {int(job): float(mib) for job, mib, _ in rows if job != "end"}
    assert sorted(rss) == list(range(JOBS)), "one probe line per job, all in this process"
    at_50, at_200 = rss[49], rss[JOBS - 1]
    assert at_200 - at_50 < MIB_PER_JOB * (JOBS - 50), (
        f"resident memory grew {at_200 - at_50:.1f} MiB from job 50 ({at_50:.1f} MiB) to job "
        f"{JOBS} ({at_200:.1f} MiB): {(at_200 - at_50) / (JOBS - 50):.3f} MiB a job"
    )

    jobs = sorted(path.parent.parent for path in sweep_dir.glob("*/.hydra/overrides.yaml"))
    assert len(jobs) == JOBS
    for job in jobs:
        metrics = json.loads((job / "metrics.json").read_text())
        assert metrics["status"] == COMPLETED, job
        assert metrics["steps"] == 5, job
        train = load_run(job / "train", {SCALARS})
        assert [step for step, _ in train.scalars("k")] == list(range(6)), job
        assert train.scalars("k")[-1][1] == pytest.approx(metrics["k"], rel=1e-6), job
    with open(sweep_dir / "summary.csv") as stream:
        summary = list(csv.DictReader(stream))
    assert len(summary) == JOBS
    assert {row["status"] for row in summary} == {COMPLETED}
