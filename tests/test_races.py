"""Nothing lost, nothing overwritten: two runs aiming at one dir, and the resume lock.

`pipeline.check.claim.claim_dir` is the one place a run or sweep dir is created; these
tests race real processes on it (the kernel decides who wins, nothing is mocked).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline.check.claim import OWNER_LOCK, claim_dir
from pipeline.check.errors import BadInput
from tests.conftest import TBPIPE
from tests.test_bad_input import ROWS

ROW = {row.what: row for row in ROWS}


def _claim_in_child(path: str, start, results) -> None:
    start.wait()
    try:
        claim_dir(path, "hydra.run.dir")
        results.put("claimed")
    except BadInput as error:
        results.put(str(error))


def test_of_eight_processes_claiming_one_dir_exactly_one_gets_it(tmp_path):
    target = tmp_path / "runs" / "one"
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(8), context.Queue()
    children = [
        context.Process(target=_claim_in_child, args=(str(target), start, results))
        for _ in range(8)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
    answers = [results.get(timeout=5) for _ in children]
    assert answers.count("claimed") == 1, answers
    refused = [a for a in answers if a != "claimed"]
    assert all(a.startswith(f"hydra.run.dir={target} already exists") for a in refused)
    assert list(target.iterdir()) == []  # the losers wrote nothing


def test_an_existing_dir_is_never_claimed_for_a_new_run(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="already exists"):
        claim_dir(tmp_path / "empty", "hydra.run.dir")


def test_resume_takes_a_lock_that_a_second_resume_cannot(tmp_path):
    run = claim_dir(tmp_path / "run", "hydra.run.dir").path
    first = claim_dir(run, "run", resuming=True)
    lock = run / OWNER_LOCK
    assert lock.read_text().split()[0] == str(os.getpid())
    with pytest.raises(BadInput, match=r"is being launched or resumed by pid \d+"):
        claim_dir(run, "run", resuming=True)
    first.release()
    assert not lock.exists()
    claim_dir(run, "run", resuming=True).release()  # free again once released


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    run = claim_dir(tmp_path / "run", "hydra.run.dir").path
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    import socket

    (run / OWNER_LOCK).write_text(f"{dead.pid} {socket.gethostname()}\n")
    claim = claim_dir(run, "run", resuming=True)
    assert (run / OWNER_LOCK).read_text().split()[0] == str(os.getpid())
    claim.release()


def test_a_lock_whose_pid_now_belongs_to_another_process_is_taken_over(tmp_path):
    """A pid alone is not the process: the lock's start time must match the pid's too."""
    import socket

    from pipeline.runinfo import pid_started

    run = claim_dir(tmp_path / "run", "hydra.run.dir").path
    other = subprocess.Popen(["sleep", "30"])  # alive, but not the process that held the lock
    try:
        started = pid_started(other.pid)
        (run / OWNER_LOCK).write_text(f"{other.pid} {socket.gethostname()} {started - 1}\n")
        claim = claim_dir(run, "run", resuming=True)
        assert (run / OWNER_LOCK).read_text().split()[0] == str(os.getpid())
        claim.release()
        (run / OWNER_LOCK).write_text(f"{other.pid} {socket.gethostname()} {started}\n")
        with pytest.raises(BadInput, match=f"by pid {other.pid} on"):  # the very process
            claim_dir(run, "run", resuming=True)
    finally:
        other.kill()
        other.wait()


def test_resume_needs_an_existing_dir(tmp_path):
    with pytest.raises(BadInput, match="nothing to resume"):
        claim_dir(tmp_path / "nope", "run", resuming=True)


@pytest.mark.slow
def test_two_runs_started_together_into_one_dir_one_runs_one_is_refused(tmp_path):
    """The issue's case: both used to exit 0 into one dir of mixed files."""
    row = ROW["two runs into one dir at once"]
    run_dir = tmp_path / "run"
    common = ["sinks=[scalars]", "trainer.progress=false", f"hydra.run.dir={run_dir}"]
    processes = [
        subprocess.Popen(
            [TBPIPE, f"trainer.steps={steps}", *common],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for steps in (20, 30)
    ]
    ended = [(p.wait(timeout=300), *p.communicate()) for p in processes]
    codes = sorted(code for code, _, _ in ended)
    assert codes == [0, row.exit_code], ended
    (winner,) = [i for i, (code, _, _) in enumerate(ended) if code == 0]
    loser_err = ended[1 - winner][2]
    assert len(loser_err.splitlines()) == 1, loser_err
    line = loser_err.strip()
    assert row.matches(line, {"<dir>": str(run_dir)}) or "already holds an earlier run" in line
    # the dir is the winner's alone: its overrides and its metrics agree
    steps = (20, 30)[winner]
    assert json.loads((run_dir / "metrics.json").read_text())["steps"] == steps
    saved = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    assert f"trainer.steps={steps}" in saved
    assert ended[winner][2] == ""  # a successful run prints no warning


@pytest.mark.slow
def test_two_sweeps_into_one_dir_one_runs_one_is_refused(tmp_path):
    sweep_dir = tmp_path / "sweep"
    common = ["-m", "data.noise_std=0.1,0.5", "sinks=[scalars]", "trainer.steps=10"]
    processes = [
        subprocess.Popen(
            [TBPIPE, *common, f"seed={seed}", f"hydra.sweep.dir={sweep_dir}"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    ended = [(p.wait(timeout=300), *p.communicate()) for p in processes]
    assert sorted(code for code, _, _ in ended) == [0, 2], ended
    jobs = sorted(path.parent.name for path in sweep_dir.glob("*/metrics.json"))
    assert len(jobs) == 2 and [name.split("_")[0] for name in jobs] == ["0", "1"]
    summary = (sweep_dir / "summary.csv").read_text().splitlines()
    assert len(summary) == 3  # header and one row per job: no duplicate job numbers


def test_the_claimed_dir_is_the_one_hydra_writes_into(tmp_path, monkeypatch):
    """The default dir holds ${now:...}: the preflight's claim is pinned for Hydra."""
    from pipeline.check.compose import path_override
    from pipeline.check.preflight import check_command_line

    monkeypatch.chdir(tmp_path)
    output = check_command_line(["trainer.steps=5"])
    assert output.key == "hydra.run.dir" and output.pinned
    assert output.path.startswith("outputs/")
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for weird in ("it's a dir, with=signs", "back\\slash\\", "quote\\'d"):
        path = str(tmp_path / weird)
        assert parser.parse_override(path_override("hydra.run.dir", path)).value() == path
    assert check_command_line([f"hydra.run.dir={tmp_path / 'x'}"]).pinned is False
    assert not Path("outputs").exists()  # the check itself creates nothing
