"""A run's life through the console script: while it runs, `tbpipe status` says so (its
pid, its newest checkpoint) and `tbpipe resume` refuses it and leaves it alone; stopped
with Ctrl-C (SIGINT), it says in metrics.json the newest checkpoint on disk, and
`tbpipe resume` goes on from exactly there and says so (the job log and stdout)."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_tbpipe
from tests.test_resume import checkpoint_step, stop_mid_run
from tests.test_resume_faults import RUN, STEPS

pytestmark = pytest.mark.slow  # runs tbpipe in a subprocess


def status_json(run_dir: Path) -> tuple[int, list[dict]]:
    done = run_tbpipe("status", str(run_dir), "--json", cwd=run_dir.parent, check=False)
    assert done.stderr == ""
    return done.returncode, json.loads(done.stdout)


def test_ctrl_c_records_the_newest_checkpoint_and_resume_goes_on_from_it(tmp_path):
    run_dir = tmp_path / "run"

    def while_running(run_dir: Path, process: subprocess.Popen) -> None:
        """The run is alive (held just past a checkpoint): status and resume see it so."""
        code, (row,) = status_json(run_dir)
        assert code == 1 and row["state"] == "running" and row["pid"] == process.pid
        assert row["steps_planned"] == STEPS and row["step"] >= 1000 and row["job"] == 0
        assert 1000 <= row["checkpoint_step"] <= checkpoint_step(run_dir)
        assert row["run_dir"] == str(run_dir)
        refused = run_tbpipe("resume", str(run_dir), cwd=tmp_path, check=False)
        assert refused.returncode == 2
        (line,) = refused.stderr.splitlines()
        assert "still being run" in line and f"pid {process.pid}" in line
        assert process.poll() is None  # the run was left alone

    saved = stop_mid_run(RUN, run_dir, tmp_path, signal.SIGINT, while_frozen=while_running)
    stopped = json.loads((run_dir / "metrics.json").read_text())
    assert stopped["status"] == "interrupted" and stopped["signal"] == "SIGINT"
    assert stopped["checkpoint_step"] == saved == checkpoint_step(run_dir) == stopped["steps"]
    code, (row,) = status_json(run_dir)
    assert code == 1 and row["state"] == "interrupted" and "SIGINT" in row["reason"]

    resumed = run_tbpipe("resume", str(run_dir), cwd=tmp_path)
    assert "Traceback" not in resumed.stderr and "ERROR" not in resumed.stderr, resumed.stderr
    assert f"from step {saved}" in resumed.stdout
    assert f"resumed from step {saved}" in (run_dir / "tbpipe.log").read_text()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["status"], metrics["resumed_from"]) == ("completed", saved)
    assert metrics["checkpoint_step"] == checkpoint_step(run_dir)
