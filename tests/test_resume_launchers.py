"""`tbpipe resume` under the joblib and submitit launchers: the sweep is relaunched with
its own launcher, a job that never ran runs under it with its number and dir name, a
finished job's results are left as they are, and the summary covers every job.

(The basic launcher, with a job killed mid-way, is tests/test_resume_sweep.py.)
"""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from pipeline.readback.status import status_of
from tests.conftest import run_tbpipe
from tests.test_resume import every_series

pytestmark = pytest.mark.slow  # every test here runs tbpipe in a subprocess


@pytest.mark.parametrize(
    ("launcher", "more_workers"),
    [("joblib", "hydra.launcher.n_jobs=2"), ("submitit_local", "hydra.launcher.timeout_min=30")],
)
def test_a_job_that_never_ran_is_run_by_the_sweeps_own_launcher(
    launcher, more_workers, request, tmp_path
):
    made, _, _ = request.getfixturevalue(launcher)  # the launchers' 2-job sweep (conftest)
    sweep_dir = tmp_path / "sweep"
    shutil.copytree(made, sweep_dir)  # a copy, to change
    (first,), (second,) = sweep_dir.glob("0_*"), sweep_dir.glob("1_*")
    want = every_series(second)
    kept = (first / "metrics.json").read_bytes(), (first / "metrics.json").stat().st_mtime_ns
    shutil.rmtree(second)  # as if the sweep had stopped before its second job
    (sweep_dir / "summary.csv").unlink()

    # what `tbpipe status` reads (its console script runs in tests/test_statuses.py)
    assert [job.state for job in status_of(sweep_dir)] == ["completed", "pending"]
    resumed = run_tbpipe("resume", str(sweep_dir), more_workers, cwd=tmp_path)
    for word in ("ERROR", "Traceback"):
        assert word not in resumed.stderr, resumed.stderr

    assert (first / "metrics.json").read_bytes() == kept[0]
    assert (first / "metrics.json").stat().st_mtime_ns == kept[1]
    assert second.is_dir() and every_series(second) == want  # same dir, same numbers
    metrics = json.loads((second / "metrics.json").read_text())
    assert metrics["status"] == "completed" and "resumed_from" not in metrics
    with open(sweep_dir / "summary.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert [(row["job"], row["status"]) for row in rows] == [("0", "completed"), ("1", "completed")]
    multirun = (sweep_dir / "multirun.yaml").read_text()
    assert f"hydra/launcher={launcher}" in multirun and more_workers in multirun
