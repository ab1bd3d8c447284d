"""What the stacked launcher reads of a job's task and sinks is read once for the jobs that
share them (pipeline/sweeps/stacked.py `scalars_only`): each job still gets its own sink
nodes, and a job whose task or sinks differ, or hold an interpolation, is read on its own."""

from __future__ import annotations

import pytest

from pipeline.sweeps import stacked
from tests.conftest import compose_config

pytestmark = pytest.mark.slow  # composes a 12-job sweep's configs: `make test` only


def test_jobs_that_share_their_task_and_sinks_read_them_once(monkeypatch):
    reads = []
    real = stacked._scalars_only_of
    monkeypatch.setattr(stacked, "_scalars_only_of", lambda *a: reads.append(1) or real(*a))
    stacked._scalars_only_seen.clear()
    first, second = (compose_config("trainer.steps=20", f"seed={s}") for s in (1, 2))
    one, two = stacked.scalars_only(first), stacked.scalars_only(second)
    assert len(reads) == 1 and one[0] is two[0] and one[1] == two[1] == 1
    assert [n._target_ for n in one[2]] == [n._target_ for n in two[2]] and len(one[2]) == 5
    assert all(n._get_root() is first for n in one[2])  # each job's own nodes
    assert all(n._get_root() is second for n in two[2])
    assert stacked.scalars_only(compose_config("trainer.steps=20", "sinks.scalars.every=5"))[1] == 5
    assert stacked.scalars_only(compose_config("sinks.images.every=10")) is None
    assert len(reads) == 3


def test_a_task_or_sink_with_an_interpolation_is_read_for_each_job(monkeypatch):
    reads = []
    real = stacked._scalars_only_of
    monkeypatch.setattr(stacked, "_scalars_only_of", lambda *a: reads.append(1) or real(*a))
    stacked._scalars_only_seen.clear()
    for seed in (1, 2):
        cfg = compose_config("trainer.steps=20", f"seed={seed}", "+sinks.scalars.note=${seed}")
        assert stacked.scalars_only(cfg) is not None
    assert len(reads) == 2
