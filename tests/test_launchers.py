"""Bigger sweeps: the same sweep under the basic, joblib and submitit_local launchers.

The story: "my 2-run sweep became 500; run it in parallel without changing the results".
One small noise sweep runs once per launcher through the real console script; every job's
scalar series is read back with TensorBoard's reader and compared bit for bit.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from pipeline import api
from pipeline.check.errors import EXIT_BAD_INPUT
from pipeline.readback.runs import load_run
from pipeline.sweeps.launchers import (
    check_launcher_can_run,
    fair_share_of_cores,
    jobs_at_once,
    link_into,
    usable_cpus,
)
from tests.conftest import run_tbpipe

JOBLIB = "pipeline.sweeps.launchers.JoblibLauncher"  # any dotted path ending in the plugin's class


def job_dirs(sweep_dir: Path) -> dict[str, Path]:
    return {p.name: p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()}


def scalar_series(job_dir: Path) -> dict[str, np.ndarray]:
    """Every scalar of a job, `<writer>/<tag>` -> (steps, float32 values), from event files."""
    series = {}
    for writer in ("train", "test"):
        run = load_run(job_dir / writer)
        for tag in run.tags("scalars"):
            steps_values = run.series["scalars"][tag]
            series[f"{writer}/{tag}"] = (
                np.array([step for step, _ in steps_values]),
                np.array([value for _, value in steps_values], dtype=np.float32),
            )
    return series


def assert_same_results(sweep_dir: Path, reference_dir: Path) -> None:
    jobs, reference = job_dirs(sweep_dir), job_dirs(reference_dir)
    assert sorted(jobs) == sorted(reference) and len(jobs) == 2
    for name, job in jobs.items():
        got, want = scalar_series(job), scalar_series(reference[name])
        assert sorted(got) == sorted(want) and "train/loss" in got, name
        for tag, (steps, values) in want.items():
            assert np.array_equal(got[tag][0], steps), (name, tag)
            # bit for bit: the same float32 bytes, not merely close
            assert got[tag][1].tobytes() == values.tobytes(), (name, tag)


def assert_one_summary(sweep_dir: Path, stdout: str) -> None:
    """summary.csv at the sweep root only, written by the launching process (its stdout)."""
    assert stdout.count("sweep summary (2 jobs)") == 1, stdout
    assert list(sweep_dir.rglob("summary.csv")) == [sweep_dir / "summary.csv"]
    with open(sweep_dir / "summary.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["status"] for row in rows] == ["completed", "completed"]
    assert sorted(row["dir"] for row in rows) == sorted(job_dirs(sweep_dir))


def test_joblib_gives_the_same_job_dirs_and_bit_identical_scalars(basic, joblib):
    assert_same_results(joblib[0], basic[0])
    assert_one_summary(joblib[0], joblib[1])
    assert_one_summary(basic[0], basic[1])


def test_joblib_jobs_run_in_other_processes_with_a_fair_share_of_cores(joblib):
    sweep_dir, _, stderr = joblib
    threads = str(fair_share_of_cores({"_target_": JOBLIB, "n_jobs": -1}))
    pids = set()
    for job in job_dirs(sweep_dir).values():
        log = (job / "tbpipe.log").read_text()
        assert "launcher joblib" in log, log
        assert f"'TF_NUM_INTRAOP_THREADS': '{threads}'" in log, log
        pids.add(log.split(" pid ")[1].split(",")[0])
    assert str(os.getpid()) not in pids
    assert "cpu_feature_guard" not in stderr  # TF loaded quietly in the launching process too


def test_submitit_local_gives_the_same_job_dirs_and_bit_identical_scalars(basic, submitit_local):
    assert_same_results(submitit_local[0], basic[0])
    assert_one_summary(submitit_local[0], submitit_local[1])


def test_submitit_logs_end_up_in_each_job_dir(submitit_local):
    sweep_dir, _, _ = submitit_local
    for name, job in job_dirs(sweep_dir).items():
        stdout = job / "stdout.log"
        assert stdout.is_file() and (job / "stderr.log").is_file(), name
        # the job's own end-of-run line, complete: it is submitit's file, linked in
        text = stdout.read_text()
        assert "k = " in text and name in text, text
        assert "sweep summary" not in text  # the launching process writes it, not a job
        same_file = [
            p
            for p in (sweep_dir / ".submitit").rglob("*_log.out")
            if p.stat().st_ino == stdout.stat().st_ino
        ]
        assert len(same_file) == 1, name
        assert "launcher submitit_local" in (job / "tbpipe.log").read_text()


@pytest.mark.parametrize(
    ("launcher", "cpus", "threads"),
    [
        ({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}, 8, None),
        ({"_target_": JOBLIB, "n_jobs": -1}, 2, 1),
        ({"_target_": JOBLIB, "n_jobs": 2}, 8, 4),
        ({"_target_": JOBLIB, "n_jobs": -2}, 8, 1),
        ({"_target_": JOBLIB, "n_jobs": 16}, 8, 1),
        ({"_target_": "x.LocalLauncher", "cpus_per_task": None}, 8, 1),
        ({"_target_": "x.SlurmLauncher", "cpus_per_task": 6}, 64, 6),
        ({"_target_": "x.SlurmLauncher", "cpus_per_task": None}, 64, None),
    ],
)
def test_fair_share_of_cores(launcher, cpus, threads):
    assert fair_share_of_cores(launcher, cpus) == threads


def test_jobs_at_once_follows_joblib():
    from joblib import effective_n_jobs

    cpus = usable_cpus()
    for n_jobs in (-1, -2, 1, 3):
        assert jobs_at_once(n_jobs, cpus) == max(1, effective_n_jobs(n_jobs)), n_jobs


def test_slurm_preset_is_submitit_slurm_with_tbpipe_defaults():
    cfg = api.compose_config("hydra/launcher=slurm", "hydra.launcher.partition=gpu")
    launcher = cfg.hydra.launcher
    # tbpipe's subclass of the plugin's launcher, where Hydra accepts launchers from
    assert launcher._target_ == "hydra_plugins.tbpipe_launchers.SlurmLauncher"
    from hydra.utils import get_class

    # by name: Hydra's plugin scan runs the plugin's module again, making new class objects
    bases = [f"{c.__module__}.{c.__name__}" for c in get_class(launcher._target_).__mro__]
    assert "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher" in bases
    assert (launcher.partition, launcher.cpus_per_task, launcher.timeout_min) == ("gpu", 2, 30)
    assert fair_share_of_cores(launcher, cpus=64) == 2  # TF uses the cores Slurm gives


@pytest.mark.slow  # starts a new process: in `make test`, not `make test-fast`
def test_slurm_without_sbatch_is_one_line_and_exit_2(tmp_path):
    assert check_launcher_can_run({"_target_": "x.BasicLauncher"}) is None
    result = run_tbpipe(
        "-m",
        "hydra/launcher=slurm",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
        check=False,
        env={"PATH": str(tmp_path)},  # no sbatch here, whatever the machine has
    )
    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "needs Slurm's sbatch" in result.stderr, result.stderr
    assert not (tmp_path / "sweep").exists()


def test_stacked_jobs_synced_together_must_be_a_whole_number_of_one_or_more():
    stacked = {"_target_": "hydra_plugins.tbpipe_launchers.StackedLauncher"}
    assert check_launcher_can_run({**stacked, "synced_together": 32}) is None
    assert check_launcher_can_run(stacked) is None
    for bad in (0, -1, 2.5, True, "many"):
        problem = check_launcher_can_run({**stacked, "synced_together": bad})
        assert problem.startswith(f"bad value hydra.launcher.synced_together={bad}: "), problem
        assert "whole number >= 1" in problem


def test_a_linked_log_is_the_same_file_and_keeps_growing(tmp_path):
    source, target = tmp_path / "123_0_log.out", tmp_path / "job" / "stdout.log"
    target.parent.mkdir()
    source.write_text("first line\n")
    target.write_text("an older job's log")  # a rerun into the same dir replaces it
    assert link_into(source, target) == "hard link"
    with open(source, "a") as stream:  # submitit goes on writing after the link is made
        stream.write("k = 2.0\n")
    assert target.read_text() == "first line\nk = 2.0\n"
    source.unlink()  # deleting .submitit/ keeps the job dir's copy
    assert target.read_text() == "first line\nk = 2.0\n"
