"""tf.data input: a run from CSV shards read lazily (`data=shards`), read back as a user
would see it: it learns, a kill -9 and a resume give the uninterrupted run bit for bit
(the tf.data iterator is in the checkpoint), and a glob that matches nothing is one line
before TensorFlow loads.

One run of the shards is made whole in this process (`pipeline.api`, the console script's
series): the learning is read from it, and the run killed by the real `tbpipe`, resumed
by `api.resume_run` (what `tbpipe resume` does), must equal it. Bad shards go through the
console script. What a run wrote is read with TensorBoard's reader.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline import api
from pipeline.readback.runs import load_run
from tests.conftest import environment_kept, run_tbpipe

pytestmark = pytest.mark.slow  # every test here trains, or runs tbpipe in a subprocess

#: y = x . WEIGHTS + noise, three features
WEIGHTS = np.array([1.5, -2.0, 0.5])


def write_shards(folder: Path, train_shards: int = 4, rows: int = 100) -> None:
    """Training shards data/train-<i>.csv and one test shard, each with a header row."""
    rng = np.random.default_rng(0)
    (folder / "data").mkdir()
    for split, count in (("train", train_shards), ("test", 1)):
        for i in range(count):
            x = rng.normal(size=(rows, 3))
            y = x @ WEIGHTS + 0.1 * rng.normal(size=rows)
            np.savetxt(
                folder / "data" / f"{split}-{i}.csv", np.c_[x, y], delimiter=",",
                header="a,b,c,y", comments="", fmt="%.6f",
            )  # fmt: skip


#: a regression on the shards, R^2 among its metrics, scalars every 5 steps (each record
#: reads the whole test shard)
ARGS = (
    "data=shards", "data.train_files=data/train-*.csv", "data.test_files=data/test-*.csv",
    "data.target=y", "task=regression", "task.metrics=[mae,r2]", "task.main_metric=test/r2",
    "model=keras_mlp", "trainer.batch_size=16", "trainer.progress=false",
    "sinks.scalars.every=5",
)  # fmt: skip


def clean(stderr: str) -> None:
    for word in ("ERROR", "Traceback", "warning", "WARNING"):
        assert word not in stderr, stderr


#: ARGS long enough to be killed past its first checkpoint (at 100), hundreds of steps
#: before the end
RESUMED = (*ARGS, "trainer.steps=600", "trainer.checkpoint_every=100", "writer.flush_millis=100")


@pytest.fixture(scope="module")
def never_stopped(tmp_path_factory) -> Path:
    """RESUMED run whole on three shards of 60 rows, in this process from the folder that
    holds them (as `tbpipe` run there): the folder; the run is its `whole/`."""
    folder = tmp_path_factory.mktemp("shards")
    write_shards(folder, train_shards=3, rows=60)
    with contextlib.chdir(folder):  # data/*.csv are read from there
        api.run_experiment(*RESUMED, run_dir=folder / "whole")
    return folder


def test_a_run_from_csv_shards_learns(never_stopped):
    run_dir = never_stopped / "whole"
    test = load_run(run_dir / "test")
    r2 = [float(value) for _, value in test.series["scalars"]["r2"]]
    assert len(r2) == 600 // 5 + 1  # steps 0, 5, ..., 600
    assert r2[-1] > 0.8 and r2[-1] > r2[0]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["final"]["test/r2"] == pytest.approx(r2[-1], abs=1e-6)
    train = load_run(run_dir / "train")
    assert "plots/predicted_vs_true" in train.series["images"]  # drawn from a sample


def test_shards_killed_and_resumed_equal_the_run_never_stopped(never_stopped):
    """The console script killed with -9 from the folder of the shards, resumed there in
    this process (`api.resume_run`, what `tbpipe resume` does: the numbers are the point)."""
    from tests.test_resume import killed_and_resumed_equal_the_run_never_stopped

    resumed = killed_and_resumed_equal_the_run_never_stopped(
        RESUMED, never_stopped, whole=never_stopped / "whole", in_process=True
    )
    assert resumed.metrics["status"] == "completed"


@pytest.mark.parametrize(
    ("override", "said", "console"),
    [
        ("data.train_files=none/*.csv", "bad value data.train_files=none/*.csv: no file matches",
         True),
        ("data.target=yy", "bad value data.target=yy: no column 'yy'", False),
        ("trainer.batch_size=null", "missing value trainer.batch_size: data=shards", False),
    ],
    ids=["no-file-matches", "no-such-column", "no-batch-size"],
)  # fmt: skip
def test_bad_shards_are_one_line_before_tensorflow(
    tmp_path, monkeypatch, capsys, override, said, console
):
    """The real `tbpipe` for the first; the others through tbpipe's own main() in this
    process (the same checks and the same line, without a Python start each)."""
    write_shards(tmp_path, train_shards=1, rows=20)
    argv = [*ARGS, override, "hydra.run.dir=run"]
    if console:
        result = run_tbpipe(*argv, cwd=tmp_path, check=False)
        code, stderr = result.returncode, result.stderr
    else:
        from pipeline.__main__ import main

        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(sys, "argv", ["tbpipe", *argv])
        with environment_kept(), pytest.raises(SystemExit) as ended:
            main()
        code, stderr = ended.value.code, capsys.readouterr().err
    assert code == 2
    assert stderr.startswith(f"tbpipe: {said}") and stderr.count("\n") == 1
    assert not (tmp_path / "run").exists()  # nothing written


@pytest.mark.parametrize("labels", [False, True])
def test_the_extending_commands_for_shards_pass_the_checks(tmp_path, monkeypatch, labels):
    """docs/EXTENDING.md's `data=shards` commands, on shards with the columns they name."""
    from pipeline.check.preflight import check_command_line

    text = (Path(__file__).resolve().parents[1] / "docs" / "EXTENDING.md").read_text()
    block = text.split("## Data that does not fit in memory", 1)[1].split("\n\n")[2]
    commands = [line.split() for line in block.splitlines()]
    assert len(commands) == 2 and all(words[0] == "tbpipe" for words in commands)
    for split in ("train", "test"):
        (tmp_path / "data").mkdir(exist_ok=True)
        (tmp_path / "data" / f"{split}-0.csv").write_text("sqft,price,grade\n1,2,0\n2,3,1\n")
    monkeypatch.chdir(tmp_path)
    words = [word.strip("'") for word in commands[int(labels)][1:]]
    check_command_line([*words, "hydra.run.dir=run"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # checked, nothing made
