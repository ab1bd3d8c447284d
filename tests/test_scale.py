"""A sweep of many jobs is checked in O(values), not O(jobs): a bad value at the end of a
10,000-job sweep is found without composing 10,000 configs."""

from __future__ import annotations

import pytest

from pipeline import api, compat
from pipeline.check import preflight
from pipeline.check.errors import BadValue


@pytest.fixture
def compositions(monkeypatch) -> list:
    """Every config the preflight composes (tbpipe's own compose step, counted)."""
    seen = []
    original = compat.compose_with_hydra

    def counted(name, overrides, run_mode):
        seen.append(list(overrides))
        return original(name, overrides, run_mode)

    monkeypatch.setattr(preflight, "compose_with_hydra", counted)
    return seen


def test_a_bad_value_at_the_end_of_a_10000_job_sweep_is_found_composing_a_few_configs(
    compositions, tmp_path
):
    sweep = ["-m", "data.noise_std=0.1,-1", "seed=range(5000)", f"hydra.sweep.dir={tmp_path}/s"]
    with pytest.raises(BadValue, match=r"data.noise_std=-1: must be"):
        api.check_command_line(sweep)
    assert len(compositions) < 10


def test_each_seed_of_a_big_sweep_is_checked_once(compositions, tmp_path):
    with pytest.raises(BadValue, match=r"seed=-1: must be an integer from 0"):
        api.check_command_line(["-m", "seed=range(-1,3000)", f"hydra.sweep.dir={tmp_path}/s"])
    assert len(compositions) < 10


def test_a_relation_between_two_swept_keys_is_still_checked_in_a_big_sweep(tmp_path):
    big = ["data.x_low=0,5", "data.x_high=1,2", "seed=range(600)"]
    with pytest.raises(Exception, match="x_low must be less than x_high"):
        api.check_command_line(["-m", *big, f"hydra.sweep.dir={tmp_path}/s"])


def test_a_good_big_sweep_passes(tmp_path):
    api.check_command_line(["-m", "data.noise_std=0.1,1", "seed=range(3000)",
                            f"hydra.sweep.dir={tmp_path}/s"])  # fmt: skip
