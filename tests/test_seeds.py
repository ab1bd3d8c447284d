"""Many seeds, one answer: a settings x seeds sweep is summarised per setting, in the CSV,
the printed table, `tbpipe report --group-by`, the API, and as mean runs with a band
(CUSTOM SCALARS' layout as a live TensorBoard serves it: tests/test_landing.py, which serves
the same sweep); and the scatter of k across seeds is what the theory of least squares says."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from pipeline import api
from pipeline.readback.groups import t_quantile_975
from pipeline.readback.runs import load_run
from tests.conftest import run_tbpipe

#: the shared grid's settings (conftest.py's GRID): noise x learning rate, 3 seeds each
NOISES, RATES, SEEDS = ("0.1", "1"), (0.5, 1000.0), (0, 1, 2)  # 1000 diverges
SETTINGS = [(float(noise), rate) for noise in NOISES for rate in RATES]
#: the tutorial's fit, spelled out so a change of defaults does not change this test
FIT = ("optimizer=sgd", "optimizer.learning_rate=0.5", "trainer.progress=false")


@pytest.fixture(scope="module")
def seed_sweep(grid_sweep) -> tuple[Path, str]:
    """The suite's shared settings x seeds sweep (conftest.py's `grid_sweep`, through the
    console script; only read here): 2 noise levels x 2 learning rates, 3 seeds each, the
    learning rate 1000 diverging within a few steps."""
    sweep_dir, stdout, stderr = grid_sweep
    assert "Traceback" not in stderr and "ERROR" not in stderr, stderr
    return sweep_dir, stdout


def setting_of(row: dict) -> tuple[float, float]:
    return float(row["data.noise_std"]), float(row["optimizer.learning_rate"])


def jobs_metrics(sweep_dir: Path) -> dict[tuple[float, float], list[dict]]:
    """Each job's metrics.json, by setting, read straight from the files."""
    out: dict[tuple[float, float], list[dict]] = {}
    for path in sweep_dir.glob("*/metrics.json"):
        overrides = (path.parent / ".hydra" / "overrides.yaml").read_text().replace("'", "")
        typed = dict(line[2:].split("=", 1) for line in overrides.splitlines())
        out.setdefault(setting_of(typed), []).append(json.loads(path.read_text()))
    return out


def grouped_csv(sweep_dir: Path) -> list[dict]:
    with open(sweep_dir / "summary_by_setting.csv") as stream:
        return list(csv.DictReader(stream))


def test_the_95_percent_t_quantile_is_scipy_stats_own_for_every_count_of_seeds():
    """The intervals use scipy.special's stdtrit, not scipy.stats (a slower import): the
    same float as Student's t distribution's ppf gives, for 2 to 1,000 seeds."""
    from scipy.stats import t

    for df in range(1, 1000):
        assert t_quantile_975(df) == float(t.ppf(0.975, df)), df
    assert t_quantile_975(2) == pytest.approx(4.302652729911275)  # the textbook value


@pytest.mark.slow
def test_grouped_means_and_stds_equal_those_of_the_jobs_metrics(seed_sweep):
    sweep_dir, stdout = seed_sweep
    rows = grouped_csv(sweep_dir)
    assert [setting_of(r) for r in rows] == SETTINGS
    by_setting = jobs_metrics(sweep_dir)
    for row in rows:
        jobs = by_setting[setting_of(row)]
        assert len(jobs) == 3
        if setting_of(row)[1] == 1000.0:  # diverged: counted, nothing averaged (below)
            continue
        assert (int(row["n"]), int(row["failed"])) == (3, 0)
        for metric in ("k", "k_error", "train_loss", "test_loss"):
            values = np.array([job[metric] for job in jobs])
            assert float(row[f"{metric}_mean"]) == pytest.approx(values.mean(), rel=1e-12)
            assert float(row[f"{metric}_std"]) == pytest.approx(values.std(ddof=1), rel=1e-9)
            half = t_quantile_975(2) * values.std(ddof=1) / math.sqrt(3)
            assert float(row[f"{metric}_ci95_low"]) == pytest.approx(values.mean() - half)
    printed = stdout.split("sweep summary", 1)[1]
    assert "95% interval of k" in printed  # the printed table is the grouped one
    table = printed.split("95% interval of k", 1)[1].split("\n\n", 1)[0]
    assert table.count("data.noise_std=") == len(SETTINGS)  # one line per setting


def report_in_process(capsys, *args: str) -> str:
    """What `tbpipe report <args>` prints, run in this process (`report.main`): the
    console script's own `report --group-by` is the test below."""
    from pipeline.readback import report

    capsys.readouterr()
    assert report.main(list(args)) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


