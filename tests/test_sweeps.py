"""Sweeps: one TensorBoard run per setting, HParams to compare them, a summary at the end.

The story: "how does the estimate of k degrade as noise grows?" A 3-value noise sweep runs
once through the real console script (`noise_sweep`, conftest.py: shared with
tests/test_board.py, only read); every test reads what it left on disk with
TensorBoard's own readers (the event multiplexer and the HParams plugin's backend).
"""

from __future__ import annotations

import csv
import json
import math
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
from tensorboard.plugins.hparams import metadata

from pipeline import api
from pipeline.data import LinearData
from pipeline.readback.runs import load_run
from pipeline.sweeps.naming import constant_keys, job_dir_name, run_name
from tests.conftest import NOISE_LEVELS as NOISE
from tests.conftest import TBPIPE, compose_config, hparams_session_groups, run_tbpipe

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def multiplexer(root: Path) -> pem.EventMultiplexer:
    """TensorBoard's view of a log dir: every run under it, loaded."""
    runs = pem.EventMultiplexer()
    runs.AddRunsFromDirectory(str(root))
    runs.Reload()
    return runs


def job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted((p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()), key=lambda p: p.name)


def test_a_noise_sweep_gives_one_tensorboard_run_per_noise_level(noise_sweep):
    sweep_dir, _ = noise_sweep
    runs = multiplexer(sweep_dir).Runs()
    for writer in ("train", "test"):
        named = sorted(run for run in runs if run.endswith(f"/{writer}"))
        assert len(named) == 3, runs
        # the swept setting alone, short key as the user wrote it; constants stay out
        assert named == [f"{num}_noise_std-{noise}/{writer}" for num, noise in enumerate(NOISE)]
    assert len({run.split("/")[0] for run in runs if "/" in run}) == 3


def test_hparams_tab_lists_each_job_with_its_settings_and_final_metrics(noise_sweep):
    sweep_dir, _ = noise_sweep
    runs = multiplexer(sweep_dir)
    # what the HPARAMS tab asks for: session groups, through the plugin's own backend
    groups = hparams_session_groups(sweep_dir, runs)
    assert len(groups) == 3
    by_noise = {g.hparams["data.noise_std"].number_value: g for g in groups}
    assert sorted(by_noise) == sorted(float(n) for n in NOISE)
    for noise, group in by_noise.items():
        job = next(d for d in job_dirs(sweep_dir) if d.name == group.name)
        metrics = json.loads((job / "metrics.json").read_text())
        assert group.hparams["seed"].number_value == 0
        assert group.hparams["trainer.steps"].number_value == 150
        assert group.hparams["model"].string_value == "LinearModel"
        assert group.hparams["optimizer"].string_value == "SGD"
        assert group.hparams["optimizer.learning_rate"].number_value == 0.5
        values = {(m.name.group, m.name.tag): m.value for m in group.metric_values}
        assert values[("train", "k")] == pytest.approx(metrics["k"], rel=1e-6), noise
        assert values[("train", "k/error")] == pytest.approx(metrics["k_error"], rel=1e-5)
        assert values[("test", "loss")] == pytest.approx(metrics["test_loss"], rel=1e-6)
    # the sweep root names the metrics, grouped by the run they live in
    content = runs.PluginRunToTagToContent(metadata.PLUGIN_NAME)["."][metadata.EXPERIMENT_TAG]
    experiment = metadata.parse_experiment_plugin_data(content)
    assert [(m.name.group, m.name.tag) for m in experiment.metric_infos] == [
        ("train", "k/error"),  # the column the sweep is about, first
        ("test", "loss"),
        ("train", "loss"),
        ("train", "k"),
    ]
    # only what differs between the jobs is an axis; the constants are in each session
    assert [h.name for h in experiment.hparam_infos] == ["data.noise_std"]


def test_the_estimate_of_k_degrades_as_noise_grows(noise_sweep):
    sweep_dir, _ = noise_sweep
    final_error = [load_run(job / "train").scalars("k/error")[-1][1] for job in job_dirs(sweep_dir)]
    assert final_error[0] < final_error[1] < final_error[2], final_error
    # deterministic for seed 0: the numbers of this sweep, to 3 significant digits
    assert final_error == pytest.approx([0.000867, 0.0433, 0.173], rel=1e-2)


