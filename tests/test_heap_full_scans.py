"""pipeline/sweeps/heap.py's `full_scans_waiting` (the stacked launcher makes a batch's job
configs inside it): no full collection while it holds, young garbage still collected, the
collector's thresholds as they were afterwards; and `freeze_a_first_batch`. A failure after
a Python upgrade means its collector changed how `gc.set_threshold`'s third count works:
mend heap.py."""

from __future__ import annotations

import gc
import weakref

import pytest

from pipeline.sweeps.heap import freeze_a_first_batch, full_scans_waiting

#: objects made and kept: enough young collections for Python to start a full one
KEPT = 100_000


class Cycle:
    """An object that refers to itself: only the collector frees it."""

    def __init__(self) -> None:
        self.me = self


def generations_collected(make) -> list[int]:
    """The generation of each collection Python starts while `make()` runs."""
    started: list[int] = []

    def note(phase: str, info: dict) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.callbacks.append(note)
    try:
        kept = make()
    finally:
        gc.callbacks.remove(note)
    del kept
    return started


def kept_objects() -> list:
    return [[number] for number in range(KEPT)]


def test_no_full_collection_while_it_holds_and_young_garbage_still_goes():
    gc.freeze()  # the test process's own objects out of the count: a full scan comes soon
    try:
        gc.collect()
        assert 2 in generations_collected(kept_objects), "without it, a full collection runs"
        gc.collect()
        thresholds = gc.get_threshold()
        with full_scans_waiting():
            garbage = weakref.ref(Cycle())
            started = generations_collected(kept_objects)
            assert garbage() is None, "a young object that died is collected"
        assert 1 in started and 2 not in started, started
        assert gc.get_threshold() == thresholds
    finally:
        gc.unfreeze()


def test_the_thresholds_come_back_when_the_block_raises():
    thresholds = gc.get_threshold()
    with pytest.raises(KeyError), full_scans_waiting():
        raise KeyError("a job's config")
    assert gc.get_threshold() == thresholds


def test_a_first_batch_is_frozen_and_a_later_one_stays_collectable():
    """The stacked launcher's first batch is left out of later scans; once something is
    frozen (a first batch, or the second job's `FreezeWhatTheFirstJobLoaded`), a later
    batch's configs are not, so they go once their jobs are written."""
    gc.unfreeze()  # this process as a launcher before its first batch
    try:
        freeze_a_first_batch()
        frozen = gc.get_freeze_count()
        assert frozen > 0
        later = [Cycle() for _ in range(1000)]
        freeze_a_first_batch()
        assert gc.get_freeze_count() == frozen
        gone = weakref.ref(later[0])
        del later
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
