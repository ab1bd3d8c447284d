"""A stacked job is written from what the launcher has in hand: the same as OmegaConf reads.

The story: "the stacked launcher names my job dirs, fills my summary's columns and writes
my scalars as the basic launcher's jobs would; it only skips the slow way there". Each
shortcut of pipeline/sweeps/stacked_write.py is compared with the way it replaces: the job
dir's name read from the saved container (`naming.job_dir_of`) with Hydra's resolver, the
summary's columns read from the resolved config (`summary.resolved_job_columns`) with
`config_columns` on the DictConfig, and a second job's scalar records, built from a layout
made once (`scalar_events.layout_of`), with each record framed on its own; the shapes a
shortcut cannot be sure of give None (OmegaConf then reads them).
"""

from __future__ import annotations

import copy
import struct

import numpy as np
import pytest
from omegaconf import OmegaConf

from pipeline.readback.jobs import config_columns
from pipeline.runinfo import RESUME_ENV, framed
from pipeline.sweeps.naming import JOB_SUBDIR, JOB_WIDTH_ENV, job_dir_of
from pipeline.sweeps.scalar_events import layout_of, records_of, scalar_payloads
from pipeline.sweeps.stacked_configs import references_resolved, resolved_copy, task_config_of
from pipeline.sweeps.stacked_write import WrittenJobReturn, written_steps
from pipeline.sweeps.summary import NOISE_DRAW, resolved_job_columns
from tests.conftest import compose_config

OVERRIDES = ["data.noise_std=0.1", "seed=3", "trainer.steps=5", "g=${oc.env:NOT_SET_HERE}"]


def hydra_node(**changes) -> dict:
    hydra = {
        "sweep": {"dir": "/tmp/sweep", "subdir": JOB_SUBDIR},
        "overrides": {"task": list(OVERRIDES)},
        "job": {
            "num": 7,
            "env_set": {JOB_WIDTH_ENV: "2"},
            "config": {"override_dirname": {"exclude_keys": ["trainer.steps", "g"]}},
        },
    }
    for path, value in changes.items():
        node = hydra
        *parents, key = path.split("__")
        for name in parents:
            node = node[name]
        node[key] = value
    return hydra


def resolver_name(hydra: dict) -> str:
    return str(OmegaConf.create({"hydra": hydra}).hydra.sweep.subdir)


@pytest.mark.parametrize(
    "changes",
    [{}, {"job__env_set": {}}, {"job__env_set": {JOB_WIDTH_ENV: 3}}, {"job__num": 0},
     {"job__config__override_dirname__exclude_keys": []}],
)  # fmt: skip
def test_a_job_dirs_name_is_the_resolvers(changes):
    hydra = hydra_node(**changes)
    assert job_dir_of(copy.deepcopy(hydra)) == resolver_name(hydra)


@pytest.mark.parametrize(
    "changes",
    [{"sweep__subdir": "${hydra.job.num}"}, {"job__env_set": {RESUME_ENV: "1"}},
     {"job__config__override_dirname__exclude_keys": ["${oc.env:NOT_SET_HERE}"]},
     {"job__config__override_dirname__exclude_keys": "${oc.env:NOT_SET_HERE}"},
     {"job__env_set": {JOB_WIDTH_ENV: "${oc.env:NOT_SET_HERE}"}}, {"job__num": "???"}],
)  # fmt: skip
def test_a_name_the_container_cannot_settle_is_left_to_the_resolver(changes):
    assert job_dir_of(hydra_node(**changes)) is None


@pytest.fixture(scope="module")
def task_configs() -> list[tuple[dict, list[str]]]:
    """A task's config as a stacked job saves it (an unresolved container, composed once),
    with its overrides, and with more: keys of nodes and values, one the config lacks."""
    overrides = ["data.noise_std=0.5", "seed=7", "sinks=[scalars,images]"]
    saved = OmegaConf.to_container(compose_config(*overrides), resolve=False)
    saved.pop("hydra", None)
    more = ["optimizer.learning_rate=0.1", "model=linear", "model.k_init=1.5", "+extra.key=3"]
    return [(saved, overrides), (copy.deepcopy(saved), [*overrides, *more])]


