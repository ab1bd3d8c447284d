"""A stopped run extended by editing its .hydra/ files: `tbpipe resume` accepts it, goes
on from its checkpoint to the new end, and run.json then records the command that runs
now (what `tbpipe rerun` and a reader of run.json take as the run's command)."""

from __future__ import annotations

import json
import shlex

import pytest

from tests.conftest import run_tbpipe
from tests.test_resume_faults import RUN, STEPS, killed_run

pytestmark = pytest.mark.slow  # runs tbpipe in a subprocess

# the test resumes its own copy of one run killed with -9 (tests/test_resume_faults.py, where
# a resume of an unedited copy is checked to leave its run.json as it was)


def test_a_run_extended_by_editing_its_hydra_files_records_the_new_command(
    tmp_path, tmp_path_factory
):
    longer = STEPS + 1000
    assert f"trainer.steps={STEPS}" in RUN
    run_dir, saved = killed_run(tmp_path_factory, tmp_path)  # killed -9 after a checkpoint
    before = json.loads((run_dir / "run.json").read_text())
    assert f"trainer.steps={STEPS}" in before["command"]
    hydra = run_dir / ".hydra"
    for name, old, new in (
        ("config.yaml", f"  steps: {STEPS}\n", f"  steps: {longer}\n"),
        ("overrides.yaml", f"trainer.steps={STEPS}", f"trainer.steps={longer}"),
    ):
        text = (hydra / name).read_text()
        assert text.count(old) == 1, (name, text)
        (hydra / name).write_text(text.replace(old, new))

    resumed = run_tbpipe("resume", str(run_dir), cwd=tmp_path)
    assert "Traceback" not in resumed.stderr and "ERROR" not in resumed.stderr, resumed.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["status"], metrics["steps"], metrics["resumed_from"]) == (
        "completed", longer, saved
    )  # fmt: skip
    info = json.loads((run_dir / "run.json").read_text())
    assert f"trainer.steps={longer}" in info["command"] and str(STEPS) not in info["command"]
    assert f"trainer.steps={longer}" in info["overrides"]
    assert info["config"]["trainer"]["steps"] == longer
    # `tbpipe rerun` still names this run dir (the killed run's copy, where it resumed)
    assert shlex.split(info["rerun"]) == ["tbpipe", "rerun", str(run_dir.resolve())]
