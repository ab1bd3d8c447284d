"""`hydra/launcher=stacked`: a noise x seed sweep trained as one gives every job what the
basic launcher gives it.

The story: "my 12 settings differ only in numbers; train them together, and let me find
each one in TensorBoard as before". The same sweep runs under the basic and the stacked
launcher through the real console script; every job's event files are read back with
TensorBoard's reader and compared: every scalar, histogram and image, the HParams
session, the files of the job dir, metrics.json and the sweep summary.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.graph_pb2 import GraphDef

from pipeline.readback.runs import GRAPHS, HISTOGRAMS, IMAGES, SCALARS, load_run
from pipeline.runinfo import REDACTED
from pipeline.sweeps.stacked import stack_key
from tests.conftest import compose_config, run_tbpipe

#: how far a stacked scalar may be from the basic launcher's, relative (docs/LAUNCHERS.md):
#: the sum over a job's points runs over a stacked tensor, whose summation order TensorFlow
#: does not promise to be that of one job's; in every run so far they were bit for bit equal
TOLERANCE = 1e-6
NOISE_SEEDS = ("data.noise_std=0.01,0.1,1", "seed=0,1,2,3")
FEW_STEPS = ("trainer.steps=20", "trainer.progress=false")
SCALARS_ONLY = ("sinks=[scalars]",)
#: each job of NOISE_SEEDS twice: with `sinks=[scalars]` (no job built: the launcher writes
#: its files, pipeline/sweeps/stacked_write.py) and with the default sinks (written from the
#: group's tensors too: pipeline/sweeps/stacked_sinks.py); both in one group
BOTH_SINKS = ("sinks=[scalars],[graph,scalars,histograms,images,text,hparams]",)
#: the run's name read from the environment: a job the launcher writes keeps it out of its files
SECRET_NAME = ("name=${oc.env:TBPIPE_TEST_SECRET}",)
#: the default sinks with the fit drawn during training too (a sink the launcher does not
#: write itself, so a full-batch job is built and replays its group's weights), and
#: mini-batch jobs, which do not stack; trained by Adam
REPLAYED_OR_ALONE = (
    "data.noise_std=0.1,1", "seed=0,1", "trainer.batch_size=null,50", "optimizer=adam",
    "sinks.images.every=10",
)  # fmt: skip


def sweep_output(
    tmp_path_factory, launcher: str, *overrides: str, env: dict | None = None
) -> tuple[Path, str, str]:
    """A real sweep under `hydra/launcher=<launcher>`: its dir, stdout and stderr (clean)."""
    workdir = tmp_path_factory.mktemp(launcher)
    sweep_dir = workdir / "sweep"
    result = run_tbpipe(
        "-m", *overrides, *FEW_STEPS, f"hydra/launcher={launcher}",
        f"hydra.sweep.dir={sweep_dir}", cwd=workdir, env=env,
    )  # fmt: skip
    assert "Traceback" not in result.stderr and "ERROR" not in result.stderr, result.stderr
    return sweep_dir, result.stdout, result.stderr


def sweep(tmp_path_factory, launcher: str, *overrides: str) -> tuple[Path, str]:
    """A real sweep under `hydra/launcher=<launcher>`: its dir and stdout (stderr clean)."""
    return sweep_output(tmp_path_factory, launcher, *overrides)[:2]


@pytest.fixture(scope="module")
def noise_seeds(tmp_path_factory) -> dict[str, tuple[Path, str, str]]:
    """3 noise levels x 4 seeds, each with `sinks=[scalars]` and with the default sinks,
    the run's name read from the environment, under each launcher: dir, stdout, stderr."""
    from tests.test_secrets import ENV

    overrides = (*BOTH_SINKS, *NOISE_SEEDS, *SECRET_NAME)
    return {launcher: sweep_output(tmp_path_factory, launcher, *overrides, env=ENV)
            for launcher in LAUNCHERS}  # fmt: skip


@pytest.fixture(scope="module")
def scalars_only(tmp_path_factory) -> tuple[Path, str]:
    """The 3 x 4 sweep with `sinks=[scalars]` alone under the stacked launcher: the sweep
    never stopped of tests/test_stacked_resume.py."""
    return sweep(tmp_path_factory, "stacked", *NOISE_SEEDS, *SCALARS_ONLY)