def test_summary_columns_from_the_resolved_config_are_config_columns(task_configs):
    for saved, overrides in task_configs:
        task = OmegaConf.create(saved)
        resolved = OmegaConf.to_container(task, resolve=True)
        want = {**config_columns(task, overrides), NOISE_DRAW: OmegaConf.select(task, NOISE_DRAW)}
        got = resolved_job_columns(resolved, overrides)
        assert got == want and got["k_stderr"] > 0 and got["hparams"]["seed"] == task.seed
        assert [type(v) for v in got["hparams"].values()] == [
            type(v) for v in want["hparams"].values()
        ]
        # no noise level in the data: no standard error, as `slope_stderr` says
        del resolved["data"]["noise_std"], saved["data"]["noise_std"]
        want = config_columns(OmegaConf.create(saved), overrides)
        assert resolved_job_columns(resolved, overrides)["k_stderr"] is want["k_stderr"] is None


@pytest.mark.parametrize(
    "change",
    [("seed", "???"), ("seed", "${x}"), ("data", "text"), ("data", {"noise_std": 1.0}),
     ("optimizer", [1, 2])],
)  # fmt: skip
def test_columns_the_resolved_config_cannot_settle_are_left_to_omegaconf(task_configs, change):
    saved, overrides = task_configs[0]
    resolved = OmegaConf.to_container(OmegaConf.create(saved), resolve=True)
    resolved[change[0]] = change[1]
    overrides = [*overrides, "optimizer.learning_rate=0.1"]  # `optimizer` reached through
    assert resolved_job_columns(resolved, overrides) is None


def framed_alone(tags: list[str], steps: np.ndarray, columns: list, wall: bytes) -> bytes:
    """The records as the writer framed them before layouts: tag by tag, run by run."""
    from pipeline.sweeps.scalar_events import runs_of_step_width

    parts = []
    for start, stop, width in runs_of_step_width(steps):
        rows = steps[start:stop]
        parts.append(
            np.hstack(
                [
                    framed(scalar_payloads(t, wall, width, rows, c[start:stop]))
                    for t, c in zip(tags, columns, strict=True)
                ]
            ).tobytes()  # fmt: skip
        )
    return b"".join(parts)


def test_each_jobs_records_from_one_layout_are_framed_as_each_alone():
    tags = ["loss", "k", "k/error"]
    steps = np.unique(np.append(written_steps(300, 7), [16384, 2_097_152]))
    rng = np.random.default_rng(3)
    for job in range(3):  # the layout made by the first, used by the next
        columns = [rng.standard_normal(len(steps)).astype(np.float32) for _ in tags]
        columns[0][:3] = [np.nan, -0.0, np.inf]
        got = records_of(tags, steps, columns)
        wall = got[13:21]  # the first record's Event's wall time, after its key
        assert struct.unpack("<d", wall)[0] > 0
        assert got == framed_alone(tags, steps, columns, wall), job
    assert layout_of(tuple(tags), steps) is layout_of(tuple(tags), steps.copy())
    assert records_of(tags, steps[:0], [c[:0] for c in columns]) == b""


def test_a_tasks_references_read_from_its_container_are_omegaconfs(task_configs):
    saved = copy.deepcopy(task_configs[0][0])
    saved["trainer"]["label"] = "${data.noise_draw}"  # a text, beside `data.seed: ${seed}`
    want = resolved_copy(task_config_of(saved), saved)
    got = references_resolved(saved)
    assert got == want and got["data"]["seed"] == saved["seed"] == 7
    assert got["trainer"]["label"] == saved["data"]["noise_draw"]
    for other in ("${oc.env:HOME}", "${hydra:job.num}", "${hydra.job.num}", "${data}",
                  "${nowhere}", "x ${seed}", "${..seed}"):  # fmt: skip
        assert references_resolved({**saved, "other": other}) is None, other


def test_a_written_jobs_config_is_made_only_when_read(task_configs):
    saved, overrides = task_configs[0]
    job_return = WrittenJobReturn(saved, overrides=overrides)
    assert job_return._cfg is not None and job_return._saved is saved  # not made yet
    assert job_return.cfg == OmegaConf.create(saved) and job_return.cfg is job_return.cfg
    job_return.cfg = None  # as ForgetJobConfigs drops it
    assert job_return.cfg is None and job_return._saved is None
