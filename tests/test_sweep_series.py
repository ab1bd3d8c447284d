"""A sweep's end takes its jobs' scalars from the launcher that held them, and what it
writes is what reading the jobs' event files gives.

The story: "my stacked sweep ends as fast as its jobs allow; its mean runs over seeds and
the tbpipe tab's curves are the ones TensorBoard would draw from my jobs' files". The
stacked launcher writes a scalars-only job from arrays and hands them to the sweep summary;
the same sweep's seed-mean runs written again from its event files (what the joblib,
submitit and Ray launchers and a resumed sweep do) are read back with TensorBoard's reader
and compared, event for event.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata

from pipeline.board_plugin import sweep_view
from pipeline.board_plugin.digest import SweepDigest, job_dirs, remember
from pipeline.readback.groups import default_group_keys, group_rows
from pipeline.readback.jobs import config_columns, read_sweep
from pipeline.readback.report_cache import cache_path
from pipeline.readback.runs import find_runs, load_run
from pipeline.sweeps import summary
from pipeline.sweeps.replicates import MEAN_DIR, write_replicate_runs
from pipeline.sweeps.stacked_write import Scalars
from tests.conftest import run_tbpipe

NOISES = (0.1, 1.0)
SEEDS = (0, 1, 2)
STEPS = 20


@pytest.fixture(scope="module")
def stacked(tmp_path_factory) -> tuple[Path, Path]:
    """A real 2 noise x 3 seed sweep, scalars only, under the stacked launcher: its dir and
    the cache folder its tab digest went to."""
    workdir = tmp_path_factory.mktemp("held")
    sweep_dir, cache = workdir / "sweep", workdir / "cache"
    result = run_tbpipe(
        "-m", f"data.noise_std={','.join(map(str, NOISES))}", f"seed={','.join(map(str, SEEDS))}",
        f"trainer.steps={STEPS}", "sinks=[scalars]", "optimizer=sgd",
        "optimizer.learning_rate=0.5", "trainer.progress=false", "hydra/launcher=stacked",
        f"hydra.sweep.dir={sweep_dir}", cwd=workdir, env={"TBPIPE_CACHE_DIR": str(cache)},
    )  # fmt: skip
    assert "Traceback" not in result.stderr and "ERROR" not in result.stderr, result.stderr
    assert "stacked 6 of 6 jobs in 1 group" in result.stdout, result.stdout
    return sweep_dir, cache


def mean_runs(sweep_dir: Path) -> dict[str, dict]:
    """Every run under `mean/`, read with TensorBoard's reader: tag -> [(step, value)]."""
    runs = {}
    for name, path in find_runs(sweep_dir / MEAN_DIR):
        series = load_run(path).series
        runs[name] = {plugin: dict(tags) for plugin, tags in series.items()}
    return runs


@pytest.mark.slow
def test_the_held_values_give_the_mean_runs_that_reading_the_jobs_files_gives(stacked, tmp_path):
    sweep_dir, _ = stacked
    copy = tmp_path / "sweep"
    shutil.copytree(sweep_dir, copy)
    shutil.rmtree(copy / MEAN_DIR)
    rows = read_sweep(copy)
    groups = group_rows(rows, default_group_keys(rows))
    written = write_replicate_runs(copy, groups, rows)  # every job's event files read
    assert len(written) == 2 * len(NOISES)  # train and test of each noise level
    held, read = mean_runs(sweep_dir), mean_runs(copy)
    assert sorted(held) == sorted(read) and len(read) == len(written)
    for run, plugins in read.items():
        tags = plugins["scalars"]
        assert "k" in tags or run.endswith("test"), run
        assert sorted(held[run]["scalars"]) == sorted(tags), run
        for tag, points in tags.items():
            mine = held[run]["scalars"][tag]
            assert [step for step, _ in mine] == list(range(STEPS + 1)), (run, tag)
            assert [step for step, _ in mine] == [step for step, _ in points], (run, tag)
            # bit for bit: the launcher's float32 values are what its event files hold
            assert np.array_equal([v for _, v in mine], [v for _, v in points]), (run, tag)