def test_summary_csv_has_one_row_per_job_with_its_final_metrics(noise_sweep):
    sweep_dir, printed = noise_sweep
    with open(sweep_dir / "summary.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 3
    for row, job, noise in zip(rows, job_dirs(sweep_dir), NOISE, strict=True):
        metrics = json.loads((job / "metrics.json").read_text())
        assert row["dir"] == job.name and row["data.noise_std"] == noise
        assert f"data.noise_std={noise}" in row["overrides"]
        assert row["status"] == "completed" and row["reason"] == ""
        for key in ("k", "k_error", "train_loss", "test_loss", "seconds"):
            assert float(row[key]) == metrics[key], key
        # the standard error of the least-squares slope from the job's own data
        x = LinearData(noise_std=float(noise), seed=0).generate().x_train.astype(np.float64)
        assert float(row["k_stderr"]) == pytest.approx(float(noise) / math.sqrt((x**2).sum()))
    png = (sweep_dir / "summary.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000
    assert "sweep summary (3 jobs)" in printed and printed.count("completed") == 3
    assert "noise: one draw per seed, scaled by noise_std (common random numbers)" in printed


def test_every_job_records_how_to_reproduce_it(noise_sweep):
    sweep_dir, _ = noise_sweep
    job = job_dirs(sweep_dir)[1]
    info = json.loads((job / "run.json").read_text())
    assert info["command"].startswith("tbpipe data.noise_std=0.5 ")
    assert "data.noise_std=0.5" in info["overrides"]
    assert info["config"]["data"]["noise_std"] == 0.5 and info["config"]["data"]["seed"] == 0
    assert set(info["versions"]) >= {"python", "tensorflow", "tensorboard", "hydra-core", "numpy"}
    assert info["versions"]["tensorflow"].startswith("2.21")
    assert shlex.split(info["rerun"]) == ["tbpipe", "rerun", str(job.resolve())]


@pytest.mark.slow
def test_repeated_settings_get_a_dir_each_and_a_diverged_job_stops_no_other(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = run_tbpipe(
        "-m",
        "seed=0,0",  # the same setting twice
        "optimizer.learning_rate=0.5,1000",  # 1000 diverges within a few steps
        "trainer.progress=false",  # excluded from names: it changes no number
        "trainer.steps=50",
        "sinks=[scalars]",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )
    names = [job.name for job in job_dirs(sweep_dir)]
    assert len(set(names)) == 4, names
    # seed=0,0 and every plain override are constant: only the learning rate names a job
    assert names[:2] == ["0_learning_rate-0.5", "1_learning_rate-1000"]
    assert names[2] == "2" + names[0][1:]
    assert all("progress" not in name for name in names)
    with open(sweep_dir / "summary.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["status"] for row in rows] == ["completed", "diverged"] * 2
    assert all(row["reason"] for row in rows[1::2]) and not rows[0]["reason"]
    assert "job 1 diverged: " in result.stdout and "job 3 diverged: " in result.stdout
    # two identical jobs in one process: bit-identical k and loss, step by step
    first, second = (
        {
            (writer, tag): [(step, value.tobytes()) for step, value in points]
            for writer in ("train", "test")
            for tag, points in load_run(sweep_dir / name / writer).series["scalars"].items()
        }
        for name in names[0::2]
    )
    assert first == second and sum(len(points) for points in first.values()) >= 4 * 51


def test_job_names_never_nest_and_stay_unique():
    assert job_dir_name(0, []) == "0"
    assert job_dir_name(3, ["data.path=a/b"]) == "3_path-a-b"
    long_a, long_b = (job_dir_name(1, ["x=" + "a" * 300 + tail]) for tail in ("1", "2"))
    assert long_a != long_b and len(long_a.encode()) <= 200
    # short keys, unless two swept keys end alike; excluded (constant) keys left out
    overrides = ["data.noise_std=0.1", "model.noise_std=2", "seed=1", "trainer.steps=5"]
    assert job_dir_name(2, overrides, ["trainer.steps"]) == (
        "2_data.noise_std-0.1_model.noise_std-2_seed-1"
    )
    # the resolver Hydra uses for hydra.sweep.subdir: overrides as typed, not resolved
    hydra = {"overrides": {"task": ["a.b=c/d", "e=f", "g=${oc.env:NOT_SET_HERE}"]},
             "job": {"config": {"override_dirname": {"exclude_keys": ["e", "g"]}}}}  # fmt: skip
    node = OmegaConf.create({"name": "${tbpipe.job_dir:7}", "hydra": hydra})
    assert node.name == "7_b-c-d"
    # padded to the sweep's width (SweptNames puts it in env_set): job 7 of 12 sorts first
    hydra["job"]["env_set"] = {"TBPIPE_JOB_WIDTH": "2"}
    node = OmegaConf.create({"name": "${tbpipe.job_dir:7}", "hydra": hydra})
    assert node.name == "07_b-c-d"


@pytest.mark.parametrize(
    "overrides",
    [
        ["sinks=[scalars,images]"],
        ["name=a b/c"],
        ['x="it\'s"', "y='$HOME'", "z='a;b|c&d'"],
        ["token=${oc.env:HOME}"],
        ["data.path='/tmp/a b*'", "w={a:1,b:2}", "v='\u2215x`y`'"],
    ],
)
def test_folder_names_are_safe_to_paste_into_a_shell(overrides):
    for name in (job_dir_name(12, overrides, width=3), run_name(None, overrides)):
        assert shlex.quote(name) == name and not set(name) & set("[],=:/\u2215 "), name
    assert job_dir_name(12, ["sinks=[scalars,images]"], width=3) == "012_sinks-scalars-images"
    assert job_dir_name(1, ["data.noise_std=0.5", "seed=-1"]) == "1_noise_std-0.5_seed--1"


def test_only_what_a_sweep_varies_names_its_jobs():
    assert constant_keys(
        ["data.noise_std=0.1,1", "seed=0,0", "+experiment=noise_sweep", "x=range(0,3)",
         "optimizer.learning_rate=tag(log, interval(1e-4, 1))", "trainer.steps=5"]
    ) == ["seed", "experiment", "trainer.steps"]  # fmt: skip


def test_a_single_run_is_named_by_the_user_or_by_what_it_ran():
    assert run_name("my run/1", ["name=x"]) == "my-run-1"
    assert run_name(None, ["+experiment=example3_histogram", "model.hidden=8"]) == (
        "example3_histogram_hidden-8"
    )
    assert run_name(None, ["trainer.progress=false"], ["trainer.progress"]) == "default"


def test_the_noise_sweep_experiment_defines_the_sweep_in_config():
    cfg = compose_config("+experiment=noise_sweep")
    assert list(cfg.sinks) == ["scalars", "images", "hparams"]
    with_hydra = _compose_with_hydra("+experiment=noise_sweep")
    params = with_hydra.hydra.sweeper.params
    assert params["data.noise_std"] == "0.01,0.1,0.5,1,2"


def _compose_with_hydra(*overrides: str):
    return api.compose_config(*overrides)


@pytest.mark.slow  # starts a new process: in `make test`, not `make test-fast`
def test_two_sweeps_started_together_get_two_folders(tmp_path):
    """The default sweep root carries microseconds: two `tbpipe -m` started at once differ."""
    args = [TBPIPE, "--cfg", "hydra", "--package", "hydra.sweep.dir", "--resolve"]
    started = [
        subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    roots = [process.communicate(timeout=60)[0].strip().splitlines()[-1] for process in started]
    assert all(root.startswith("multirun/") for root in roots), roots
    assert roots[0] != roots[1]


@pytest.mark.slow
def test_the_noise_note_says_proportional_only_when_the_jobs_show_it(noise_sweep, basic):
    """A shared noise draw makes |k - k_true| proportional to noise_std once every fit has
    converged (the module's sweep); a sweep stopped early (the suite's shared basic sweep:
    50 steps at the default learning rate) is told it is not."""
    _, printed = noise_sweep
    assert "|k - k_true| is proportional to noise_std by construction" in printed
    _, early, _ = basic
    assert "proportional to noise_std by construction" not in early
    assert "|k - k_true| is not proportional to noise_std here: not every fit converged" in early
