"""A sweep's preflight checks each later job by the values it changes, and says exactly what
checking every job's whole config says.

The story: "I sweep 1,000 seeds; a typo in any of them is one line naming it, at once".
The preflight validates the first job of each set of group choices whole and the later
jobs by their changed values' own rules (pipeline/check/preflight.py `_Template`); each
command below is checked both ways, in process, and must pass both ways or fail both ways
with the same line.
"""

from __future__ import annotations

import pytest

from pipeline.check import paths, preflight, sweep_paths
from pipeline.check.errors import BadInput

#: sweeps that pass, and sweeps with a bad value in a later job (the first job is good);
#: `make test-fast` checks a pass and docs/ERRORS.md's row (the first and third), `make test`
#: every one: each case composes its sweep twice
SWEEPS = [
    ["data.noise_std=0.01,0.1,1", "seed=range(4)"],
    ["data.noise_std=0.01,0.1", "seed=0,1", "model=linear,mlp", "optimizer=sgd,adam"],
    ["data.noise_std=0.1,-1"],  # docs/ERRORS.md's row
    ["seed=0,1,-3"],
    ["seed=0,1.5"],  # data.seed interpolates ${seed}: its own rule is checked too
    ["data.noise_std=0.1,0.2", "seed=0,4294967296"],
    ["data.x_low=-1,3"],  # x_low < x_high: a relation, validated whole
    ["data.x_high=1,-2", "seed=0,1"],
    ["optimizer.learning_rate=0.1,0", "model=linear,mlp"],
    ["trainer.steps=10,0", "sinks=[scalars]"],
    ["sinks.scalars.every=1,0", "sinks=[scalars]"],
    ["name=a,'${seed}'", "seed=0,1"],
    ["task.main_metric=train/loss,train/nothing"],
    ["data.noise_std=0.1,nan", "data.k_true=1,2"],
    ["trainer.batch_size=null,1000"],
    ["data.noise_std=0.1,-1", "+data_copy=${data}"],  # a node interpolating the swept key's
    # where a later job writes follows its own values, found while they are set
    ["writer.train=a,test", "seed=0,1"],
    ["hydra.sweep.subdir=s${seed}", "seed=0,1,0"],
    ["hydra.sweep.subdir=s${seed}", "seed=0,1,2", "data.noise_std=0.1,-1"],
    ["hydra.sweep.subdir=same", "seed=0,1"],
]


def outcome(argv: list[str]) -> str:
    """What the preflight says of `tbpipe <argv>`: "ok" or its one line."""
    try:
        preflight.check_command_line(argv)
        return "ok"
    except BadInput as error:
        return str(error)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param(sweep, id=" ".join(sweep), marks=() if n in (0, 2) else pytest.mark.slow)
        for n, sweep in enumerate(SWEEPS)
    ],
)
def test_checking_the_changed_values_says_what_checking_every_job_says(
    overrides, tmp_path, monkeypatch
):
    argv = ["-m", *overrides, f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    by_values = outcome(argv)
    monkeypatch.setattr(preflight._Template, "values_pass", lambda *args: False)
    every_job = outcome(argv)
    assert by_values == every_job
    assert not (tmp_path / "sweep").exists()


@pytest.fixture(scope="module")
def twelve_jobs(tmp_path_factory) -> dict:
    """3 noise levels x 4 seeds, checked once, counting what the preflight does on the way:
    the configs it validates whole, the working copies of a config it makes, the job dirs
    it resolves from a config, and the dir each job gets. The three tests below read it."""
    validated, copies, resolved, dirs = [], [], [], []
    whole, copy = preflight._validate, preflight._Template.copy
    job_dir_of, finish = paths.job_dir_of, sweep_paths.SweepPaths.finish

    def counted(template):
        copies.append(copy(template))
        return copies[-1]

    where = tmp_path_factory.mktemp("twelve")
    argv = ["-m", "data.noise_std=0.01,0.1,1", "seed=range(4)", f"hydra.sweep.dir={where}/s"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(preflight, "_validate", lambda *args: validated.append(whole(*args)))
        patch.setattr(preflight._Template, "copy", counted)
        patch.setattr(
            sweep_paths, "job_dir_of", lambda *args: resolved.append(args) or job_dir_of(*args)
        )
        patch.setattr(
            sweep_paths.SweepPaths, "finish", lambda self: [dirs.append(self.owner), finish(self)]
        )
        said = outcome(argv)
    return {"said": said, "validated": validated, "copies": copies, "resolved": resolved,
            "dirs": dirs}  # fmt: skip


def test_a_later_jobs_whole_config_is_not_validated_again(twelve_jobs):
    """The first job's config is validated whole, the others by their noise level and
    seed (and data.seed, which interpolates the seed)."""
    assert twelve_jobs["said"] == "ok"
    assert len(twelve_jobs["validated"]) == 1


def test_later_jobs_share_one_working_copy_of_their_config(twelve_jobs, tmp_path):
    """The first job's config and one copy that the 11 later jobs set their values on, in
    turn; every job's dir is still its own."""
    assert twelve_jobs["said"] == "ok"
    assert len(twelve_jobs["copies"]) == 2
    clash = ["-m", "data.noise_std=0.01,0.1", "seed=range(2)", "hydra.sweep.subdir=s${seed}"]
    said = outcome([*clash, f"hydra.sweep.dir={tmp_path}/t"])
    assert said.startswith("bad value hydra.sweep.subdir=s0: jobs 0 and 2 would share the dir")


#: sweeps whose later jobs' dirs and paths are found from their numbers (`JobPaths`),
#: or not (a value that moves what a job writes): the same dirs, the same line either way
PATH_SWEEPS = [
    ["data.noise_std=0.01,1", "seed=range(3)", "model=linear,mlp"],
    ["seed=range(3)", "hydra.job_logging.handlers.file.filename=../x.log"],
    ["seed=range(3)", "writer.train=${hydra.job.name}", "writer.test=${writer.train}"],
    ["seed=range(3)", "hydra.output_subdir=null", "writer.train=t/${hydra.job.name}"],
    ["seed=range(3)", "hydra.job.env_set.A=1,2"],
    ["seed=range(3)", "writer.train=a,b,test"],
]


@pytest.mark.slow
@pytest.mark.parametrize("overrides", PATH_SWEEPS, ids=" ".join)
def test_a_later_jobs_dir_found_from_its_number_is_the_one_its_config_gives(
    overrides, tmp_path, monkeypatch
):
    dirs = []
    finish = sweep_paths.SweepPaths.finish
    monkeypatch.setattr(
        sweep_paths.SweepPaths, "finish", lambda self: [dirs.append(self.owner), finish(self)]
    )
    argv = ["-m", *overrides, f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    from_numbers = outcome(argv)
    monkeypatch.setattr(sweep_paths.JobPaths, "of", classmethod(lambda *args: None))
    from_configs = outcome(argv)
    assert from_numbers == from_configs
    assert dirs[:1] == dirs[1:]
    assert not (tmp_path / "sweep").exists()


def test_a_later_jobs_dir_is_found_from_its_number(twelve_jobs):
    """The first job's dir and paths come from its config, the 11 others' from their
    numbers; each job has a dir of its own."""
    assert twelve_jobs["said"] == "ok"
    assert len(twelve_jobs["resolved"]) == 1
    assert sorted(twelve_jobs["dirs"][0].values()) == list(range(12))
