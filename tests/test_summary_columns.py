"""A summary row's columns from a job's config: its data's values resolved as OmegaConf does.

The story: "the k_stderr column of every job of my sweep is what the job's own data give";
the sweep summary regenerates each job's training x from its saved config, resolving the
data node's `seed: ${seed}` without OmegaConf's grammar parser (`resolved_values`). Here
it is compared with OmegaConf's `to_container(resolve=True)` on configs composed by Hydra
and on the shapes that must go to OmegaConf instead (typed nodes, other interpolations,
references to text, to nodes, to missing or absent keys), errors included.
"""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from pipeline.readback.jobs import resolved_values, slope_stderr
from tests.conftest import compose_config


@pytest.mark.parametrize(
    "overrides",
    [(), ("seed=7", "data.noise_std=0.5"), ("data.seed=3",), ("data.x_low=-2", "seed=11")],
)
def test_a_composed_jobs_data_resolve_as_omegaconf_resolves_them(overrides):
    config = compose_config(*overrides)
    task = OmegaConf.create(OmegaConf.to_container(config, resolve=False))  # as a job saves it
    for job_config in (config, task):
        want = OmegaConf.to_container(job_config.data, resolve=True)
        got = resolved_values(job_config.data)
        assert got == want and list(got) == list(want)
        assert [type(v) for v in got.values()] == [type(v) for v in want.values()]
    stderr = slope_stderr(task)
    assert stderr is not None and stderr > 0


def test_every_other_shape_is_resolved_by_omegaconf_with_its_errors():
    config = OmegaConf.create(
        {
            "seed": 5, "text": "5", "flag": True, "rate": 0.5, "node": {"a": 1},
            "env": "${oc.decode:'7'}", "missing": "???",
            "data": {
                "plain": 1, "by_key": "${seed}", "by_path": "${node.a}", "flag": "${flag}",
                "rate": "${rate}", "to_text": "${text}", "to_node": "${node}",
                "decoded": "${env}", "inside": "x${seed}", "escaped": "\\${seed}",
                "relative": "${.plain}", "unset": "???", "nested": {"b": "${seed}"},
            },
        }
    )  # fmt: skip
    data = config.data
    assert resolved_values(data) == OmegaConf.to_container(data, resolve=True)
    by_key = OmegaConf.create({"seed": 2, "data": {"seed": "${seed}", "n": 3}})
    assert resolved_values(by_key.data) == {"seed": 2, "n": 3}
    for broken in (
        {"data": {"seed": "${absent}"}},
        {"missing": "???", "data": {"s": "${missing}"}},
    ):
        node = OmegaConf.create(broken).data
        with pytest.raises(Exception) as theirs:
            OmegaConf.to_container(node, resolve=True)
        with pytest.raises(type(theirs.value)) as ours:
            resolved_values(node)
        assert str(ours.value) == str(theirs.value)
