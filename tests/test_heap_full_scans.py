"""pipeline/sweeps/heap.py's `full_scans_waiting` (the stacked launcher makes a batch's job
configs inside it): no full collection while it holds, young garbage still collected, the
collector's thresholds as they were afterwards. A failure after a Python upgrade means its
collector changed how `gc.set_threshold`'s third count works: mend heap.py."""

from __future__ import annotations

import gc
import weakref

import pytest

from pipeline.sweeps.heap import full_scans_waiting

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
