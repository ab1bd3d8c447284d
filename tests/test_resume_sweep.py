"""A sweep killed in its third job and resumed: finished jobs untouched, the stopped job
continued from its checkpoint, the missing job run, one summary of every job, and every
series equal to a sweep never stopped. Resuming with other settings, or with a job dir
that is a link or holds files without their settings, is refused, in one line, with
nothing changed; a job dir removed or left empty is a job still to run.
"""

from __future__ import annotations

import csv
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pipeline.runinfo import saved_checkpoints
from tests.conftest import TBPIPE, run_tbpipe
from tests.test_bad_input import ROWS
from tests.test_resume import checkpoint_step, every_series, records

ROW = {row.what: row for row in ROWS}

pytestmark = pytest.mark.slow  # every test here runs tbpipe in a subprocess

#: the settings of the sweep, kept in a config dir of the user's own (as conf/experiment/)
SLOW = """# @package _global_
defaults:
  - override /sinks: [scalars, histograms]   # each job stays quick
sinks:
  scalars:
    every: 10              # as histograms: a tenth of the records to write and read back
trainer:
  steps: 4000              # long enough to be stopped in the middle of a job
  checkpoint_every: 1000   # a checkpoint every 1,000 steps
  progress: false          # no progress bar in the test's output
writer:
  flush_millis: 100        # records reach the file quickly, past the checkpoint too
"""
SWEEP = ("data.noise_std=0.1,0.2,0.3,0.4",)


def write_config_dir(where: Path, text: str = SLOW) -> Path:
    (where / "experiment").mkdir(parents=True, exist_ok=True)
    (where / "experiment" / "slow.yaml").write_text(text)
    return where


