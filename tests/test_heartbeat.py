"""A running run's heartbeat (metrics.json refreshed at chunk ends) says only what is so: a
run that wrote no checkpoint has no `checkpoint_step`, however long it ran, so its final
metrics.json is the same as a quick run's."""

from __future__ import annotations

import json
import time

from pipeline.runinfo import HEARTBEAT_SECONDS, Heartbeat


def beaten(run_dir, checkpoint_step=None):
    heartbeat = Heartbeat(run_dir, {"status": "running", "steps": 0, "pid": 1})
    heartbeat.last = time.monotonic() - HEARTBEAT_SECONDS - 1  # a long chunk ago
    heartbeat.beat(40, checkpoint_step)
    return json.loads((run_dir / "metrics.json").read_text())


def test_a_long_run_without_checkpoints_says_none_was_written(tmp_path):
    metrics = beaten(tmp_path)
    assert metrics["steps"] == 40 and "heartbeat_at" in metrics
    assert "checkpoint_step" not in metrics


def test_a_checkpoint_is_said_at_once(tmp_path):
    assert beaten(tmp_path, checkpoint_step=30)["checkpoint_step"] == 30
