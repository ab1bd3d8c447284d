"""Reproducible experiments: the same config gives bit-identical numbers, run after run.

Three runs of the default experiment, each in its own process: the session's single run
(`default_run`), a sweep with no overrides at all, and a re-run of that sweep's job from
nothing but its saved `.hydra/config.yaml`. Their `k` and `loss` series must match to the
bit, as TensorBoard's reader gives them back.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from pipeline.readback.runs import SCALARS, load_run
from tests.conftest import run_tbpipe

pytestmark = pytest.mark.slow  # every test here runs tbpipe in a subprocess


@pytest.fixture(scope="module")
def default_sweep(tmp_path_factory) -> Path:
    """`tbpipe -m` with no overrides: a sweep of one job, the default experiment."""
    workdir = tmp_path_factory.mktemp("default_sweep")
    sweep_dir = workdir / "sweep"
    run_tbpipe("-m", f"hydra.sweep.dir={sweep_dir}", cwd=workdir)
    return sweep_dir


def series_bytes(run_dir: Path) -> dict[tuple[str, str], list[tuple[int, bytes]]]:
    """Every scalar series (k, k_error, loss) of both writers as (step, raw float32 bytes).

    Equal means bit-identical.
    """
    series = {}
    for writer in ("train", "test"):
        for tag, points in load_run(run_dir / writer).series[SCALARS].items():
            series[writer, tag] = [(step, value.tobytes()) for step, value in points]
    return series


def points_of(series: dict, writer: str, tag: str) -> int:
    """How many points a tag has (summed over name scopes the loop may add, e.g. `cond/k`)."""
    return sum(len(v) for (w, t), v in series.items() if w == writer and t.split("/")[-1] == tag)


def test_a_sweep_with_no_overrides_gives_its_job_a_dir_of_its_own(default_sweep):
    jobs = [path for path in default_sweep.iterdir() if path.is_dir()]
    assert [job.name for job in jobs] == ["0"]
    assert {"train", "test", ".hydra", "metrics.json", "run.json"} <= {
        p.name for p in jobs[0].iterdir()
    }
    assert (default_sweep / "summary.csv").read_text().count("\n") == 2  # header + one job


def test_two_identical_runs_give_bit_identical_k_and_loss(default_run, default_sweep):
    first, second = series_bytes(default_run), series_bytes(default_sweep / "0")
    for writer, tag in (("train", "k"), ("train", "loss"), ("test", "loss")):
        assert points_of(first, writer, tag) == 1001, (writer, tag)  # steps 0..1000
    assert first == second


def test_a_rerun_from_the_saved_config_is_bit_identical(default_sweep, tmp_path):
    job = default_sweep / "0"
    rerun = shlex.split(json.loads((job / "run.json").read_text())["rerun"])
    assert rerun[:2] == ["tbpipe", "rerun"] and Path(rerun[2]) == job.resolve()
    result = run_tbpipe(*rerun[1:], f"hydra.run.dir={tmp_path / 'rerun'}", cwd=tmp_path)
    assert result.stderr == ""
    assert series_bytes(tmp_path / "rerun") == series_bytes(job)
    again = json.loads((tmp_path / "rerun" / "metrics.json").read_text())
    before = json.loads((job / "metrics.json").read_text())
    assert again["k"] == before["k"] and again["test_loss"] == before["test_loss"]
