"""A run stopped with Ctrl-C (SIGINT) says in metrics.json the newest checkpoint on disk,
and `tbpipe resume` goes on from exactly there and says so (the job log and stdout)."""

from __future__ import annotations

import json
import signal

import pytest

from tests.conftest import run_tbpipe
from tests.test_resume import checkpoint_step, stop_mid_run
from tests.test_resume_faults import RUN

pytestmark = pytest.mark.slow  # runs tbpipe in a subprocess


def test_ctrl_c_records_the_newest_checkpoint_and_resume_goes_on_from_it(tmp_path):
    run_dir = tmp_path / "run"
    saved = stop_mid_run(RUN, run_dir, tmp_path, signal.SIGINT)
    stopped = json.loads((run_dir / "metrics.json").read_text())
    assert stopped["status"] == "interrupted" and stopped["signal"] == "SIGINT"
    assert stopped["checkpoint_step"] == saved == checkpoint_step(run_dir) == stopped["steps"]
    resumed = run_tbpipe("resume", str(run_dir), cwd=tmp_path)
    assert "Traceback" not in resumed.stderr and "ERROR" not in resumed.stderr, resumed.stderr
    assert f"from step {saved}" in resumed.stdout
    assert f"resumed from step {saved}" in (run_dir / "tbpipe.log").read_text()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["status"], metrics["resumed_from"]) == ("completed", saved)
    assert metrics["checkpoint_step"] == checkpoint_step(run_dir)
