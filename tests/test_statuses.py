"""Statuses that never lie: every way out of a run leaves no run dir or an honest status
(never a stray reserve), `tbpipe status` and `tbpipe report` say how each run of a folder
of runs ended, and a diverged job's last values are the same in its event files,
metrics.json, the report, the sweep's summary.csv and on the console.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import signal
from pathlib import Path

import pytest

from pipeline import api
from pipeline.runinfo import RESERVE_FILE
from tests.conftest import run_tbpipe


def run_dirs(root: Path) -> list[Path]:
    return sorted(path.parent for path in root.rglob("metrics.json"))


@pytest.fixture(scope="module")
def folder_of_runs(tmp_path_factory) -> Path:
    """outputs/ with a completed run and a diverged one, as a user's working dir has it
    (made in this process, `pipeline.api`: the console script's run dirs and metrics)."""
    workdir = tmp_path_factory.mktemp("runs")
    with contextlib.chdir(workdir):
        api.run_experiment("trainer.steps=5")
        diverged = api.run_experiment("optimizer.learning_rate=10", "trainer.steps=50",
                                      "name=too_fast")  # fmt: skip
    assert diverged.metrics["status"] == "diverged", diverged.metrics
    return workdir


@pytest.mark.slow
def test_status_of_a_folder_of_single_runs_says_how_each_ended(folder_of_runs):
    result = run_tbpipe("status", "outputs", cwd=folder_of_runs, check=False)
    assert result.returncode == 1 and result.stderr == ""  # not every run completed
    lines = result.stdout.splitlines()
    (completed,) = [line for line in lines if " completed " in line]
    (diverged,) = [line for line in lines if " diverged " in line]
    assert "_steps-5" in completed and "23 / 50" in diverged and diverged.endswith("_too_fast")
    assert lines[-1] == "2 jobs: 1 completed, 1 diverged"
    rows = json.loads(run_tbpipe("status", "outputs", "--json", cwd=folder_of_runs,
                                 check=False).stdout)  # fmt: skip
    assert sorted(row["state"] for row in rows) == ["completed", "diverged"]


@pytest.mark.slow
def test_report_of_a_folder_of_single_runs_shows_each_runs_status(folder_of_runs):
    result = run_tbpipe("report", "outputs", "--json", cwd=folder_of_runs)
    assert result.stderr == ""
    shown = {row["run"]: row for row in json.loads(result.stdout)["runs"]}
    states = {
        name.rsplit("/", 1)[0].rsplit("_", 1)[-1]: row["status"] for name, row in shown.items()
    }
    assert states == {"steps-5": "completed", "fast": "diverged"}
    table = run_tbpipe("report", "outputs", cwd=folder_of_runs).stdout.splitlines()
    assert table[0].split()[:3] == ["run", "status", "step"]


def last_scalars(event_dir: Path) -> dict[str, tuple[int, float]]:
    """Each tag's last (step, value) in `event_dir`, through TensorBoard's own reader."""
    from tensorboard.backend.event_processing import plugin_event_accumulator as pea
    from tensorboard.util import tensor_util

    accumulator = pea.EventAccumulator(str(event_dir), size_guidance={pea.TENSORS: 0})
    accumulator.Reload()
    last = {}
    for tag in accumulator.Tags()["tensors"]:
        events = accumulator.Tensors(tag)
        if events and events[-1].tensor_proto.dtype in (1, 2):  # float, double: scalars
            value = tensor_util.make_ndarray(events[-1].tensor_proto)
            if value.shape == ():
                last[tag] = (events[-1].step, float(value))
    return last


@pytest.mark.slow
def test_a_diverged_jobs_last_values_are_the_same_everywhere(tmp_path):
    """The loss of step 23 is Inf: the run ends there, and its event files (TensorBoard),
    metrics.json, summary.csv, `tbpipe report` and the console all give the model after 23
    updates: its k (finite), its loss non-finite (Inf in the events, null or empty where
    strict JSON or a number column cannot hold it)."""
    sweep = run_tbpipe("-m", "optimizer.learning_rate=10,0.1", "trainer.steps=50",
                       "sinks=[scalars]", "hydra.sweep.dir=sweep", cwd=tmp_path)  # fmt: skip
    lines = (tmp_path / "sweep" / "summary.csv").read_text().splitlines()
    summary = {row["job"]: row for row in csv.DictReader(lines)}
    report = json.loads(run_tbpipe("report", "sweep", "--json", cwd=tmp_path).stdout)
    shown = {row["run"]: row for row in report["runs"]}
    for job, name in (("0", "0_learning_rate-10"), ("1", "1_learning_rate-0.1")):
        train, test = shown[f"{name}/train"], shown[f"{name}/test"]
        metrics = json.loads((tmp_path / "sweep" / name / "metrics.json").read_text())
        events = {
            f"{writer}/{tag}": point
            for writer in ("train", "test")
            for tag, point in last_scalars(tmp_path / "sweep" / name / writer).items()
        }
        steps = metrics["steps"]
        assert train["status"] == summary[job]["status"] == metrics["status"]
        assert train["step"] == test["step"] == int(summary[job]["steps"]) == steps
        assert {step for step, _ in events.values()} == {steps}
        assert set(events) == set(metrics["final"])
        for key, (_, value) in events.items():
            recorded = metrics["final"][key]
            if recorded is None:  # NaN or Inf: null in strict JSON
                assert not math.isfinite(value), key
            else:
                assert value == pytest.approx(recorded, rel=1e-6), key
        assert train["scalars"]["k"] == pytest.approx(float(summary[job]["k"]), rel=1e-6)
        assert events["train/k"][1] == pytest.approx(float(summary[job]["k"]), rel=1e-6)
    assert summary["0"]["status"] == "diverged" and summary["0"]["train_loss"] == ""
    assert shown["0_learning_rate-10/train"]["scalars"]["loss"] is None  # NaN or Inf: null
    assert math.isfinite(float(summary["0"]["k"]))
    assert f"at step {summary['0']['steps']};" in sweep.stderr  # the console says the same
    (row,) = [line.split() for line in sweep.stdout.splitlines() if line.startswith("  0 ")]
    assert float(row[1]) == pytest.approx(float(summary["0"]["k"]), rel=1e-2)  # 3 digits


@pytest.mark.slow
def test_hydra_full_error_leaves_a_failed_run_and_no_reserve(tmp_path):
    result = run_tbpipe("trainer.steps=5", "sinks.scalars._target_=pipeline.sinks.nope.NopeSink",
                        cwd=tmp_path, check=False, env={"HYDRA_FULL_ERROR": "1"})  # fmt: skip
    assert result.returncode == 1 and "Traceback (most recent call last):" in result.stderr
    (run_dir,) = run_dirs(tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "NopeSink" in metrics["reason"]
    assert not (run_dir / RESERVE_FILE).exists()
    assert "ended: failed" in (run_dir / "tbpipe.log").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("full_error", ["", "1"])
def test_an_error_before_the_job_starts_leaves_no_run_dir(full_error, tmp_path):
    """Hydra fails before it calls the job (here: its logging config): the run dir tbpipe
    made for it holds nothing of a run, so it goes."""
    env = {"HYDRA_FULL_ERROR": full_error} if full_error else {"HYDRA_FULL_ERROR": ""}
    result = run_tbpipe("hydra.job_logging.version=2", "trainer.steps=5", cwd=tmp_path,
                        check=False, env=env)  # fmt: skip
    assert result.returncode == 1 and "Unsupported version: 2" in result.stderr
    assert run_dirs(tmp_path) == [] and list(tmp_path.rglob(RESERVE_FILE)) == []
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []


SIGNAL_SINK = '''
import os
import signal

from pipeline.sinks.base import Sink


class SignalAfterSteps(Sink):
    """Sends its own process SIGTERM once the run has done all its steps: as it ends
    (`finish`), or as it records the final state (`record` at the last step)."""

    in_graph = False

    def __init__(self, at: str = "finish", steps: int = 0):
        super().__init__()
        self.at, self.steps = at, steps

    def start(self, experiment):
        pass

    def record(self, experiment, step, stats):
        if self.at == "record" and int(step) == self.steps:
            os.kill(os.getpid(), signal.SIGTERM)

    def finish(self, experiment, status):
        if self.at == "finish":
            os.kill(os.getpid(), signal.SIGTERM)
'''


@pytest.mark.slow
@pytest.mark.parametrize("at", ["finish", "record"])
def test_sigterm_after_a_jobs_last_step_completes_it_and_stops_the_sweep(at, tmp_path):
    (tmp_path / "signal_sink.py").write_text(SIGNAL_SINK)
    result = run_tbpipe(
        "-m", "seed=0,1", "trainer.steps=20", "sinks=[scalars]",
        "+sinks.stop._target_=signal_sink.SignalAfterSteps",
        f"+sinks.stop.at={at}", "+sinks.stop.steps=20", "hydra.sweep.dir=sweep",
        cwd=tmp_path, check=False,
    )  # fmt: skip
    assert result.returncode == 128 + signal.SIGTERM, result.stderr
    assert "SIGTERM received after the last step of sweep/0_seed-0 (completed)" in result.stderr
    metrics = json.loads((tmp_path / "sweep" / "0_seed-0" / "metrics.json").read_text())
    assert (metrics["status"], metrics["steps"]) == ("completed", 20)
    status = json.loads(run_tbpipe("status", "sweep", "--json", cwd=tmp_path, check=False).stdout)
    assert [row["state"] for row in status] == ["completed", "pending"]  # the sweep stopped
