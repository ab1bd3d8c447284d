"""A rerun finds the user's modules in the folder the first run started in, also when it
reruns a rerun that was started from another folder (pipeline/check/rerun.py)."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.check.rerun import module_folders


def saved_run(run_dir: Path, started_in: Path, command: str) -> Path:
    """A run dir as a run leaves it, as far as a rerun reads it: where it started
    (.hydra/hydra.yaml's hydra.runtime.cwd) and its command (run.json)."""
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  runtime:\n    cwd: {started_in}\n")
    (run_dir / "run.json").write_text(json.dumps({"command": command}))
    return run_dir


def test_a_rerun_of_a_rerun_searches_every_folder_of_the_chain(tmp_path):
    users = tmp_path / "my project"
    first = saved_run(tmp_path / "first", users, "tbpipe -m data=quadratic")
    rerun = saved_run(tmp_path / "rerun", tmp_path / "x", f"tbpipe rerun '{first}'")
    again = saved_run(tmp_path / "again", tmp_path / "y", f"tbpipe rerun {rerun} name=b")
    assert module_folders(again) == [str(tmp_path / "y"), str(tmp_path / "x"), str(users)]
    assert module_folders(first) == [str(users)]


def test_the_chain_ends_at_a_run_no_longer_there_or_at_a_loop(tmp_path):
    gone = saved_run(tmp_path / "rerun", tmp_path / "x", f"tbpipe rerun {tmp_path / 'gone'}")
    assert module_folders(gone) == [str(tmp_path / "x")]
    loop = saved_run(tmp_path / "loop", tmp_path / "z", f"tbpipe rerun {tmp_path / 'loop'}")
    assert module_folders(loop) == [str(tmp_path / "z")]
