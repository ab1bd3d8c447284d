"""A sweep job's config made from a template (pipeline/sweeps/job_configs.py) is the config
Hydra's own composition makes for that job, field for field; what a template cannot take
is composed whole, and a bad override fails with Hydra's own error."""

from __future__ import annotations

import pytest
from hydra.types import RunMode
from omegaconf import OmegaConf

from pipeline import compat
from pipeline.check.compose import tbpipe_configs
from pipeline.sweeps.job_configs import ReusingConfigLoader


@pytest.fixture(scope="module")
def hydra_loader_and_master():
    """Hydra's loader and the sweep's master config, composed once for the module: the
    tests only read them (a job's config is a new object each time)."""
    with tbpipe_configs():
        master = compat.compose_with_hydra(
            "config", ["hydra.sweep.dir=/tmp/job-configs-test"], RunMode.MULTIRUN
        )
        yield compat.hydra_config_loader(), master


@pytest.fixture
def loaders(hydra_loader_and_master):
    """(Hydra's loader, a new reusing one that has composed nothing yet, the master config)."""
    hydra_loader, master = hydra_loader_and_master
    return hydra_loader, ReusingConfigLoader(hydra_loader), master


def same_config(hydra_loader, reusing, master, overrides: list[str]) -> None:
    expected = hydra_loader.load_sweep_config(master, list(overrides))
    made = reusing.load_sweep_config(master, list(overrides))
    assert OmegaConf.to_container(made, resolve=False) == OmegaConf.to_container(
        expected, resolve=False
    ), overrides
    assert OmegaConf.to_yaml(made) == OmegaConf.to_yaml(expected)  # key order too
    assert OmegaConf.is_struct(made) and not OmegaConf.is_readonly(made.hydra)
    assert kinds_and_flags(made) == kinds_and_flags(expected), overrides


def kinds_and_flags(node, path: str = "") -> list:
    """Every container's path, structured type (e.g. HydraConf), struct and readonly flags."""
    from omegaconf import DictConfig, ListConfig

    found = [
        (path, OmegaConf.get_type(node), OmegaConf.is_struct(node), OmegaConf.is_readonly(node))
    ]
    children = node.items_ex(resolve=False) if isinstance(node, DictConfig) else []
    for key, child in children:
        child = node._get_node(key)
        if isinstance(child, DictConfig | ListConfig) and not (
            child._is_none() or child._is_missing()
        ):
            found += kinds_and_flags(child, f"{path}.{key}")
    return found


JOBS = [
    ["seed=0", "trainer.progress=false"],
    ["seed=7", "trainer.progress=false"],
    ["data.noise_std=0.25", "seed=3"],
    ["data.noise_std=1e-3", "optimizer.learning_rate=0.5"],
    ["model=mlp", "model.hidden=7", "seed=1"],
    ["model=mlp", "model.hidden=9", "seed=2"],
    ["seed=4", "model=mlp"],  # the group choice after a value
    ["optimizer=adam", "optimizer.learning_rate=0.1"],
    ["trainer.batch_size=null", "seed=5"],
    ["trainer.batch_size=16", "seed=5"],
    ["data.noise_std=0.5", "seed=${data.seed}"],  # an interpolation, kept as one
    ["writer.train='a b'", "seed=1"],  # a quoted string
    ["sinks.scalars.every=3"],
    ["hydra.job.name=other", "seed=2"],
    ["+extra=1", "seed=1"],  # not in the config: composed whole
    ["~sinks.images", "seed=1"],  # a deletion: composed whole
]


#: a noise x seed sweep: each later job is a copy of its shape's first with its own noise
#: level and seed set, and its lines of `hydra.overrides.task`
SWEEP = [
    [f"data.noise_std={noise}", f"seed={seed}", "trainer.progress=false"]
    for noise in (0.5, 1)
    for seed in (0, 1, 2)
] + [["data.noise_std=0.5", "seed=${data.seed}", "trainer.progress=false"]]

#: the jobs `make test-fast` checks, in order: a template made, then reused for another
#: value; another group choice; a key not in the config (composed whole)
FAST_JOBS = [JOBS[0], JOBS[1], JOBS[4], JOBS[14]]


@pytest.mark.parametrize(
    "jobs",
    [
        pytest.param(FAST_JOBS, id="one of each kind"),
        pytest.param(SWEEP, id="a sweep's jobs of one shape", marks=pytest.mark.slow),
        pytest.param(JOBS, id="every job", marks=pytest.mark.slow),  # `make test` only
    ],
)
def test_each_job_is_the_config_hydra_composes(loaders, jobs):
    hydra_loader, reusing, master = loaders
    for overrides in jobs:  # one loader: later jobs reuse the templates of earlier ones
        same_config(hydra_loader, reusing, master, overrides)


def test_a_sweep_over_values_is_composed_once(loaders):
    hydra_loader, reusing, master = loaders
    for seed in range(4):  # the template is made by the first, copied for the others
        reusing.load_sweep_config(master, [f"seed={seed}", "data.noise_std=0.5"])
    for hidden in (3, 4, 5):
        reusing.load_sweep_config(master, ["model=mlp", f"model.hidden={hidden}"])
    assert reusing.composed == 2  # one template per set of group choices


def test_a_copy_is_the_jobs_own(loaders):
    hydra_loader, reusing, master = loaders
    first = reusing.load_sweep_config(master, ["seed=1"])
    first.data.noise_std = 99.0  # a job that changes its config changes no other job's
    second = reusing.load_sweep_config(master, ["seed=2"])
    assert second.data.noise_std != 99.0 and second.seed == 2


@pytest.mark.parametrize("bad", ["trainer.nope=1", "model=nope", "+seed=1", "data=[1"])
def test_a_bad_override_fails_as_in_hydra(loaders, bad):
    hydra_loader, reusing, master = loaders
    with pytest.raises(Exception) as hydra_error:
        hydra_loader.load_sweep_config(master, [bad])
    with pytest.raises(type(hydra_error.value)) as reusing_error:
        reusing.load_sweep_config(master, [bad])
    assert str(reusing_error.value) == str(hydra_error.value)


def test_a_later_jobs_bad_value_fails_as_in_hydra(loaders):
    """A job shaped as an earlier one, with a value its key refuses: Hydra's own error."""
    hydra_loader, reusing, master = loaders
    reusing.load_sweep_config(master, ["seed=1", "data.noise_std=0.5"])
    bad = ["seed=2", "data.noise_std=abc"]
    with pytest.raises(Exception) as hydra_error:
        hydra_loader.load_sweep_config(master, bad)
    with pytest.raises(type(hydra_error.value)) as reusing_error:
        reusing.load_sweep_config(master, bad)
    assert str(reusing_error.value) == str(hydra_error.value)


def test_the_groups_a_job_could_pick_are_the_loaders_own(hydra_loader_and_master):
    """The groups a template is chosen by are read from one copy of the loader's repository:
    the same nested groups (`hydra/launcher` and `hydra.launcher`) as asking the loader."""
    from pipeline.sweeps.job_configs import all_groups

    hydra_loader, _ = hydra_loader_and_master
    groups = all_groups(compat.GroupOptions(hydra_loader))
    assert sorted(groups) == sorted(all_groups(hydra_loader))
    assert {"model", "hydra/launcher", "hydra.launcher"} <= set(groups)
