"""A stacked sweep killed part-way: `tbpipe status` says where each job stood, and
`tbpipe resume` finishes it with every job's numbers those of the sweep never stopped.

The story: "my stacked sweep was killed while it wrote its jobs; I look at what is done,
resume it, and find every job in TensorBoard as if nothing happened". The launcher writes
a job's metrics.json last, so a job cut short reads as pending; `tbpipe resume` runs the
jobs that did not finish one by one (the finished ones stay as they are).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import TBPIPE, run_tbpipe
from tests.test_stacked import (
    FEW_STEPS,
    NOISE_SEEDS,
    SCALARS_ONLY,
    job_dirs,
    scalars_compared,
    scalars_only,  # noqa: F401  the sweep never stopped, shared with test_stacked
)

pytestmark = pytest.mark.slow  # tbpipe runs in a subprocess


def completed(sweep_dir: Path) -> set[str]:
    """The job dirs whose metrics.json says completed."""
    done = set()
    for path in sweep_dir.glob("*/metrics.json"):
        try:
            if json.loads(path.read_text()).get("status") == "completed":
                done.add(path.parent.name)
        except ValueError:  # being replaced this instant
            continue
    return done


def kill_after_first_job(args: list[str], sweep_dir: Path, cwd: Path) -> set[str]:
    """Start the sweep, stop it (SIGSTOP, then SIGKILL: nothing more is written) as soon as
    one job is completed; the jobs completed by then."""
    process = subprocess.Popen(
        [TBPIPE, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300
    while not completed(sweep_dir):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no job completed"
        time.sleep(0.005)
    process.send_signal(signal.SIGSTOP)
    done = completed(sweep_dir)
    process.kill()
    process.communicate(timeout=60)
    return done


def test_a_killed_stacked_sweep_resumes_to_the_numbers_of_one_never_stopped(
    tmp_path,
    scalars_only,  # noqa: F811
):
    sweep_dir = tmp_path / "sweep"
    # job by job on disk (by default 32 written jobs are synced together: all 12 at once)
    args = ["-m", *NOISE_SEEDS, *SCALARS_ONLY, *FEW_STEPS, "hydra/launcher=stacked",
            "hydra.launcher.synced_together=1", f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    done = kill_after_first_job(args, sweep_dir, tmp_path)
    assert 1 <= len(done) < 12, done  # killed part-way

    status = run_tbpipe("status", str(sweep_dir), "--json", cwd=tmp_path, check=False)
    assert status.returncode == 1 and not status.stderr, status  # 1: not every job completed
    rows = json.loads(status.stdout)
    states = {Path(row["run_dir"]).name if row["run_dir"] else row["job"]: row["state"]
              for row in rows}  # fmt: skip
    assert len(rows) == 12 and set(states.values()) <= {"completed", "pending"}, states
    assert {name for name, state in states.items() if state == "completed"} == done

    before = {name: (sweep_dir / name / "metrics.json").read_text() for name in done}
    # a job dir the launcher was making whole when it was killed (the kill rarely lands there)
    staged = sweep_dir / ".11_left.partial-999999"
    (staged / ".hydra").mkdir(parents=True)
    (staged / ".hydra" / "overrides.yaml").write_text("[]\n")
    resumed = run_tbpipe("resume", str(sweep_dir), cwd=tmp_path)
    assert "Traceback" not in resumed.stderr and "ERROR" not in resumed.stderr, resumed.stderr
    for name, text in before.items():  # finished jobs stay as they were
        assert (sweep_dir / name / "metrics.json").read_text() == text, name

    whole = job_dirs(scalars_only[0])
    jobs = job_dirs(sweep_dir)
    assert sorted(jobs) == sorted(whole) and len(jobs) == 12
    for name, job in jobs.items():
        assert json.loads((job / "metrics.json").read_text())["status"] == "completed"
        assert scalars_compared(job, whole[name], name, scalars_only=True) == 4 * 21
    assert (sweep_dir / "summary.csv").is_file()
    assert not staged.exists()  # resume removed it
