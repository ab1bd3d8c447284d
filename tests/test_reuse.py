"""Jobs in one process share one compiled loop, and each still gives what it gives alone.

A sweep's jobs run in one process (Hydra's basic launcher), as do repeated
`pipeline.api.run_experiment` calls. The loop traced for the first job serves the next
ones with the same model, optimizer and sinks (pipeline/reuse.py); here the result of a
job that reused a loop is compared, value for value, with a run in a fresh process.
"""

from __future__ import annotations

import pytest
import tensorflow as tf

from pipeline import api, reuse
from pipeline.models import LinearModel
from pipeline.optimizers import SGD
from pipeline.readback.runs import load_run
from pipeline.sinks.base import Sink
from tests.conftest import ROOT, compose_config, run_tbpipe


def series(run_dir) -> dict:
    """Every scalar and histogram a run wrote, per (writer, tag)."""
    out = {}
    for writer in ("train", "test"):
        run = load_run(run_dir / writer)
        for tag in run.tags("scalars"):
            out[writer, tag] = run.scalars(tag)
        for tag in run.tags("histograms"):
            out[writer, tag] = [(step, values.tolist()) for step, values in run.histograms(tag)]
    return out


def traces() -> dict[int, int]:
    """How many times each loop this process keeps has been traced."""
    loops = reuse._loops.values()
    return {id(loop): loop._function.experimental_get_tracing_count() for loop in loops}


def test_a_job_that_reuses_the_loop_matches_a_run_in_a_fresh_process(default_run, tmp_path):
    api.run_experiment("data.noise_std=2", "data.seed=7", run_dir=tmp_path / "first")
    before = traces()
    second = api.run_experiment(run_dir=tmp_path / "second")  # the default config
    assert traces() == before  # the same loop, not traced again
    # TensorFlow code run after the jobs finds the second job's seed (0) set, though the
    # reused loop's job set it without emptying TF's caches
    after_jobs = tf.random.normal([3]).numpy()  # determinism is on: this needs a seed
    tf.random.set_seed(0)
    assert after_jobs.tolist() == tf.random.normal([3]).numpy().tolist()
    reused, alone = series(second.run_dir), series(default_run)
    assert ("train", "k") in reused and ("train", "outputs/prediction") in reused
    assert reused == alone  # every point of every scalar and histogram
    assert second.metrics["k"] == api.read_run(default_run)["metrics"]["k"]


@pytest.mark.slow  # two jobs, each training an MLP: in `make test`, not `make test-fast`
def test_optimizer_state_and_every_weight_start_afresh_in_each_job(tmp_path):
    args = ("optimizer=adam", "model=mlp", "model.hidden=8", "trainer.steps=50")
    first = api.run_experiment(*args, run_dir=tmp_path / "first")
    before = traces()
    again = api.run_experiment(*args, run_dir=tmp_path / "again")
    assert traces() == before
    assert series(again.run_dir) == series(first.run_dir)  # Adam's moments were reset too


class DrawsFromTheGlobalSeed(LinearModel):
    """A user's model whose initial k comes from TensorFlow's global random state; it
    inherits LinearModel's `reusable_across_jobs = True` without meaning it."""

    def __init__(self, k_init: float = 0.0, name: str = "linear"):
        super().__init__(k_init, name)
        self.k.assign(tf.random.normal([]))


class UnmarkedSink(Sink):
    """A user's in-graph sink that does not say it can share a loop."""

    every = 1


@pytest.mark.slow  # two jobs, each traced anew: in `make test`, not `make test-fast`
def test_a_users_piece_without_the_mark_is_seeded_and_traced_per_job(tmp_path):
    model = "model._target_=tests.test_reuse.DrawsFromTheGlobalSeed"
    cfg = compose_config(model)
    assert reuse.needs_tensorflow_seed(cfg)
    assert not reuse.needs_tensorflow_seed(compose_config())
    first = api.run_experiment(model, "trainer.steps=5", run_dir=tmp_path / "first")
    again = api.run_experiment(model, "trainer.steps=5", run_dir=tmp_path / "again")
    assert first.metrics["k"] == again.metrics["k"]  # same seed, same draw
    assert series(first.run_dir) == series(again.run_dir)
    pieces = (LinearModel(), object(), [])
    assert reuse.loop_key(cfg, *pieces) is None  # `object()` is no marked optimizer
    marked = compose_config()
    assert reuse.loop_key(marked, LinearModel(), SGD(), []) is not None
    assert reuse.loop_key(marked, LinearModel(), SGD(), [UnmarkedSink()]) is None


class SaysReusable(LinearModel):
    """A user's subclass that declares the mark itself: still not tbpipe's own."""

    reusable_across_jobs = True


@pytest.mark.slow
def test_a_subclass_drawing_from_the_global_seed_gives_a_sweep_job_its_numbers_alone(tmp_path):
    """Job 1 of a two-job noise sweep (the console script's) equals the same run alone
    (one `pipeline.api` run in this process), every point."""
    model = "model._target_=tests.test_reuse.DrawsFromTheGlobalSeed"
    steps = ("trainer.steps=20", "trainer.progress=false", "sinks=[scalars,histograms]")
    assert reuse.loop_key(compose_config(), SaysReusable(), SGD(), []) is None
    sweep = tmp_path / "sweep"
    run_tbpipe("-m", model, "data.noise_std=0.1,0.5", *steps, f"hydra.sweep.dir={sweep}", cwd=ROOT)
    alone = api.run_experiment(model, "data.noise_std=0.5", *steps, run_dir=tmp_path / "alone")
    (job1,) = sweep.glob("1_*")
    assert series(job1) == series(alone.run_dir)


@pytest.mark.slow  # traces KEEP + 2 loops: in `make test`, not `make test-fast`
def test_the_loop_cache_keeps_the_newest_loops_and_a_dropped_one_is_traced_anew(tmp_path):
    """Five differently shaped jobs: the first loop is dropped, and running it again
    traces a new loop that gives the same numbers as the first time."""
    shapes = [f"model.hidden={width}" for width in (2, 3, 4, 5, 6)]
    common = ("model=mlp", "trainer.steps=10", "trainer.progress=false", "sinks=[scalars]")
    # a run dir may hold `=` (api quotes it for Hydra's override grammar)
    runs = [api.run_experiment(s, *common, run_dir=tmp_path / s) for s in shapes]
    assert len(reuse._loops) == reuse.KEEP
    kept_widths = [key for key in reuse._loops if '"hidden": 2' in key]
    assert kept_widths == []  # the oldest loop went first
    before = set(traces())
    again = api.run_experiment(shapes[0], *common, run_dir=tmp_path / "again")
    assert set(traces()) - before, "a new loop was traced for the dropped shape"
    assert series(again.run_dir) == series(runs[0].run_dir)
