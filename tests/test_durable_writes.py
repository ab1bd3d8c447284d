"""A stacked sweep's written jobs put run.json and metrics.json on disk off the launcher's
thread (pipeline/sweeps/stacked_write.py `DurableWrites`): every job handed over is on disk
when the block ends, metrics.json after run.json, and an error is raised, not lost."""

from __future__ import annotations

import json

import pytest

from pipeline.runinfo import (
    METRICS_FILE,
    RUN_FILE,
    DurableBatch,
    read_metrics,
    write_metrics,
    write_run_info,
)
from pipeline.sweeps.stacked_write import DurableWrites


@pytest.mark.parametrize("together", [1, 32])  # job by job; a batch of 32, then one of 8
def test_every_job_handed_over_is_on_disk_when_the_block_ends(tmp_path, together):
    dirs = [tmp_path / f"{job}_job" for job in range(40)]
    with DurableWrites(together) as durable:
        for job, run_dir in enumerate(dirs):
            run_dir.mkdir()
            durable.finish(run_dir, (f"tbpipe seed={job}", [f"seed={job}"], {"seed": job}),
                           {"status": "completed", "seed": job})  # fmt: skip
    for job, run_dir in enumerate(dirs):
        assert sorted(p.name for p in run_dir.iterdir()) == [METRICS_FILE, RUN_FILE]
        assert json.loads((run_dir / METRICS_FILE).read_text())["seed"] == job
        info = json.loads((run_dir / RUN_FILE).read_text())
        assert info["overrides"] == [f"seed={job}"] and info["config"] == {"seed": job}
        # run.json first, then metrics.json: a job read while it is written reads as pending
        assert (run_dir / RUN_FILE).stat().st_mtime_ns <= (
            run_dir / METRICS_FILE
        ).stat().st_mtime_ns


def test_a_job_that_cannot_be_written_raises_when_the_block_ends(tmp_path):
    written, missing = tmp_path / "0_job", tmp_path / "1_job"  # the second dir was never made
    written.mkdir()
    with pytest.raises(FileNotFoundError), DurableWrites() as durable:
        durable.finish(written, ("tbpipe", [], {}), {"status": "completed"})
        durable.finish(missing, ("tbpipe", [], {}), {"status": "completed"})
    assert (written / METRICS_FILE).is_file()
    assert not missing.exists()


def test_an_error_in_the_block_is_not_hidden_by_a_job_that_failed(tmp_path):
    with pytest.raises(KeyboardInterrupt), DurableWrites() as durable:
        durable.finish(tmp_path / "never_made", ("tbpipe", [], {}), {"status": "completed"})
        raise KeyboardInterrupt


def test_a_batch_puts_its_files_in_place_only_when_synced(tmp_path):
    """`runinfo.DurableBatch`: a staged file is its temporary file until `commit` syncs
    the disk and renames it (run.json before metrics.json): a reader never sees a file
    half-written, and a job cut short before its batch is synced reads as pending."""
    run_dir = tmp_path / "0_job"
    run_dir.mkdir()
    (run_dir / METRICS_FILE).write_text('{"status": "running"}')  # an earlier status
    batch = DurableBatch()
    write_run_info(run_dir, "tbpipe seed=0", ["seed=0"], {"seed": 0}, batch=batch)
    write_metrics(run_dir, {"status": "completed", "seed": 0}, batch=batch)
    assert len(batch) == 2
    assert sorted(p.name for p in run_dir.iterdir()) == [
        METRICS_FILE, METRICS_FILE + ".tmp", RUN_FILE + ".tmp"
    ]  # fmt: skip
    assert read_metrics(run_dir) == {"status": "running"}
    batch.commit()
    assert sorted(p.name for p in run_dir.iterdir()) == [METRICS_FILE, RUN_FILE]
    assert read_metrics(run_dir) == {"status": "completed", "seed": 0}
    assert json.loads((run_dir / RUN_FILE).read_text())["overrides"] == ["seed=0"]
    assert len(batch) == 0
