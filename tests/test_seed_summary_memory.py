"""The seed summary streams the jobs' events: the mean runs it writes are those of the
earlier summary (every job's series held at once, averaged with numpy), and its memory does
not grow with the number of seeds."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from pipeline.board_plugin.sweep_view import last_per_step, read_job_series
from pipeline.readback.runs import load_run
from pipeline.sweeps.replicates import SeedStatistics, setting_statistics
from tests.conftest import run_tbpipe

NOISES = (0.1, 1.0)
SEEDS = (0, 1, 2)
STEPS = 300


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory) -> Path:
    """A real 2 x 3 sweep of short runs, scalars only."""
    workdir = tmp_path_factory.mktemp("seed-memory")
    sweep_dir = workdir / "sweep"
    result = run_tbpipe(
        "-m", f"data.noise_std={','.join(map(str, NOISES))}", f"seed={','.join(map(str, SEEDS))}",
        f"trainer.steps={STEPS}", "sinks=[scalars]", "trainer.progress=false",
        f"hydra.sweep.dir={sweep_dir}", cwd=workdir,
    )  # fmt: skip
    assert "Traceback" not in result.stderr and "ERROR" not in result.stderr, result.stderr
    return sweep_dir


def job_scalars(job_dir: Path) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """writer -> tag -> [(step, value)] in step order, for every scalar a job wrote."""
    return {
        writer: {
            tag: list(zip(steps.tolist(), values.tolist(), strict=True))
            for tag, (steps, values) in tags.items()
        }
        for writer, tags in read_job_series(job_dir).items()
    }


def as_series(job: dict[str, dict[str, list[tuple[int, float]]]]) -> dict:
    """A job's [(step, value)] lists in the form SeedStatistics takes (each step's last value)."""
    return {
        w: {tag: last_per_step(points) for tag, points in tags.items()} for w, tags in job.items()
    }


def held_mean_and_band(jobs: list[dict]) -> dict:
    """The earlier summary, as it was: every job's series held (step -> value, the last
    value of a step written twice), numpy mean and std (n - 1) over the shared steps."""
    jobs = [
        {w: {tag: dict(points) for tag, points in tags.items()} for w, tags in job.items()}
        for job in jobs
    ]
    out: dict = {}
    for writer in sorted(set.intersection(*(set(job) for job in jobs))):
        for tag in sorted(set.intersection(*(set(job[writer]) for job in jobs))):
            steps = sorted(set.intersection(*(set(job[writer][tag]) for job in jobs)))
            values = np.array([[job[writer][tag][step] for step in steps] for job in jobs])
            mean = values.mean(axis=0)
            std = values.std(axis=0, ddof=1) if len(jobs) > 1 else np.zeros_like(mean)
            out.setdefault(writer, {})[tag] = [
                (s, m, m - d, m + d) for s, m, d in zip(steps, mean, std, strict=True)
            ]
    return out


def assert_same(streamed: dict, held: dict) -> None:
    assert {w: sorted(tags) for w, tags in streamed.items()} == {
        w: sorted(tags) for w, tags in held.items()
    }
    for writer, tags in held.items():
        for tag, rows in tags.items():
            got = np.array(streamed[writer][tag])
            assert got[:, 0].tolist() == [row[0] for row in rows]
            np.testing.assert_allclose(got[:, 1:], np.array(rows)[:, 1:], rtol=1e-12, atol=1e-15)


@pytest.mark.slow
def test_the_written_mean_runs_are_those_of_the_held_summary(small_sweep):
    for noise in NOISES:
        jobs = sorted(small_sweep.glob(f"*_noise_std-{noise}_*"))
        assert len(jobs) == len(SEEDS)
        held = held_mean_and_band([job_scalars(job) for job in jobs])
        assert set(held) == {"train", "test"} and "k" in held["train"]
        for writer, tags in held.items():
            mean_run = load_run(small_sweep / "mean" / f"noise_std-{noise}" / writer)
            for tag, rows in tags.items():
                assert [step for step, _ in mean_run.scalars(tag)] == list(range(STEPS + 1))
                for name, column in (
                    (tag, 1),
                    (f"spread/{tag}/mean", 1),
                    (f"spread/{tag}/lower", 2),
                    (f"spread/{tag}/upper", 3),
                ):
                    written = np.array([v for _, v in mean_run.scalars(name)])
                    expected = np.array([row[column] for row in rows], dtype=np.float32)
                    np.testing.assert_allclose(written, expected, rtol=1e-6, atol=1e-9)


@pytest.mark.slow
def test_steps_tags_and_repeated_steps_are_taken_as_the_held_summary_took_them(small_sweep):
    """Jobs that do not all have the same steps or tags (a job cut short, a step written
    twice by a restarted writer, a tag only one job wrote): only what every job has."""
    jobs = [job_scalars(job) for job in sorted(small_sweep.glob("*_noise_std-*"))]
    short = jobs[1]["train"]["k"][: STEPS // 2]  # cut short
    jobs[1]["train"]["k"] = short
    again = jobs[2]["train"]["loss"]
    jobs[2]["train"]["loss"] = [*again[:100], (99, 123.0), (100, -5.0), *again[100:]]
    jobs[0]["train"]["only_here"] = [(0, 1.0), (1, 2.0)]
    del jobs[3]["test"]  # a writer one job lacks
    statistics = SeedStatistics()
    for job in jobs:
        statistics.add_series(as_series(job))
    streamed = statistics.mean_and_band()
    assert_same(streamed, held_mean_and_band(jobs))
    assert len(streamed["train"]["k"]) == STEPS // 2 and "test" not in streamed
    one = SeedStatistics()
    one.add_series(as_series(jobs[0]))
    assert_same(one.mean_and_band(), held_mean_and_band(jobs[:1]))


@pytest.mark.slow
def test_the_summarys_memory_does_not_grow_with_the_number_of_seeds(small_sweep):
    jobs = sorted(small_sweep.glob("*_noise_std-*"))

    def peak(job_dirs: list[Path], hold: bool) -> int:
        tracemalloc.start()
        try:
            if hold:
                held_mean_and_band([job_scalars(job) for job in job_dirs])
            else:
                setting_statistics(job_dirs).mean_and_band()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    # two jobs, not one: the first job also pays one-off costs (imports, caches)
    two, six = peak(jobs[:2], hold=False), peak(jobs, hold=False)
    assert six < 1.25 * two, (two, six)
    # the held way grows with every job (here 2.5 times from two jobs to six)
    held_two, held_six = peak(jobs[:2], hold=True), peak(jobs, hold=True)
    assert held_six > 2 * held_two, (held_two, held_six)