@pytest.mark.slow
def test_the_tabs_curves_from_held_values_are_those_of_the_jobs_files(stacked, monkeypatch):
    sweep_dir, cache = stacked
    monkeypatch.setenv("TBPIPE_CACHE_DIR", str(cache))
    digest = SweepDigest(sweep_dir)
    assert digest.file is not None and digest.file.is_file()  # written as the sweep ended
    kept = digest.curves()["curves"]
    rows = sweep_view.read_jobs(sweep_dir)
    settings = sweep_view.completed_by_setting(rows)
    assert sorted(kept) == sorted(settings) and len(settings) == len(NOISES)
    for setting, done in settings.items():
        assert len(done) == len(SEEDS)
        assert kept[setting] == sweep_view.curves([row["path"] for row in done]), setting


def test_the_summary_keeps_what_was_handed_over_for_the_job_that_ends(tmp_path):
    """Only the job whose config was handed over, and only if it completed, is held; a job
    ending afterwards (run by Hydra's run_job) takes nothing."""
    callback = summary.SweepSummary()
    steps = np.arange(3, dtype=np.int64)
    values = {"train/k": np.array([0.0, 1.0, 2.0], dtype=np.float32)}
    written = Scalars(steps, values, k_true=2.0, main_metric="train/k/error", train_seconds=0.0)
    configs = [
        OmegaConf.create({"hydra": {"runtime": {"output_dir": str(tmp_path / str(n))}}})
        for n in range(3)
    ]
    done, failed = JobReturn(status=JobStatus.COMPLETED), JobReturn(status=JobStatus.FAILED)
    summary.hand_over(configs[0], written)
    callback.on_job_end(config=configs[0], job_return=done)
    callback.on_job_end(config=configs[1], job_return=done)  # nothing handed over for it
    summary.hand_over(configs[2], written)
    callback.on_job_end(config=configs[2], job_return=failed)
    assert list(callback.held) == [str(tmp_path / "0")]
    series = sweep_view.SweepSeries()
    for job_dir, (held_steps, held_values) in callback.held.items():
        series.hold(job_dir, sweep_view.written_series(held_steps, held_values))
    got_steps, got_values = series.of(tmp_path / "0")["train"]["k"]
    assert got_steps.tolist() == [0, 1, 2] and got_values.tolist() == [0.0, 1.0, 2.0]
    assert series.reads == 0


@pytest.mark.slow
def test_the_rows_from_the_configs_held_are_those_read_from_the_jobs_files(stacked, tmp_path):
    """The sweep's end took each job's config columns (the slope's standard error, the
    HParams settings) from the config Hydra handed to `on_job_end`; read back from the
    jobs' `.hydra/config.yaml` they give the same summary.csv, byte for byte, and the same
    HPARAMS experiment."""
    sweep_dir, _ = stacked
    rows = read_sweep(sweep_dir)  # nothing known: every job's saved config read back
    assert all(row["k_stderr"] > 0 and "data.noise_std" in row["hparams"] for row in rows)
    summary.write_csv(rows, tmp_path / "summary.csv")
    assert (tmp_path / "summary.csv").read_bytes() == (sweep_dir / "summary.csv").read_bytes()
    root = EventAccumulator(str(sweep_dir))  # the sweep root's own run, as TensorBoard reads it
    root.Reload()
    content = root.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.EXPERIMENT_TAG]
    written = {
        info.name: [value.number_value for value in info.domain_discrete.values]
        for info in metadata.parse_experiment_plugin_data(content).hparam_infos
    }
    assert written == {
        name: sorted({float(value) for value in values})
        for name, values in summary.compared_settings(rows).items()
    }
    assert sorted(written) == ["data.noise_std", "seed"]


