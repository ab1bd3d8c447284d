"""A config from someone else cannot make tbpipe call what it likes, nor copy secrets out.

`_target_`s are looked up and checked as classes before anything is called
(`pipeline/check/targets.py`); values read with `${oc.env:...}` are not written to run.json,
the TEXT tab or HPARAMS (`pipeline.runinfo.redacted`; a run that reads one:
tests/test_secrets.py). The in-process rows of docs/ERRORS.md run in test_bad_input.py;
the ones that need a run are here.
"""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from pipeline.check.compose import compose_config
from pipeline.check.errors import BadInput
from pipeline.check.targets import BadTarget, check_config_targets, check_target, pieces_of
from pipeline.runinfo import REDACTED, environment_values, redacted
from tests.conftest import run_tbpipe
from tests.test_bad_input import ROWS

ROW = {row.what: row for row in ROWS}


@pytest.mark.parametrize("option", ["model=linear", "model=mlp", "optimizer=adam"])
def test_every_shipped_piece_meets_its_class_contract(option):
    cfg = compose_config([option])
    checked = {key: check_target(key, node) for key, node in pieces_of(cfg)}
    assert {"data", "model", "optimizer", "sinks.scalars", "sinks.text"} <= set(checked)
    check_config_targets(cfg)  # callbacks and logging of the shipped config pass too


def test_a_class_is_checked_before_an_instance_is_made(tmp_path):
    made = tmp_path / "made"
    node = OmegaConf.create({"_target_": "tests.test_hostile.Recorder", "path": str(made)})
    with pytest.raises(BadTarget, match="has no generate"):
        check_target("data", node)
    assert not made.exists()  # its __init__ never ran


class Recorder:
    """A class whose construction leaves a trace: it must never be built as a piece."""

    def __init__(self, path: str):
        open(path, "w").close()


def test_a_nested_target_is_refused_even_in_a_good_piece():
    node = OmegaConf.create(
        {"_target_": "pipeline.sinks.scalars.ScalarSink", "x": [{"_target_": "os.remove"}]}
    )
    with pytest.raises(BadTarget, match=r"sinks.s.x.0._target_=os.remove"):
        check_target("sinks.s", node)


def test_a_missing_module_is_one_line_without_hydras_error_log(caplog):
    with pytest.raises(BadTarget, match="no such class") as caught:
        check_target("model", OmegaConf.create({"_target_": "nowhere.Model"}))
    assert "\n" not in str(caught.value) and caplog.records == []


def test_values_read_from_the_environment_are_redacted(monkeypatch):
    monkeypatch.setenv("TBPIPE_TEST_TOKEN", "hunter2-very-secret")
    monkeypatch.setenv("TBPIPE_TEST_THREADS", "2")
    cfg = OmegaConf.create(
        {
            "token": "${oc.env:TBPIPE_TEST_TOKEN}",
            "url": "https://user:${token}@host",
            "threads": "${oc.env:TBPIPE_TEST_THREADS}",
            "noise": 0.2,
            "steps": 2,
        }
    )
    shown = redacted(OmegaConf.to_container(cfg, resolve=True), environment_values(cfg))
    assert shown["token"] == shown["threads"] == REDACTED
    assert shown["url"] == f"https://user:{REDACTED}@host"
    assert shown["noise"] == 0.2  # a short value is redacted only where it is the whole value
    assert shown["steps"] == 2 or shown["steps"] == REDACTED
    assert "hunter2" not in json.dumps(shown)


def test_bad_targets_refused_in_the_preflight_leave_the_file_intact(tmp_path, monkeypatch):
    from pipeline.check.preflight import check_command_line

    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n")
    monkeypatch.chdir(tmp_path)
    for args in (
        ["sinks.text._target_=builtins.open", f"+sinks.text.file={victim}", "+sinks.text.mode=w"],
        ["+hydra.callbacks.x._target_=builtins.open", f"+hydra.callbacks.x.file={victim}"],
        [
            "-m",
            "seed=0,1",
            "+sinks.scalars.h._target_=os.remove",
            f"+sinks.scalars.h.path={victim}",
        ],
    ):
        with pytest.raises(BadInput, match="_target_="):
            check_command_line(args)
    assert victim.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt"]


@pytest.mark.slow
def test_a_function_found_only_in_the_run_is_not_called(tmp_path):
    """numpy is not looked up in the preflight: the run refuses it before building it."""
    row = ROW["a function as a piece, found in the run"]
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n")
    env, args = row.argv({"<file>": str(victim)})
    run_dir = tmp_path / "run"
    result = run_tbpipe(
        *args, "trainer.steps=5", f"hydra.run.dir={run_dir}", cwd=tmp_path, check=False
    )
    assert result.returncode == row.exit_code == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert row.matches(result.stderr.strip(), {"<file>": str(victim)}), result.stderr
    assert victim.read_text() == "keep me\n"
    assert not (tmp_path / "precious.txt.npy").exists()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "numpy.save" in metrics["reason"]
