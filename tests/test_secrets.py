"""A secret read with `${oc.env:...}` stays secret: it names no folder, is written to no
file of the run or sweep (run.json, .hydra/, tbpipe.log, event files: TEXT and HPARAMS
included) and is printed to neither stdout nor stderr; a refusal names the key, not it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import run_tbpipe

#: long enough to be cut out of any text it sits in
SECRET = "hunter2-TOPSECRET-token-8472"
ENV = {"TBPIPE_TEST_SECRET": SECRET}


def leaks(root: Path, *outputs: str) -> list[str]:
    """Every place under `root` (folder and file names, file contents) and every output
    that holds the secret."""
    found = [f"output {n}" for n, text in enumerate(outputs) if SECRET in text]
    for path in root.rglob("*"):
        if SECRET in path.name:
            found.append(f"name {path}")
        elif path.is_file() and SECRET.encode() in path.read_bytes():
            found.append(f"file {path}")
    return found


@pytest.mark.slow
def test_a_secret_as_the_run_name_reaches_no_file_no_folder_no_output(tmp_path):
    """The secret is the run's name and a key of its own (`+token`): the config as saved
    keeps what was typed, run.json says it is redacted, the TEXT tab has the config."""
    from pipeline.readback.runs import load_run
    from pipeline.runinfo import REDACTED

    result = run_tbpipe("name=${oc.env:TBPIPE_TEST_SECRET}", "+token=${oc.env:TBPIPE_TEST_SECRET}",
                        "trainer.steps=5", cwd=tmp_path, env=ENV)  # fmt: skip
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "outputs").glob("*/*")
    assert run_dir.name.endswith("_oc.env-TBPIPE_TEST_SECRET")  # what was typed, not its value
    assert (run_dir / "metrics.json").is_file() and (run_dir / "run.json").is_file()
    assert leaks(tmp_path, result.stdout, result.stderr) == []
    assert "${oc.env:TBPIPE_TEST_SECRET}" in (run_dir / ".hydra" / "config.yaml").read_text()
    assert json.loads((run_dir / "run.json").read_text())["config"]["token"] == REDACTED
    assert load_run(run_dir / "train").series.get("text"), "the TEXT tab has the config"
    assert os.environ.get("TBPIPE_TEST_SECRET") is None  # set for the run alone


@pytest.mark.slow
def test_a_sweep_over_a_key_set_from_the_environment_leaks_nothing(tmp_path):
    """The swept key holds the secret in one job: the sweep runs (it is not refused for a
    path that the secret seemed to move), and its summary, HParams and folders hold none."""
    result = run_tbpipe(
        "-m", "+token=${oc.env:TBPIPE_TEST_SECRET},plain", "name=${oc.env:TBPIPE_TEST_SECRET}",
        "trainer.steps=5", "hydra.sweep.dir=sweep", cwd=tmp_path, env=ENV,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    names = sorted(path.name for path in (tmp_path / "sweep").iterdir() if path.is_dir())
    assert names[:2] == ["0_token-oc.env-TBPIPE_TEST_SECRET", "1_token-plain"]
    assert (tmp_path / "sweep" / "summary.csv").is_file()
    assert leaks(tmp_path, result.stdout, result.stderr) == []


@pytest.mark.parametrize(
    "override",
    ["trainer.steps=${oc.env:TBPIPE_TEST_SECRET}", "data.noise_std=${oc.env:TBPIPE_TEST_SECRET}"],
)
def test_a_refusal_names_the_key_not_the_value(override, tmp_path, monkeypatch, capsys):
    from pipeline.__main__ import main

    monkeypatch.setenv("TBPIPE_TEST_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["tbpipe", override])
    with pytest.raises(SystemExit) as ended:
        main()
    err = capsys.readouterr().err
    assert ended.value.code == 2
    assert len(err.splitlines()) == 1 and override.split("=")[0] in err
    assert SECRET not in err and "not shown" in err
    assert list(tmp_path.iterdir()) == []
