"""Every ending has an honest, durable status: metrics.json from the start, written
atomically, `failed` on a full disk (a real tmpfs the test mounts), `interrupted` for a
SIGTERM while TensorFlow loads. Rows of docs/ERRORS.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from pipeline.runinfo import (
    METRICS_FILE,
    RESERVE_FILE,
    is_disk_full,
    read_metrics,
    record_unfinished,
    start_run,
    write_metrics,
)
from tests.conftest import TBPIPE, run_tbpipe
from tests.test_bad_input import ROWS

ROW = {row.what: row for row in ROWS}


@pytest.fixture
def full_disk(tmp_path):
    """A 2 MiB tmpfs mounted for this test (as root), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; this test runs as a user")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> None:
    """Write until the disk says it is full."""
    with open(disk / "ballast", "wb", buffering=0) as stream:
        try:
            while True:
                stream.write(b"x" * 4096)
        except OSError as error:
            assert is_disk_full(error)


def test_metrics_are_replaced_whole_and_leave_no_temp_file(tmp_path):
    write_metrics(tmp_path, {"status": "running", "steps": 0})
    write_metrics(tmp_path, {"status": "completed", "steps": 5, "k": float("nan")})
    assert read_metrics(tmp_path) == {"status": "completed", "steps": 5, "k": None}
    assert sorted(p.name for p in tmp_path.iterdir()) == [METRICS_FILE]


def test_a_run_dir_says_running_from_the_start_and_keeps_a_reserve(tmp_path):
    start_run(tmp_path, 100)
    assert read_metrics(tmp_path) == {"status": "running", "steps": 0, "steps_planned": 100}
    assert (tmp_path / RESERVE_FILE).stat().st_size > 0
    record_unfinished(tmp_path, "failed", "why")
    assert not (tmp_path / RESERVE_FILE).exists()


def test_on_a_full_disk_the_reserve_pays_for_the_last_status(full_disk):
    run = full_disk / "run"
    run.mkdir()
    start_run(run, 10)
    fill(full_disk)
    with pytest.raises(OSError):
        (run / "other.txt").write_text("x" * 100_000)
    record_unfinished(run, "failed", "the disk is full")
    assert read_metrics(run)["status"] == "failed"
    assert not list(run.glob("*.tmp"))  # no 0-byte temp file left behind


@pytest.mark.slow
def test_a_full_disk_ends_a_run_in_one_line_and_marks_it_failed(full_disk, tmp_path):
    row = ROW["a full disk mid-run"]
    paths = {"<full disk>": str(full_disk)}
    env, args = row.argv(paths)
    result = run_tbpipe(*args, "trainer.progress=false", cwd=tmp_path, check=False)
    assert result.returncode == row.exit_code == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert row.matches(result.stderr.strip(), paths), result.stderr
    metrics = read_metrics(full_disk / "run")
    assert metrics["status"] == "failed" and "disk is full" in metrics["reason"]


@pytest.mark.slow
def test_a_sweep_on_a_full_disk_stops_in_one_line_and_says_what_ran(full_disk, tmp_path):
    row = ROW["a full disk mid-sweep"]
    paths = {"<full disk>": str(full_disk)}
    env, args = row.argv(paths)
    result = run_tbpipe(*args, "trainer.progress=false", cwd=tmp_path, check=False)
    assert result.returncode == row.exit_code == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert row.matches(result.stderr.strip(), paths), result.stderr
    assert "sweep stopped: the disk is full; what ran (1 jobs)" in result.stdout
    jobs = sorted((full_disk / "sweep").glob("*/metrics.json"))
    assert len(jobs) == 1  # job 1 never started on the full disk
    assert json.loads(jobs[0].read_text())["status"] == "failed"


@pytest.mark.slow
def test_sigterm_while_tensorflow_loads_marks_the_run_interrupted(tmp_path):
    row = ROW["SIGTERM while TensorFlow loads"]
    run = tmp_path / "run"
    env, args = row.argv({})
    process = subprocess.Popen(
        [TBPIPE, *args, f"hydra.run.dir={run}"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (run / ".hydra" / "config.yaml").exists():  # Hydra is done: TF loads next
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.01)
    assert read_metrics(run)["status"] == "running"  # there from the moment the dir is
    process.terminate()
    out, err = process.communicate(timeout=120)
    assert process.returncode == row.exit_code == 143
    assert err.splitlines() == [err.strip()] and row.matches(err.strip(), {}), err
    metrics = read_metrics(run)
    assert metrics["status"] == "interrupted"
    assert metrics["reason"] == "interrupted by SIGTERM before training"
