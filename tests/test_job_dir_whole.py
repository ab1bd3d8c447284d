"""A stacked job's dir appears whole: made beside the sweep's jobs with its `.hydra/`, then
renamed, so a sweep killed at any instant never leaves a job dir with files but without
`.hydra/config.yaml` (which `tbpipe resume` must refuse: it cannot check that job's
settings)."""

from __future__ import annotations

import os

from pipeline.sweeps.naming import STAGED_JOB_MARK, staged_dir
from pipeline.sweeps.stacked_write import made_with_configs

FILES = {"config.yaml": "a: 1\n", "hydra.yaml": "hydra: {}\n", "overrides.yaml": "[]\n"}


def test_the_job_dir_is_made_whole_and_nothing_is_left_beside_it(tmp_path):
    run_dir = tmp_path / "sweep" / "3_noise=0.1"
    made_with_configs(run_dir, ".hydra", FILES)
    assert {p.name: p.read_text() for p in (run_dir / ".hydra").iterdir()} == FILES
    assert os.listdir(run_dir.parent) == [run_dir.name]  # the staged dir became it


def test_a_staged_dir_has_a_name_no_job_dir_has(tmp_path):
    staged = staged_dir(tmp_path / "3_noise=0.1")
    assert staged.parent == tmp_path and staged.name.startswith(".3_noise=0.1")
    assert STAGED_JOB_MARK in staged.name and str(os.getpid()) in staged.name


def test_an_empty_job_dir_is_replaced_whole(tmp_path):
    run_dir = tmp_path / "0_seed=1"
    run_dir.mkdir()  # as a resumed sweep's job still to run may be
    made_with_configs(run_dir, ".hydra", FILES)
    assert sorted(p.name for p in (run_dir / ".hydra").iterdir()) == sorted(FILES)
    assert os.listdir(tmp_path) == [run_dir.name]


def test_a_job_dir_holding_files_gets_its_configs_in_place(tmp_path):
    run_dir = tmp_path / "0_seed=1"
    run_dir.mkdir()
    (run_dir / "tbpipe.log").write_text("earlier\n")
    made_with_configs(run_dir, ".hydra", FILES)
    assert (run_dir / "tbpipe.log").read_text() == "earlier\n"  # nothing of it lost
    assert (run_dir / ".hydra" / "config.yaml").read_text() == FILES["config.yaml"]
    assert os.listdir(tmp_path) == [run_dir.name]  # the staged dir removed


def test_a_staged_dir_left_by_a_killed_process_of_the_same_pid_is_replaced(tmp_path):
    run_dir = tmp_path / "0_seed=1"
    left = staged_dir(run_dir)
    (left / ".hydra").mkdir(parents=True)
    (left / ".hydra" / "stale.yaml").write_text("x\n")
    made_with_configs(run_dir, ".hydra", FILES)
    assert sorted(p.name for p in (run_dir / ".hydra").iterdir()) == sorted(FILES)
    assert not left.exists()
