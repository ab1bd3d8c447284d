"""Your model, your data: a user's Keras model on their own data, the bundled examples, and
the tutorial's line as one task among others, read back as a user would see them.

Each run is the real `tbpipe` in a subprocess; what it wrote is read with TensorBoard's
reader (`pipeline.readback.runs.load_run`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.readback.runs import load_run
from tests.conftest import run_tbpipe

pytestmark = pytest.mark.slow  # every test here runs tbpipe in a subprocess

ROOT = Path(__file__).resolve().parents[1]
#: a user's folder: a functional Keras model built by a function, 3-feature data
EXAMPLE = ROOT / "examples" / "your_model"


def user_folder(root: Path) -> Path:
    """docs/EXTENDING.md's example, copied where a user would keep it."""
    shutil.copytree(EXAMPLE, root / "your_model")
    return root / "your_model"


def clean(stderr: str) -> None:
    for word in ("ERROR", "Traceback", "warning", "WARNING"):
        assert word not in stderr, stderr


#: what the user's run adds to EXTENDING's command that names the hidden layer's histograms
#: (its second): enough steps, and an optimizer, to learn the weights
LEARNS = ("optimizer=adam", "optimizer.learning_rate=0.02", "trainer.steps=300")


@pytest.fixture(scope="module")
def your_model_commands(tmp_path_factory) -> tuple[Path, list[dict]]:
    """docs/EXTENDING.md's commands for a Keras model of yours, each run once through the
    console script from a copy of the example's folder: the folder, and per command its
    words and output. Its second runs LEARNS more (read by the user's-model test); the
    others, whose numbers nothing reads, 30 steps; each into r<number> (s<number>: sweep)."""
    text = (ROOT / "docs" / "EXTENDING.md").read_text()
    block = text.split("    cd examples/your_model\n", 1)[1].split("\n\n", 1)[0]
    commands = [line.split("#")[0].split() for line in block.splitlines()]
    assert len(commands) >= 3 and all(c[0] == "tbpipe" for c in commands)
    assert "sinks.histograms.layers=[hidden]" in commands[1][-1]
    folder = user_folder(tmp_path_factory.mktemp("extending"))
    ran = []
    for number, command in enumerate(commands):
        words = [w.strip("'") for w in command[1:]]
        where = f"hydra.sweep.dir=s{number}" if "-m" in words else f"hydra.run.dir=r{number}"
        more = LEARNS if number == 1 else ("trainer.steps=30",)
        result = run_tbpipe(*words, *more, "trainer.progress=false", where, cwd=folder)
        ran.append({"command": command, "stdout": result.stdout, "stderr": result.stderr})
    return folder, ran


def test_a_users_keras_model_on_their_own_data(your_model_commands):
    folder, ran = your_model_commands
    result = ran[1]
    clean(result["stderr"])
    assert result["stdout"].startswith("test/loss = ")
    run_dir = folder / "r1"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and "k" not in metrics
    assert set(metrics["final"]) == {"train/mae", "train/loss", "test/mae", "test/loss"}
    assert metrics["final"]["test/loss"] < 0.05  # noise 0.1: it learnt the weights
    assert metrics["test_loss"] == metrics["final"]["test/loss"]
    train, test = load_run(run_dir / "train"), load_run(run_dir / "test")
    for run, split in ((train, "train"), (test, "test")):
        for tag in ("loss", "mae"):
            steps = [step for step, _ in run.scalars(tag)]
            assert steps == list(range(301)), tag
            assert run.scalars(tag)[-1][1] == pytest.approx(metrics["final"][f"{split}/{tag}"])
    histograms = set(train.tags("histograms"))
    # a functional model's variables are named by their layers (Keras 3 paths)
    assert {"parameters/hidden/kernel", "parameters/out/kernel"} <= histograms
    assert {"outputs/hidden", "residuals"} <= histograms
    assert "plots/predicted_vs_true" in train.tags("images")
    assert train.graph is not None  # GRAPHS: the train step
    names = {node.name for node in train.graph.node}
    assert any(name.startswith("loss/") for name in names)
    assert any(name.startswith("update/") for name in names)


@pytest.fixture(scope="module")
def bundled_experiments(tmp_path_factory) -> tuple[dict[str, Path], str]:
    """Both bundled experiments as written, one sweep through the console script (one
    process: each job still traces its own loop, a user's Keras model is not reused): each
    job dir by experiment, and what the sweep printed (its stderr clean)."""
    workdir = tmp_path_factory.mktemp("bundled")
    result = run_tbpipe("-m", "+experiment=digits_classifier,diabetes_regression",
                        "hydra.sweep.dir=sweep", cwd=workdir)  # fmt: skip
    clean(result.stderr)
    jobs = {
        job.name.split("experiment-")[1]: job for job in (workdir / "sweep").glob("*_experiment-*")
    }
    assert sorted(jobs) == ["diabetes_regression", "digits_classifier"], jobs
    return jobs, result.stdout


def summary_line_of(stdout: str, job: Path) -> str:
    """The line the job ended with (a sweep prints each job's)."""
    (line,) = [line for line in stdout.splitlines() if f"logs: sweep/{job.name} " in line]
    return line


def test_digits_reach_95_percent_on_the_test_split(bundled_experiments):
    jobs, stdout = bundled_experiments
    run_dir = jobs["digits_classifier"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["main_metric"] == "test/accuracy"
    assert metrics["final"]["test/accuracy"] >= 0.95
    assert summary_line_of(stdout, run_dir).startswith("test/accuracy = ")
    train, test = load_run(run_dir / "train"), load_run(run_dir / "test")
    assert test.scalars("accuracy")[-1][1] == pytest.approx(metrics["final"]["test/accuracy"])
    assert "plots/confusion_matrix" in train.tags("images")
    assert "residuals" not in train.tags("histograms")  # labels have no residuals


def test_diabetes_explains_40_percent_of_the_test_variance(bundled_experiments):
    jobs, stdout = bundled_experiments
    metrics = json.loads((jobs["diabetes_regression"] / "metrics.json").read_text())
    assert metrics["final"]["test/r2"] >= 0.4
    assert summary_line_of(stdout, jobs["diabetes_regression"]).startswith("test/r2 = ")


def test_a_keras_run_killed_and_resumed_equals_the_run_never_stopped(tmp_path):
    from tests.test_resume import killed_and_resumed_equal_the_run_never_stopped

    # long enough for the kill to land well past the first checkpoint (at 500) and well
    # before the end; an image at a checkpoint step (1000), so its replay is checked too
    args = (
        "+experiment=digits_classifier", "trainer.steps=2000", "trainer.checkpoint_every=500",
        "writer.flush_millis=100", "trainer.progress=false", "sinks.images.every=1000",
    )  # fmt: skip
    # killed -9 through the console script, resumed in this process (`api.resume_run`,
    # what `tbpipe resume` does: the numbers are the point)
    resumed = killed_and_resumed_equal_the_run_never_stopped(args, tmp_path, in_process=True)
    assert resumed.metrics["status"] == "completed"


def test_the_extending_commands_for_your_model_run_as_written(your_model_commands):
    """docs/EXTENDING.md's commands for a Keras model of yours, from the example's folder."""
    _, ran = your_model_commands
    for result in ran:
        assert result["stderr"] == "", (result["command"], result["stderr"])
