"""Searches: "which learning rate is best?" answered by Optuna through `tbpipe -m`.

The story: `tbpipe -m hparams_search=lr_optuna` runs a seeded TPE search over the learning
rate; every trial is a TensorBoard run like a grid sweep's job; the sweep root says which
trial won (optimization_results.yaml, summary.csv). The same seed gives the same answer,
and trials that diverge are marked failed without stopping the study. Searches run through
the real console script; what they leave is read back with TensorBoard's own readers.
One search, run twice side by side, tells the whole story: its range reaches rates where
SGD diverges, so the repeat covers the failed trials too.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from tensorboard.backend.event_processing import plugin_event_multiplexer as pem

from pipeline import api
from pipeline.api import check_command_line
from pipeline.check.errors import BadInput
from tests.conftest import TBPIPE, compose_config, hparams_session_groups, run_tbpipe

LR = "optimizer.learning_rate"
#: SGD on the default data diverges above a rate of ~2.7 (100 steps overflow to inf)
DIVERGES_ABOVE = 2.7
#: A small search: 8 trials of 100 steps, the scalars and HParams a comparison needs, over
#: a range that reaches past DIVERGES_ABOVE (its seed draws two such trials, the 6th and the
#: 8th: a failure with a trial after it)
SEARCH = (
    "-m",
    "hparams_search=lr_optuna",
    f"{LR}=tag(log, interval(1e-4, 30))",
    "hydra.sweeper.n_trials=8",
    "trainer.steps=100",
    "trainer.progress=false",
    "sinks=[scalars,hparams]",
)


@pytest.fixture(scope="module")
def two_searches(tmp_path_factory) -> list[tuple[Path, str]]:
    """The same seeded search twice, side by side: each sweep dir and what it printed."""
    workdir = tmp_path_factory.mktemp("search")
    dirs = [workdir / "first", workdir / "second"]
    searches = [
        subprocess.Popen(
            [TBPIPE, *SEARCH, f"hydra.sweep.dir={sweep_dir}"],
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for sweep_dir in dirs
    ]
    printed = []
    for search in searches:
        out, err = search.communicate(timeout=300)
        assert search.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"
        printed.append(out)
    return list(zip(dirs, printed, strict=True))


def summary_rows(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "summary.csv", newline="") as stream:
        return list(csv.DictReader(stream))


def trial_dirs(sweep_dir: Path) -> list[Path]:
    jobs = [path for path in sweep_dir.iterdir() if (path / ".hydra").is_dir()]
    return sorted(jobs, key=lambda path: int(path.name.split("_")[0]))


def test_a_seeded_search_finds_the_same_best_learning_rate_twice(two_searches):
    (first, printed), (second, _) = two_searches
    results = [OmegaConf.load(sweep / "optimization_results.yaml") for sweep in (first, second)]
    assert results[0] == results[1]
    best_lr = results[0].best_params[LR]
    assert 1e-4 <= best_lr <= DIVERGES_ABOVE
    # the trials themselves repeat: same learning rates, test losses, statuses
    runs = [
        [(row[LR], row["test_loss"], row["status"]) for row in summary_rows(s)]
        for s in (first, second)
    ]
    assert runs[0] == runs[1] and len(runs[0]) == 8
    assert "best trial: job " in printed and f"{LR}={best_lr}" in printed


def test_the_best_trial_beats_or_ties_the_default_learning_rate(two_searches, tmp_path):
    from pipeline import app

    sweep_dir, _ = two_searches[0]
    rows = summary_rows(sweep_dir)
    best = [row for row in rows if row["trial"] == "best"]
    assert len(best) == 1, rows
    results = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert float(best[0][LR]) == results.best_params[LR]
    assert float(best[0]["objective"]) == float(best[0]["test_loss"]) == results.best_value
    assert all(float(row["objective"]) >= results.best_value for row in rows)
    # the default configuration (its learning rate) with the same 100 steps, in process
    cfg = compose_config("trainer.steps=100", "trainer.progress=false", "sinks=[scalars]")
    default = app.run(cfg, tmp_path / "default")
    assert default["status"] == "completed"
    assert results.best_value <= default["test_loss"]


def test_learning_rates_are_drawn_on_a_log_scale_within_the_search_space(two_searches):
    sweep_dir, _ = two_searches[0]
    rates = [float(row[LR]) for row in summary_rows(sweep_dir)]
    assert all(1e-4 <= rate <= 30 for rate in rates) and len(set(rates)) == 8
    # uniform on [1e-4, 30] would put 1 draw in 300 below 0.1; a log scale, half of them
    assert sum(rate < 0.1 for rate in rates) >= 2, rates


def test_every_trial_is_a_tensorboard_run_named_and_tagged_like_a_sweep_job(two_searches):
    from tensorboard.plugins.hparams import api_pb2

    sweep_dir, _ = two_searches[0]
    jobs = trial_dirs(sweep_dir)
    rows = summary_rows(sweep_dir)
    assert [job.name for job in jobs] == [row["dir"] for row in rows]
    runs = pem.EventMultiplexer()
    runs.AddRunsFromDirectory(str(sweep_dir))
    runs.Reload()
    for num, (job, row) in enumerate(zip(jobs, rows, strict=True)):
        assert job.name == f"{num}_learning_rate-{row[LR]}"  # the swept setting only
        assert {f"{job.name}/train", f"{job.name}/test"} <= set(runs.Runs())
        metrics = json.loads((job / "metrics.json").read_text())
        assert metrics["status"] == row["status"]
        if row["status"] == "completed":
            assert metrics["steps"] == 100
    # the HPARAMS tab, through the plugin's own backend: one session group per trial
    groups = hparams_session_groups(sweep_dir, runs)
    assert len(groups) == 8
    by_name = {group.name: group for group in groups}
    for job, row in zip(jobs, rows, strict=True):
        group = by_name[job.name]
        assert group.hparams[LR].number_value == pytest.approx(float(row[LR]))
        assert group.hparams["trainer.steps"].number_value == 100
        (session,) = group.sessions
        if row["status"] != "completed":  # a diverged trial: a failed session, no metrics
            assert session.status == api_pb2.STATUS_FAILURE
            continue
        assert session.status == api_pb2.STATUS_SUCCESS
        values = {(m.name.group, m.name.tag): m.value for m in group.metric_values}
        assert values[("test", "loss")] == pytest.approx(float(row["test_loss"]), rel=1e-6)


def test_diverging_trials_are_marked_failed_and_the_study_goes_on(two_searches):
    sweep_dir, printed = two_searches[0]
    rows = summary_rows(sweep_dir)
    failed = [row for row in rows if row["trial"] == "failed"]
    assert len(failed) >= 2, rows
    for row in failed:
        assert row["status"] == "diverged" and row["reason"]
        assert float(row[LR]) > DIVERGES_ABOVE
        assert float(row["objective"]) == math.inf
        assert f"job {row['job']} diverged: " in printed
    # trials after the first failure still ran to the end
    first_failure = int(failed[0]["job"])
    assert any(row["status"] == "completed" for row in rows if int(row["job"]) > first_failure), (
        rows
    )
    best = [row for row in rows if row["trial"] == "best"]
    assert len(best) == 1 and best[0]["status"] == "completed"
    completed = [float(row["objective"]) for row in rows if row["status"] == "completed"]
    assert float(best[0]["objective"]) == min(completed)
    results = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert results.best_value == min(completed) and math.isfinite(results.best_value)


def test_the_search_config_sets_a_seeded_minimising_optuna_study():
    cfg = api.compose_config("hparams_search=lr_optuna")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "minimize"
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    assert isinstance(sweeper.sampler.seed, int) and sweeper.n_trials >= 8
    assert sweeper.params[LR] == "tag(log, interval(1e-4, 1))"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (f"{LR}=tag(log,interval(0,1))", "a log scale needs a low end above 0"),
        (f"{LR}=interval(-1,1)", f"bad value {LR}=-1.0: must be"),
        ("optimizer=choice(sgd,adamw)", "unknown option optimizer=adamw"),
        ("hydra.sweeper.n_trials=0", "bad value hydra.sweeper.n_trials=0"),
    ],
)
def test_a_bad_search_space_is_one_line_before_anything_runs(override, expected, tmp_path):
    argv = ["-m", "hparams_search=lr_optuna", override, f"hydra.sweep.dir={tmp_path / 's'}"]
    with pytest.raises(BadInput) as error:
        check_command_line(argv)
    assert expected in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "s").exists()


@pytest.mark.slow  # starts a new process: in `make test`, not `make test-fast`
def test_a_typo_in_a_search_config_is_one_line_from_the_console_script(tmp_path):
    searches = tmp_path / "conf" / "hparams_search"
    searches.mkdir(parents=True)
    (searches / "typo.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n  - override /hydra/sweeper: optuna\n"
        "hydra:\n  sweeper:\n    params:\n"
        "      optimizer.learning_rat: tag(log, interval(1e-4, 1))\n"
    )
    sweep_dir = tmp_path / "sweep"
    result = run_tbpipe(
        "-m",
        "--config-dir",
        str(tmp_path / "conf"),
        "hparams_search=typo",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "optimizer.learning_rat" in lines[0], result.stderr
    assert not sweep_dir.exists()


def test_a_search_without_the_optuna_sweeper_says_what_to_install(monkeypatch, tmp_path):
    import importlib.util

    real_find_spec = importlib.util.find_spec

    def without_optuna_sweeper(name, *args):  # as on an install without tbpipe[search]
        return None if name == "hydra_plugins.hydra_optuna_sweeper" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_optuna_sweeper)
    with pytest.raises(BadInput, match=r"pip install 'tbpipe\[search\]'"):
        check_command_line(["-m", "hparams_search=lr_optuna", f"hydra.sweep.dir={tmp_path}/a"])
    check_command_line(
        ["-m", "data.noise_std=0.1,1", f"hydra.sweep.dir={tmp_path}/b"]
    )  # a grid sweep needs no sweeper plugin
