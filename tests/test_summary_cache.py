"""A sweep's end fills the report cache from what its process wrote, without reading it back.

The story: "I ran a 1,000-job sweep; its end should not read back the event files it has
just written, and my first `tbpipe report` of it should still read nothing". The stacked
launcher writes a scalars-only job from arrays and the summary writes the seed-mean runs:
the launching process knows each of those runs' final scalars, and hands them to the
report cache (`report_cache.remember(sweep_dir, written)`). The cache so filled must be
the one a fresh reading of the files gives: compared here entry by entry (each run's
files, final scalars and checksum) on a real stacked sweep, and on event files written
with TensorBoard's own writer, where a folder with a second file is read, not taken.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipeline.readback import report_cache
from pipeline.readback.report import render, scalar_rows
from tests.conftest import run_tbpipe
from tests.test_scalars import scalar, write

#: what an entry of the cache says about its run (its checksum covers the three)
ENTRY = ("files", "scalars", "problems", "checksum")


def cache_entries(logdir: Path) -> dict[str, dict]:
    """The report cache's entries of `logdir`, each as ENTRY."""
    runs = json.loads(report_cache.cache_path(logdir).read_text())["runs"]
    return {name: {key: entry[key] for key in ENTRY} for name, entry in runs.items()}


def read_afresh(logdir: Path, monkeypatch, cache_dir: Path) -> dict[str, dict]:
    """The entries a report that finds no cache writes, reading every file in Python."""
    monkeypatch.setenv("TBPIPE_CACHE_DIR", str(cache_dir))
    monkeypatch.setattr(report_cache, "MIN_SERVER_BYTES", 2**40)  # the Python reader
    report_cache.remember(logdir)
    return cache_entries(logdir)


@pytest.fixture
def two_runs(tmp_path) -> Path:
    """A logdir of two runs written with TensorBoard's writer: `one` (one event file) and
    `two` (two files: an earlier attempt's beside the last one)."""
    logdir = tmp_path / "logs"
    write(logdir / "one", [scalar("loss", 1.5, 0, first=True), scalar("loss", 0.25, 10)])
    write(logdir / "two", [scalar("k", 1.0, 0, first=True), scalar("k", 1.5, 10)], suffix=".a")
    write(logdir / "two", [scalar("k", 2.0, 0, first=True), scalar("k", 1.75, 10)], suffix=".b")
    return logdir


def test_a_run_its_writer_knows_is_taken_as_written_and_cached_as_read(
    two_runs, tmp_path, monkeypatch
):
    monkeypatch.setenv("TBPIPE_CACHE_DIR", str(tmp_path / "cache"))
    written = {"one": {"loss": (10, 0.25)}, "two": {"k": (10, 1.75)}}
    report_cache.remember(two_runs, written)
    taken = cache_entries(two_runs)
    assert taken == read_afresh(two_runs, monkeypatch, tmp_path / "fresh")
    # what the writer says is what the cache keeps: the run's one file is not read
    monkeypatch.setenv("TBPIPE_CACHE_DIR", str(tmp_path / "told"))
    report_cache.remember(two_runs, {"one": {"loss": (10, 0.5)}, "two": {"k": (10, 9.0)}})
    told = cache_entries(two_runs)
    assert told["one"]["scalars"] == {"loss": [10, (0.5).hex()]}
    # a folder with a second event file is read (its files in name order): the file's value
    assert told["two"]["scalars"] == {"k": [10, (1.75).hex()]} == taken["two"]["scalars"]
    # and a report reads the cache it finds: the written value
    loaded = report_cache.load_final_scalars(two_runs)
    assert json.loads(render(two_runs, scalar_rows(loaded), None, "json"))["runs"][0][
        "scalars"
    ] == {"loss": 0.5}


@pytest.mark.slow
def test_a_stacked_sweeps_end_fills_the_report_cache_as_its_files_read(tmp_path, monkeypatch):
    """Jobs written by the stacked launcher from arrays and the seed-mean runs: the cache
    the sweep's end filled without reading them equals a fresh reading of every file."""
    monkeypatch.setenv("TBPIPE_CACHE_DIR", str(tmp_path / "cache"))
    sweep_dir = tmp_path / "sweep"
    result = run_tbpipe(
        "-m", "data.noise_std=0.1,1", "seed=0,1,2", "trainer.steps=20", "trainer.progress=false",
        "sinks=[scalars]", "hydra/launcher=stacked", f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )  # fmt: skip
    assert "ERROR" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert "(6 written straight from the group's tensors)" in result.stdout + result.stderr
    filled = cache_entries(sweep_dir)
    mean_runs = {name for name in filled if name.startswith("mean/")}
    assert len(mean_runs) == 4 and len(filled) == 6 * 2 + 4 + 1  # jobs' train/test, root
    assert filled == read_afresh(sweep_dir, monkeypatch, tmp_path / "fresh")
    assert all(filled[name]["scalars"] for name in filled if name != "."), filled
    assert os.listdir(tmp_path / "fresh" / "report")  # the fresh reading wrote its own


def test_a_held_jobs_runs_are_named_as_tensorboard_names_them(tmp_path):
    """`job_finals`: each writer's folder under the sweep dir, with its tags' last values;
    writers sharing a folder, or a folder outside the job, leave the job to be read."""
    import numpy as np

    from pipeline.sweeps.summary import job_finals

    steps = np.array([0, 10, 20])
    train = {"k": (steps, np.float32([1.0, 1.5, 1.75])), "loss": (steps, np.float32([3, 2, 1]))}
    held = {"train": train, "test": {"loss": (steps, np.float32([4.0, 3.0, 2.5]))}}
    job = tmp_path / "sweep" / "0_seed-0"
    dirs = {"train": "train", "test": "test"}
    assert job_finals(tmp_path / "sweep", str(job), held, dirs) == {
        "0_seed-0/train": {"k": (20, 1.75), "loss": (20, 1.0)},
        "0_seed-0/test": {"loss": (20, 2.5)},
    }
    nested = job_finals(tmp_path / "sweep", str(job), held, {"train": "tb/a/", "test": "."})
    assert set(nested) == {"0_seed-0/tb/a", "0_seed-0"}
    for shared in ({"train": ".", "test": "./"}, {"train": "../other", "test": "test"}):
        assert job_finals(tmp_path / "sweep", str(job), held, shared) == {}