def sweep_args(config_dir: Path, sweep_dir: Path) -> list[str]:
    return ["-m", "--config-dir", str(config_dir), "+experiment=slow", *SWEEP,
            f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip


def job_dir(sweep_dir: Path, num: int) -> Path:
    (found,) = sweep_dir.glob(f"{num}_*")
    return found


def files_of(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and dir under `folder`: (mtime in ns, size)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in [folder, *folder.rglob("*")]
    }


def kill_in_third_job(args: list[str], sweep_dir: Path, cwd: Path) -> int:
    """Start the sweep; once job 2 has a checkpoint and records past it, SIGKILL the
    sweep's process. Returns job 2's checkpoint step."""
    process = subprocess.Popen([TBPIPE, *args], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline, saved, size_then = time.monotonic() + 300, None, 0
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        third = list(sweep_dir.glob("2_*"))
        if third:
            size = sum(p.stat().st_size for p in (third[0] / "train").glob("*tfevents*"))
            if saved is None and (saved := checkpoint_step(third[0])) is not None:
                size_then = size
            elif saved is not None and size > size_then + 4096:
                break
        time.sleep(0.02)
    else:
        process.kill()
        raise AssertionError("job 2 never had a checkpoint with records past it")
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    # a later one may have come before the kill; the newest whole one on disk is where the
    # resume goes on from (the `checkpoint` file naming it lags when killed between the two)
    return saved_checkpoints(third[0])[0]


@pytest.fixture(scope="module")
def never_stopped(tmp_path_factory) -> Path:
    """The sweep run whole by the console script, from a config dir of its own: what the
    resumed sweep must equal."""
    workdir = tmp_path_factory.mktemp("whole")
    whole = workdir / "sweep"
    run_tbpipe(*sweep_args(write_config_dir(workdir / "conf"), whole), cwd=workdir)
    return whole


def test_a_sweep_killed_in_its_third_job_resumes_to_the_uninterrupted_result(
    tmp_path, never_stopped
):
    """Killed in job 2; before the resume, job 1's dir goes through the job dirs a resume
    refuses (a link; files without .hydra/) and is then removed, and job 3's dir is made
    empty: the resume runs both again, goes on with job 2, and leaves job 0 untouched."""
    config_dir = write_config_dir(tmp_path / "conf")
    sweep_dir = tmp_path / "sweep"
    saved = kill_in_third_job(sweep_args(config_dir, sweep_dir), sweep_dir, tmp_path)
    before = files_of(sweep_dir)

    status = run_tbpipe("status", str(sweep_dir), "--json", cwd=tmp_path, check=False)
    assert status.returncode == 1
    jobs = json.loads(status.stdout)
    assert [job["state"] for job in jobs] == ["completed", "completed", "died", "pending"]
    assert jobs[2]["checkpoint_step"] == saved and jobs[3]["run_dir"] is None

    # refused, in one line, with nothing changed: a setting given on the command line ...
    refused = run_tbpipe("resume", str(sweep_dir), "data.noise_std=5", cwd=tmp_path, check=False)
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1, refused.stderr
    assert "only hydra.launcher.*" in refused.stderr
    # ... or a setting changed in the configs the sweep was made from
    write_config_dir(config_dir, SLOW + "optimizer:\n  learning_rate: 0.3\n")
    refused = run_tbpipe("resume", str(sweep_dir), cwd=tmp_path, check=False)
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1, refused.stderr
    assert "optimizer.learning_rate was 0.02, is now 0.3" in refused.stderr  # the default
    assert files_of(sweep_dir) == before
    write_config_dir(config_dir)

    # job dirs without their settings: refused with nothing changed, or run again
    second = job_dir(sweep_dir, 1)
    second.rename(tmp_path / "elsewhere")
    second.symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere" / "metrics.json").unlink()  # the link's job is to run again
    assert_refused(sweep_dir, "resume with a job dir that is a link", tmp_path)
    second.unlink()
    (second / "train").mkdir(parents=True)  # files, but no recorded settings
    assert_refused(sweep_dir, "resume with a job dir without .hydra", tmp_path)
    shutil.rmtree(second)  # now job 1's dir is gone and job 3's is empty: both run
    (sweep_dir / job_dir(never_stopped, 3).name).mkdir()

    resumed = run_tbpipe("resume", str(sweep_dir), cwd=tmp_path)
    for word in ("ERROR", "Traceback", "warning", "WARNING"):
        assert word not in resumed.stderr, resumed.stderr
    after = files_of(sweep_dir)
    name = job_dir(sweep_dir, 0).name  # untouched: every file and dir, mtime and size
    kept = {path: stamp for path, stamp in before.items() if path.startswith(name)}
    changed = [path for path, stamp in kept.items() if after.get(path) != stamp]
    assert kept and not changed, changed
    third = json.loads((job_dir(sweep_dir, 2) / "metrics.json").read_text())
    assert third["status"] == "completed" and third["resumed_from"] == saved
    for num in (1, 3):  # the dir removed, the empty dir: run from the start
        again = json.loads((job_dir(sweep_dir, num) / "metrics.json").read_text())
        assert again["status"] == "completed" and "resumed_from" not in again, num
    with open(sweep_dir / "summary.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["job"] for row in rows] == ["0", "1", "2", "3"]
    assert {row["status"] for row in rows} == {"completed"}
    done = run_tbpipe("status", str(sweep_dir), cwd=tmp_path)  # exit 0: all completed
    assert done.stdout.strip().endswith("4 jobs: 4 completed")

    for num in range(4):
        got, want = job_dir(sweep_dir, num), job_dir(never_stopped, num)
        assert got.name == want.name
        assert every_series(got) == every_series(want), num
        written = records(got)
        assert set(written.values()) == {1} and written == records(want)


def test_a_search_is_not_resumed_and_says_why(tmp_path):
    sweep_dir = tmp_path / "search"
    run_tbpipe("-m", "hparams_search=lr_optuna", "hydra.sweeper.n_trials=1", "trainer.steps=20",
               "trainer.progress=false", "sinks=[scalars]", f"hydra.sweep.dir={sweep_dir}",
               cwd=tmp_path)  # fmt: skip
    before = files_of(sweep_dir)
    refused = run_tbpipe("resume", str(sweep_dir), cwd=tmp_path, check=False)
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1, refused.stderr
    assert "OptunaSweeper" in refused.stderr and "start a new search" in refused.stderr
    assert files_of(sweep_dir) == before


def assert_refused(sweep_dir: Path, what: str, cwd: Path) -> None:
    """`tbpipe resume` refuses as the row of docs/ERRORS.md says, and changes nothing."""
    before = files_of(sweep_dir)
    refused = run_tbpipe("resume", str(sweep_dir), cwd=cwd, check=False)
    row = ROW[what]
    assert refused.returncode == row.exit_code == 2, refused.stderr
    (line,) = refused.stderr.splitlines()
    assert row.matches(line, {"<sweep dir>": str(sweep_dir)}), line
    assert files_of(sweep_dir) == before