@pytest.mark.slow
def test_report_and_api_give_the_summarys_grouped_table(seed_sweep, capsys):
    sweep_dir, _ = seed_sweep
    report = json.loads(report_in_process(capsys, str(sweep_dir), "--group-by", "--json"))
    assert report["group_by"] == ["data.noise_std", "optimizer.learning_rate"]
    from_csv = grouped_csv(sweep_dir)
    for record, row in zip(report["groups"], from_csv, strict=True):
        if row["k_mean"] == "":  # a setting whose every job diverged
            assert record["k_mean"] is None and record["failed"] == 3
        else:
            assert record["k_mean"] == pytest.approx(float(row["k_mean"]), rel=1e-12)
    assert [r["k_std"] for r in api.settings_table(sweep_dir)] == [
        r["k_std"] for r in report["groups"]
    ]
    by_seed = api.settings_table(sweep_dir, group_by=["seed"])
    assert [r["seed"] for r in by_seed] == list(SEEDS)
    assert {(r["n"], r["failed"]) for r in by_seed} == {(2, 2)}  # half of each seed's diverged
    bad = run_tbpipe("report", str(sweep_dir), "--group-by", "nosuch", cwd=sweep_dir, check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "nosuch" in bad.stderr


@pytest.mark.slow
def test_report_group_by_prints_the_table_the_sweep_printed_and_its_csv(seed_sweep, capsys):
    sweep_dir, printed = seed_sweep
    table = run_tbpipe("report", str(sweep_dir), "--group-by", cwd=sweep_dir)
    assert table.stderr == "" and table.stdout.count("\n") == 1 + len(SETTINGS)
    assert table.stdout in printed
    as_csv = report_in_process(capsys, str(sweep_dir), "--group-by", "--csv")
    written = (sweep_dir / "summary_by_setting.csv").read_bytes().decode()
    assert as_csv == written.replace("\r\n", "\n")


@pytest.mark.slow
def test_each_settings_mean_run_is_the_per_step_mean_of_its_jobs(seed_sweep):
    sweep_dir, _ = seed_sweep
    for noise in NOISES:  # the settings that did not diverge
        setting = f"noise_std-{noise}_learning_rate-0.5"
        jobs = sorted(sweep_dir.glob(f"*_{setting}_*"))
        assert len(jobs) == 3
        for writer, tag in (("train", "k"), ("train", "loss"), ("test", "loss")):
            mean_run = load_run(sweep_dir / "mean" / setting / writer)
            series = [dict(load_run(job / writer).scalars(tag)) for job in jobs]
            steps = sorted(series[0])
            values = np.array([[s[step] for step in steps] for s in series])
            mean, std = values.mean(axis=0), values.std(axis=0, ddof=1)
            assert [step for step, _ in mean_run.scalars(tag)] == steps
            written = np.array([v for _, v in mean_run.scalars(tag)])
            np.testing.assert_allclose(written, mean.astype(np.float32), rtol=1e-6)
            upper = np.array([v for _, v in mean_run.scalars(f"spread/{tag}/upper")])
            np.testing.assert_allclose(upper, (mean + std).astype(np.float32), rtol=1e-5)


@pytest.mark.slow
def test_a_failed_job_is_counted_and_left_out(grid_sweep):
    """The suite's shared grid (conftest.py): 2 noise levels x learning rates 0.5 and 1000
    (diverges within a few steps) x 3 seeds."""
    sweep_dir, _, _ = grid_sweep
    rows = {
        (float(r["data.noise_std"]), float(r["optimizer.learning_rate"])): r
        for r in grouped_csv(sweep_dir)
    }
    assert sorted(rows) == [(0.1, 0.5), (0.1, 1000.0), (1.0, 0.5), (1.0, 1000.0)]
    for noise in (0.1, 1.0):
        assert (rows[noise, 0.5]["n"], rows[noise, 0.5]["failed"]) == ("3", "0")
        failed = rows[noise, 1000.0]
        assert (failed["n"], failed["failed"]) == ("0", "3") and failed["k_mean"] == ""
    # the failed settings have nothing to average: only the others get a seed-mean run
    assert sorted(path.name for path in (sweep_dir / "mean").iterdir()) == [
        "noise_std-0.1_learning_rate-0.5",
        "noise_std-1_learning_rate-0.5",
    ]


@pytest.mark.slow
def test_the_scatter_of_k_across_30_seeds_is_the_least_squares_standard_error(tmp_path):
    """std of k over 30 seeds at noise 0.1, 0.5, 1 within 35% of sigma / sqrt(sum x^2).

    Only the jobs' final k is read (summary_by_setting.csv): the fit's error shrinks by
    1 - 2 * 0.5 * E[x^2] = 2/3 a step, below float32's resolution of k well within 50
    steps. The launcher is not the point: the stacked one trains the 90 jobs as one and,
    with scalars alone, writes each job straight from the group's tensors."""
    sweep_dir = tmp_path / "sweep"
    swept = run_tbpipe(
        "-m", "data.noise_std=0.1,0.5,1", "seed=range(30)", "trainer.steps=50",
        "sinks=[scalars]", "hydra/launcher=stacked", *FIT, f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert "stacked 90 of 90 jobs in 1 group" in swept.stdout, swept.stdout
    for row in grouped_csv(sweep_dir):
        assert int(row["n"]) == 30
        ratio = float(row["k_std"]) / float(row["k_stderr"])
        assert 0.65 < ratio < 1.35, (row["data.noise_std"], ratio)