@pytest.fixture(scope="module")
def replayed_or_alone(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """REPLAYED_OR_ALONE under each launcher: dir and stdout."""
    return {launcher: sweep(tmp_path_factory, launcher, *REPLAYED_OR_ALONE)
            for launcher in LAUNCHERS}  # fmt: skip


LAUNCHERS = ("basic", "stacked")
#: how a job dir's name says which sinks it ran with (BOTH_SINKS)
SCALARS_JOB, DEFAULT_SINKS_JOB = "_sinks-scalars_", "_sinks-graph-scalars-"


def job_dirs(sweep_dir: Path, named: str = "") -> dict[str, Path]:
    """The sweep's job dirs by name (`named`: those whose name holds it)."""
    return {p.name: p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir() and named in p.name}


def relative(value: np.ndarray, expected: np.ndarray) -> float:
    """The largest |value - expected| / |expected| (0 where both are 0)."""
    value, expected = np.asarray(value, np.float64), np.asarray(expected, np.float64)
    gap = np.abs(value - expected)
    return float(np.max(np.where(gap == 0, 0.0, gap / np.maximum(np.abs(expected), 1e-30))))


def compare(
    job: Path, reference: Path, name: str, scalars_only: bool = False, tolerance: float = TOLERANCE
) -> dict[str, list]:
    """Every summary of the job's writers and of the HPARAMS session at its root against the
    reference's (`scalars_only`: the scalars of both writers): the same tags and the same
    steps, each step of each tag once, scalars and histograms within `tolerance`
    (relative), the rest equal; by plugin, the largest relative difference seen and how
    many values were compared."""
    seen: dict[str, list] = {SCALARS: [0.0, 0], HISTOGRAMS: [0.0, 0]}
    for writer in ("train", "test") if scalars_only else ("train", "test", "."):
        got, want = load_run(job / writer), load_run(reference / writer)
        if not scalars_only:
            assert sorted(got.series) == sorted(want.series), (name, writer)
        for plugin in [SCALARS] if scalars_only else list(want.series):
            tags = want.series[plugin]
            assert sorted(got.series[plugin]) == sorted(tags), (name, writer, plugin)
            for tag, records in tags.items():
                mine = got.series[plugin][tag]
                assert [s for s, _ in mine] == [s for s, _ in records], (name, writer, tag)
                for (step, value), (_, expected) in zip(mine, records, strict=True):
                    where = (name, writer, tag, step)
                    if plugin in seen:
                        gap = relative(value, expected)
                        seen[plugin] = [max(seen[plugin][0], gap), seen[plugin][1] + 1]
                        assert gap <= tolerance, (where, value, expected)
                    elif plugin == IMAGES:
                        exact = tolerance <= TOLERANCE  # numbers bit for bit: the same bytes
                        assert same_picture(value[2], expected[2], exact), where
                    elif plugin == GRAPHS:  # the same nodes (a map's bytes may come in any order)
                        assert graph(value) == graph(expected), where
                    else:  # text, the HParams session
                        assert np.array_equal(value, expected), where
    return seen


#: a picture drawn from numbers within a tolerance (not bit for bit) may differ from the
#: reference where a line's edge falls: in at most this share of its pixels, each by at
#: most this many levels of 255 (seen: 2 pixels of 120,000 by 1 level, an MLP job on an
#: AVX-512 CPU whose batched matmul adds in another order than the job's own)
PIXELS_APART, LEVELS_APART = 1e-3, 2


def same_picture(png: bytes, expected: bytes, exact: bool) -> bool:
    """The same PNG bytes; or, unless `exact`, the same size and all but a few pixels the
    same (PIXELS_APART, LEVELS_APART)."""
    if bytes(png) == bytes(expected) or exact:
        return bytes(png) == bytes(expected)
    from io import BytesIO

    from matplotlib.image import imread

    mine, want = (np.round(imread(BytesIO(bytes(b))) * 255) for b in (png, expected))
    if mine.shape != want.shape:
        return False
    apart = np.abs(mine - want).max(axis=-1)
    return apart.max() <= LEVELS_APART and (apart > 0).mean() <= PIXELS_APART


def scalars_compared(job: Path, reference: Path, name: str, scalars_only: bool = False) -> int:
    """How many scalars `compare` found equal (within TOLERANCE); `scalars_only`: also each
    step of each tag once in the event files as written (the reader would hide a repeat)."""
    compared = compare(job, reference, name, scalars_only)[SCALARS][1]
    for writer in ("train", "test") if scalars_only else ():
        written = Counter(
            (value.tag, event.step)
            for path in (job / writer).glob("*tfevents*")
            for event in map(Event.FromString, RawEventFileLoader(str(path)).Load())
            for value in event.summary.value
        )
        assert set(written.values()) == {1}, (name, writer)
    return compared


def report_runs(capsys, sweep_dir: Path, jobs: set[str]) -> dict[str, dict]:
    """`tbpipe report --json` of a sweep, run in this process (`report.main`; the console
    script's own `report --json` is tests/test_report_reader.py's): its jobs' runs by name."""
    from pipeline.readback import report

    capsys.readouterr()
    assert report.main([str(sweep_dir), "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return {row["run"]: row for row in json.loads(out)["runs"] if row["run"].split("/")[0] in jobs}


def graph(value: np.ndarray) -> GraphDef:
    return GraphDef.FromString(value.item() if value.ndim == 0 else value[0])


def files_of(job: Path) -> list[str]:
    """A job dir's files, event files by folder only (their names hold a time)."""
    return sorted(
        str(p.relative_to(job)).split("events.out.tfevents")[0]
        for p in job.rglob("*")
        if p.is_file()
    )


@pytest.mark.slow
def test_the_launcher_says_every_job_was_stacked(noise_seeds):
    """With the default sinks too the launcher writes every job itself (graph, scalars,
    histograms, the fit, text, HParams: pipeline/sweeps/stacked_sinks.py)."""
    _, stdout, _ = noise_seeds["stacked"]
    assert "stacked 24 of 24 jobs in 1 group" in stdout, stdout
    assert "(24 written straight from the group's tensors)" in stdout, stdout


@pytest.mark.slow
def test_every_summary_of_every_job_equals_the_basic_launchers(noise_seeds):
    stacked = job_dirs(noise_seeds["stacked"][0], DEFAULT_SINKS_JOB)
    basic = job_dirs(noise_seeds["basic"][0], DEFAULT_SINKS_JOB)
    assert sorted(stacked) == sorted(basic) and len(basic) == 12
    scalars = sum(scalars_compared(stacked[n], basic[n], n) for n in sorted(basic))
    assert scalars == 12 * 4 * 21, scalars  # k, k/error, loss (train), loss (test); 21 steps
    for name in basic:
        assert files_of(stacked[name]) == files_of(basic[name]), name


@pytest.mark.slow
def test_metrics_and_the_sweep_summary_equal_the_basic_launchers(noise_seeds):
    stacked_dir, basic_dir = noise_seeds["stacked"][0], noise_seeds["basic"][0]
    assert len(job_dirs(basic_dir)) == len(job_dirs(stacked_dir)) == 24
    for name, job in job_dirs(basic_dir).items():
        want = json.loads((job / "metrics.json").read_text())
        got = json.loads((stacked_dir / name / "metrics.json").read_text())
        assert got["status"] == want["status"] == "completed"
        assert got["steps"] == want["steps"] == 20
        assert got["final"].keys() == want["final"].keys()
        for key, value in want["final"].items():
            assert got["final"][key] == pytest.approx(value, rel=TOLERANCE), (name, key)
        for saved in ("overrides.yaml", "config.yaml"):
            assert (stacked_dir / name / ".hydra" / saved).read_text() == (
                job / ".hydra" / saved
            ).read_text().replace(str(basic_dir), str(stacked_dir))
    for table in ("summary.csv", "summary_by_setting.csv"):
        with open(basic_dir / table) as want, open(stacked_dir / table) as got:
            want_rows, got_rows = list(csv.DictReader(want)), list(csv.DictReader(got))
        assert len(got_rows) == len(want_rows) > 0
        for mine, expected in zip(got_rows, want_rows, strict=True):
            for key in ("k", "k_error", "k_mean", "n"):
                if key in expected:
                    assert float(mine[key]) == pytest.approx(float(expected[key]), rel=1e-5)


@pytest.mark.slow
def test_a_scalars_only_sweep_written_by_the_launcher_equals_the_basic_launchers(
    noise_seeds, capsys
):
    """With `sinks=[scalars]` no job is built: the launcher writes each job's files from its
    group's tensors, and they read as the basic launcher's (its scalars, metrics.json, the
    sweep summary), the job dir holding what a scalars-only run holds."""
    stacked_dir, basic_dir = noise_seeds["stacked"][0], noise_seeds["basic"][0]
    stacked, basic = job_dirs(stacked_dir, SCALARS_JOB), job_dirs(basic_dir, SCALARS_JOB)
    assert sorted(stacked) == sorted(basic) and len(basic) == 12
    scalars = sum(
        scalars_compared(stacked[n], basic[n], n, scalars_only=True) for n in sorted(basic)
    )
    assert scalars == 12 * 4 * 21, scalars  # k, k/error, loss (train), loss (test); 21 steps
    for name, job in basic.items():
        assert files_of(stacked[name]) == [
            ".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml",
            "metrics.json", "run.json", "tbpipe.log", "test/", "train/",
        ]  # fmt: skip
        want = json.loads((job / "metrics.json").read_text())
        got = json.loads((stacked[name] / "metrics.json").read_text())
        assert got["status"] == "completed" and got["steps"] == want["steps"] == 20
        assert got.keys() == want.keys(), name
        for key, value in want["final"].items():
            assert got["final"][key] == pytest.approx(value, rel=TOLERANCE), (name, key)
        run = json.loads((stacked[name] / "run.json").read_text())
        assert "sinks=[scalars]" in run["overrides"] and list(run["config"]["sinks"]) == ["scalars"]
        assert "sinks=[scalars]" in (stacked[name] / ".hydra/overrides.yaml").read_text()
    with open(basic_dir / "summary.csv") as want, open(stacked_dir / "summary.csv") as got:
        for mine, expected in zip(csv.DictReader(got), csv.DictReader(want), strict=True):
            assert float(mine["k"]) == pytest.approx(float(expected["k"]), rel=TOLERANCE)
    # `tbpipe report` reads the stacked sweep as the basic one: every run, its final scalars
    mine, expected = (report_runs(capsys, where, set(basic)) for where in (stacked_dir, basic_dir))
    runs = [run for run in expected if run.split("/")[-1] in ("train", "test")]
    assert sorted(mine) == sorted(runs) and len(runs) == 24
    for run in runs:
        assert mine[run]["status"] == "completed" and mine[run]["step"] == 20, run
        assert mine[run]["scalars"].keys() <= expected[run]["scalars"].keys(), run
        for tag, value in mine[run]["scalars"].items():
            assert value == pytest.approx(expected[run]["scalars"][tag], rel=TOLERANCE), (run, tag)


@pytest.mark.slow
def test_jobs_that_cannot_be_stacked_run_one_by_one_with_the_same_results(replayed_or_alone):
    (stacked_dir, stdout), (basic_dir, _) = replayed_or_alone["stacked"], replayed_or_alone["basic"]
    assert "stacked 4 of 8 jobs in 1 group" in stdout, stdout  # the full-batch ones
    stacked, basic = job_dirs(stacked_dir, "batch_size-50"), job_dirs(basic_dir, "batch_size-50")
    assert sorted(stacked) == sorted(basic) and len(basic) == 4
    for name in basic:
        assert scalars_compared(stacked[name], basic[name], name) > 0


@pytest.mark.slow
def test_a_sink_the_launcher_cannot_write_replays_the_job_with_the_same_summaries(
    replayed_or_alone,
):
    """The fit drawn every 10 steps is not written by the launcher: each job is built and
    its sinks replay the weights its group computed, to the basic launcher's summaries."""
    (stacked_dir, stdout), (basic_dir, _) = replayed_or_alone["stacked"], replayed_or_alone["basic"]
    assert "stacked 4 of 8 jobs in 1 group (0 written straight" in stdout, stdout
    stacked, basic = job_dirs(stacked_dir), job_dirs(basic_dir)
    assert sorted(stacked) == sorted(basic) and len(basic) == 8
    for name in basic:
        assert scalars_compared(stacked[name], basic[name], name) == 4 * 21
        assert files_of(stacked[name]) == files_of(basic[name]), name


@pytest.mark.slow
def test_a_written_job_keeps_a_value_read_from_the_environment_out_of_its_files(noise_seeds):
    """A job the launcher writes itself redacts what `${oc.env:...}` read, as `app.run`
    does: it names no folder and reaches no file (run.json, .hydra/, tbpipe.log, event
    files) or output."""
    from tests.test_secrets import leaks

    sweep_dir, stdout, stderr = noise_seeds["stacked"]
    assert "(24 written straight from the group's tensors)" in stdout, stdout
    jobs = job_dirs(sweep_dir)
    assert len(jobs) == 24
    for job in jobs.values():
        assert json.loads((job / "run.json").read_text())["config"]["name"] == REDACTED
    assert leaks(sweep_dir.parent, stdout, stderr) == []


def test_which_sinks_the_launcher_writes_itself():
    """The default sinks are written by the launcher; a sink drawn during training, a
    histogram of named layers or a run without `ScalarSink` is not: its job is replayed."""
    from pipeline.sweeps.stacked import scalars_only

    task, every, others = scalars_only(compose_config("trainer.steps=20"))
    assert every == 1 and task.main_metric
    assert sorted(node._target_.rsplit(".", 1)[-1] for node in others) == [
        "GraphSink", "HParamsSink", "HistogramSink", "ImageSink", "TextSink",
    ]  # fmt: skip
    assert scalars_only(compose_config("sinks=[scalars]"))[2] == []
    assert scalars_only(compose_config("sinks.images.every=10")) is None
    assert scalars_only(compose_config("sinks.histograms.layers=[hidden]")) is None
    assert scalars_only(compose_config("sinks=[graph,text]")) is None


def test_what_stacks():
    """Jobs group by optimizer, steps and points (an MLP by its width too:
    tests/test_stacked_mlp.py); another model, mini-batches or a user's sink run on their own."""
    plain = stack_key(compose_config("trainer.steps=20"))
    assert plain == ("pipeline.optimizers.SGD", 20, 200, 100)
    assert stack_key(compose_config("trainer.steps=20", "data.noise_std=1", "seed=3")) == plain
    assert stack_key(compose_config("optimizer=adam"))[0] == "pipeline.optimizers.Adam"
    assert stack_key(compose_config("model=keras_mlp")) is None
    assert stack_key(compose_config("trainer.batch_size=50")) is None
    assert stack_key(compose_config("task=regression", "model=mlp")) is None


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_the_stacked_loop_gives_each_setting_the_weights_of_its_own_training(optimizer):
    """Three settings (noise, seed, learning rate, starting k all differ) trained as one
    against each trained alone by tbpipe's own model, task loss and optimizer."""
    from pipeline import optimizers
    from pipeline.data import LinearData
    from pipeline.models import LinearModel
    from pipeline.sweeps.stacked_train import Setting, train_stacked
    from pipeline.tasks import Task
    from pipeline.tensorflow_quiet import import_tensorflow

    tf = import_tensorflow()
    steps, task = 15, Task(metrics=["train/k"])
    values = [(0.01, 0, 0.02, 0.0), (1.0, 3, 0.5, -1.0), (0.3, 7, 0.1, 4.0)]
    settings = []
    for noise, seed, lr, k_init in values:
        data = LinearData(noise_std=noise, seed=seed).generate()
        settings.append(Setting(data.x_train, data.y_train, k_init, lr))
    paths = train_stacked(settings, f"pipeline.optimizers.{optimizer}", steps)
    assert paths.k.shape == (steps + 1, 3) and paths.finite.all()
    for column, setting in enumerate(settings):
        model = LinearModel(setting.k_init)
        update = getattr(optimizers, optimizer)(learning_rate=setting.learning_rate)
        update.build(model.trainable_variables)
        alone = [model.k.numpy()]
        for _ in range(steps):
            with tf.GradientTape() as tape:
                loss = task.loss(model(setting.x_train), setting.y_train)
            update.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
            alone.append(model.k.numpy())
        np.testing.assert_allclose(paths.k[:, column], alone, rtol=TOLERANCE)
