"""Runs that go wrong keep what they wrote and say so: a diverging loss, an error inside the
run, Ctrl-C and SIGTERM. Each case is a row of docs/ERRORS.md; every event file left
behind is read back with TensorBoard's reader.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pipeline.readback.runs import check_event_file, load_run
from tests.conftest import TBPIPE, run_tbpipe
from tests.test_bad_input import ROWS

pytestmark = pytest.mark.slow  # every test here runs tbpipe in a subprocess

ROW = {row.what: row for row in ROWS}


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def run_console_script(args: list[str], cwd: Path) -> tuple[int, str]:
    """The real `tbpipe` in a subprocess. (Not in process: Hydra's logging set-up closes the
    handler absl attached to the root logger, and with it pytest's captured stderr.)"""
    result = run_tbpipe(*args, cwd=cwd, check=False)
    return result.returncode, result.stderr


def assert_event_files_whole(run_dir: Path, caplog) -> None:
    """Every record of every event file is complete, and TensorBoard's reader says so too."""
    files = sorted(run_dir.rglob("*tfevents*"))
    assert files, f"no event files under {run_dir}"
    for path in files:
        assert check_event_file(path) is None, path
    with caplog.at_level(logging.DEBUG, logger="tensorboard"):
        for folder in {path.parent for path in files}:
            load_run(folder)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    truncated = [r.getMessage() for r in caplog.records if "Truncated record" in r.getMessage()]
    assert warnings == [] and truncated == []


def test_a_diverging_loss_stops_keeps_its_events_and_says_lower_the_learning_rate(tmp_path, caplog):
    row = ROW["learning rate too high"]
    env, args = row.argv({})
    run_dir = tmp_path / "run"
    extra = ["trainer.steps=200", "sinks=[scalars,histograms]", f"hydra.run.dir={run_dir}"]
    code, err = run_console_script([*args, *extra], tmp_path)

    assert code == row.exit_code == 3
    assert row.matches(err.strip().splitlines()[-1], {}), err
    metrics = metrics_of(run_dir)
    assert metrics["status"] == "diverged" and metrics["steps"] == 23
    assert "learning_rate" in metrics["reason"] and metrics["steps_planned"] == 200
    assert metrics["test_loss"] is None  # strict JSON: NaN/Inf are written as null
    assert_event_files_whole(run_dir, caplog)
    loss = load_run(run_dir / "train").scalars("loss")
    # every finite step, then the step it diverged at: the state it ended in (metrics.json's)
    assert [step for step, _ in loss] == list(range(24))
    assert all(math.isfinite(value) for _, value in loss[:-1])
    assert not math.isfinite(loss[-1][1])


def test_an_error_inside_the_run_is_one_line_and_marks_the_run_failed(tmp_path):
    row = ROW["error inside the run"]
    env, args = row.argv({})
    run_dir = tmp_path / "run"
    code, err = run_console_script([*args, "trainer.steps=5", f"hydra.run.dir={run_dir}"], tmp_path)
    assert code == row.exit_code == 1
    assert len(err.splitlines()) == 1 and row.matches(err.strip(), {}), err
    metrics = metrics_of(run_dir)
    assert metrics["status"] == "failed" and "NopeSink" in metrics["reason"]
    status = run_tbpipe("status", str(run_dir), "--json", cwd=tmp_path, check=False)
    assert status.returncode == 1 and status.stderr == ""  # not completed
    (job,) = json.loads(status.stdout)
    assert job["state"] == "failed" and "NopeSink" in job["reason"]


def test_a_failed_job_does_not_stop_the_sweep(tmp_path):
    sweep_dir = tmp_path / "sweep"
    targets = "pipeline.sinks.nope.NopeSink,pipeline.sinks.scalars.ScalarSink"
    result = subprocess.run(
        [TBPIPE, "-m", f"sinks.scalars._target_={targets}", "sinks=[scalars]",
         "trainer.steps=20", f"hydra.sweep.dir={sweep_dir}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    ended = sorted(metrics_of(path.parent)["status"] for path in sweep_dir.rglob("metrics.json"))
    assert ended == ["completed", "failed"]
    assert "tbpipe: run failed: ContractError: bad value sinks.scalars._target_" in result.stderr


def start_long_run(run_dir: Path, cwd: Path) -> subprocess.Popen:
    args = ["trainer.steps=100000000", "trainer.chunk=50", "writer.flush_millis=100"]
    args += ["sinks=[scalars,histograms]", f"hydra.run.dir={run_dir}"]
    return subprocess.Popen(
        [TBPIPE, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_scalars(run_dir: Path, process: subprocess.Popen, timeout: float = 180) -> int:
    """Poll the live event file, as TensorBoard would, until training has logged a loss."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if (run_dir / "train").is_dir():
            series = load_run(run_dir / "train").series.get("scalars", {})
            if series.get("loss"):
                return len(series["loss"])
        time.sleep(0.5)
    process.kill()
    raise AssertionError("no scalars appeared")


@pytest.mark.parametrize(
    ("what", "signum"), [("Ctrl-C mid-run", signal.SIGINT), ("SIGTERM mid-run", signal.SIGTERM)]
)
def test_a_signal_mid_run_closes_the_writers_and_marks_the_run_interrupted(
    what, signum, tmp_path, caplog
):
    row = ROW[what]
    run_dir = tmp_path / "run"
    process = start_long_run(run_dir, tmp_path)
    seen = wait_for_scalars(run_dir, process)
    assert metrics_of(run_dir)["status"] == "running"  # a live run never looks complete
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)

    assert process.returncode == row.exit_code == 128 + signum
    assert err.splitlines() and row.matches(err.splitlines()[-1], {}), err
    metrics = metrics_of(run_dir)
    assert metrics["status"] == "interrupted" and metrics["signal"] == signum.name
    steps = metrics["steps"]
    assert seen <= steps < 100000000
    assert_event_files_whole(run_dir, caplog)
    for writer in ("train", "test"):  # every step up to the interrupt, in both runs
        loss = load_run(run_dir / writer).scalars("loss")
        assert [step for step, _ in loss] == list(range(steps)), writer