def test_the_summary_keeps_a_jobs_config_columns_only_in_the_launching_process(tmp_path):
    """A job that ends in the sweep's own process (basic, stacked) has its row's config
    columns kept from the config Hydra hands over, as reading its saved config gives them;
    one ending in a worker's process (joblib, Slurm) keeps nothing there."""
    callback = summary.SweepSummary()
    job_config = OmegaConf.create(
        {"data": {"_target_": "pipeline.data.LinearData", "noise_std": 0.5, "seed": "${seed}"}}
    )
    job_config.seed = 3
    overrides = ["data.noise_std=0.5", "seed=3"]
    ended = JobReturn(status=JobStatus.COMPLETED, cfg=job_config, overrides=overrides)
    config = OmegaConf.create({"hydra": {"runtime": {"output_dir": str(tmp_path / "0")}}})
    callback.on_job_end(config=config, job_return=ended)
    assert callback.configs == {}  # before the sweep started here: a worker's process
    callback.on_multirun_start(config=config)
    callback.on_job_end(config=config, job_return=ended)
    kept = callback.configs[str(tmp_path / "0")]
    saved = OmegaConf.create(OmegaConf.to_yaml(job_config))  # as read back from config.yaml
    assert kept == {**config_columns(saved, overrides), summary.NOISE_DRAW: None}
    assert kept["k_stderr"] > 0 and kept["hparams"]["seed"] == 3


@pytest.mark.slow
def test_the_tabs_digest_from_the_rows_read_once_is_the_one_reading_the_jobs_gives(
    stacked, tmp_path, monkeypatch
):
    """The sweep's end hands the tab's digest each job's row as it read it for summary.csv
    (no job read twice); a digest written afresh from the jobs' files alone is the same,
    byte for byte, and one written from the rows read no job again."""
    sweep_dir, cache = stacked
    monkeypatch.setenv("TBPIPE_CACHE_DIR", str(cache))
    held = cache_path(sweep_dir, kind="board").read_text()
    monkeypatch.setenv("TBPIPE_CACHE_DIR", str(tmp_path / "afresh"))
    remember(sweep_dir)  # nothing handed over: every job's files read
    assert cache_path(sweep_dir, kind="board").read_text() == held
    config_free: dict = {}
    read_sweep(sweep_dir, config_free=config_free)
    assert sorted(config_free) == sorted(path.name for path in job_dirs(sweep_dir))
    monkeypatch.setenv("TBPIPE_CACHE_DIR", str(tmp_path / "handed"))

    def no_job_read(job, logdir):
        raise AssertionError(f"{job} read although its row was handed over")

    monkeypatch.setattr(sweep_view, "read_job_row", no_job_read)
    remember(sweep_dir, rows=config_free)
    assert cache_path(sweep_dir, kind="board").read_text() == held


@pytest.mark.parametrize("steps", [[0, 1, 2, 5, 10], [0, 2, 1, 2, 5], [3], []])
def test_the_held_values_are_taken_as_reading_their_files_takes_them(steps):
    """Each step once, ascending, with its last value, whether the launcher's steps are in
    order (taken as they are) or not (sorted, a step written twice taken with its last)."""
    values = {
        "train/k": np.arange(len(steps), dtype=np.float32) / 3,
        "test/loss": np.arange(len(steps), dtype=np.float64) * 2,
    }
    held = sweep_view.written_series(np.array(steps), values)
    for name, column in values.items():
        writer, _, tag = name.partition("/")
        got_steps, got_values = held[writer][tag]
        points = list(zip(steps, column.tolist(), strict=True))
        want_steps, want_values = sweep_view.last_per_step(points)
        assert got_steps.tolist() == want_steps.tolist() and got_steps.dtype == np.int64
        assert got_values.tolist() == [float(v) for v in want_values]
        assert got_values.dtype == column.dtype and got_values is not column
