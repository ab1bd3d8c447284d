"""`tbpipe status`: every state a job can be in, read from real runs (and, for a run on
another host, from its heartbeat), as a table and as JSON; exit 0 only when all completed.

The sweep states pending, completed and died are checked on a real sweep killed in its
third job in tests/test_resume_sweep.py; running and interrupted on a run stopped with
Ctrl-C in tests/test_stopped_run_checkpoint.py; failed in tests/test_faults.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from pipeline import api
from pipeline.readback import status
from pipeline.runinfo import DIED, PENDING, RUNNING, SILENT_FOR, state_of, write_metrics
from tests.conftest import run_tbpipe

QUICK = ("trainer.steps=30", "trainer.progress=false", "sinks=[scalars]")


def status_json(path: Path) -> tuple[int, list[dict]]:
    done = run_tbpipe("status", str(path), "--json", cwd=path.parent, check=False)
    assert done.stderr == ""
    return done.returncode, json.loads(done.stdout)


@pytest.mark.slow
def test_completed_and_diverged_runs_and_the_exit_code(tmp_path):
    """Runs made in this process (`pipeline.api`: the console script's metrics.json), read
    by the console script. (Running, then interrupted: tests/test_stopped_run_checkpoint.py;
    failed: tests/test_faults.py.)"""
    api.run_experiment(*QUICK, run_dir=tmp_path / "completed")
    api.run_experiment(*QUICK, "optimizer.learning_rate=100", run_dir=tmp_path / "diverged")
    ended = {name: status_json(tmp_path / name) for name in ("completed", "diverged")}
    assert ended["completed"][0] == 0 and ended["completed"][1][0]["state"] == "completed"
    assert ended["completed"][1][0]["step"] == ended["completed"][1][0]["steps_planned"] == 30
    assert ended["diverged"][0] == 1 and ended["diverged"][1][0]["state"] == "diverged"
    assert "learning_rate" in ended["diverged"][1][0]["reason"]

    table = run_tbpipe("status", str(tmp_path / "diverged"), cwd=tmp_path, check=False).stdout
    assert "diverged" in table and table.strip().endswith("1 job: 1 diverged")


def test_a_run_whose_process_is_gone_died(tmp_path):
    """A real process that ended without saying so: its pid no longer exists."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    metrics = {"status": RUNNING, "steps": 10, "steps_planned": 100, "host": socket.gethostname()}
    write_metrics(tmp_path, {**metrics, "pid": gone.pid, "started_at": time.time()})
    (row,) = status.status_of(tmp_path)
    assert row.state == DIED and f"pid {gone.pid}" in row.reason
    write_metrics(tmp_path, {**metrics, "pid": os.getpid(), "started_at": time.time()})
    assert status.status_of(tmp_path)[0].state == RUNNING  # this process lives


def test_a_run_on_another_host_dies_when_its_heartbeat_stops(tmp_path):
    metrics = {"status": RUNNING, "host": "another-node", "pid": 1, "steps": 5}
    path = write_metrics(tmp_path, metrics)
    assert state_of(metrics, path.stat().st_mtime) == RUNNING  # heard from just now
    old = time.time() - SILENT_FOR - 1
    os.utime(path, (old, old))
    (row,) = status.status_of(tmp_path)
    assert row.state == DIED and "another-node" in row.reason
    assert state_of(None) == PENDING


def test_not_a_run_or_sweep_is_one_line_and_exit_2(tmp_path, capsys):
    assert status.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "neither a sweep dir" in err
