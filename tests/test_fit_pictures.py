"""Fit pictures drawn in a worker process (pipeline/sinks/fit_pictures.py): the image
sink's bytes, whoever draws them.

The stacked launcher hands each written job's last fit to a second process and writes the
PNG it gets back; a user sees those bytes in IMAGES, so they must be the bytes the image
sink draws in the run's own process (`fit_png`: `FitPlot.drawn` in the last picture's
figure, then `png`), also when the worker dies half way (the rest drawn here) and with an
error told where the picture is taken.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.data import LinearData, data_extent
from pipeline.sinks.fit_pictures import FitPictures, fit_png

pytestmark = pytest.mark.slow  # each test starts the worker, a Python process of its own

JOBS = ((0.01, 0), (1.0, 2), (10.0, 4), (0.1, 3))


def requests() -> list[tuple]:
    """Each job's fit as the stacked launcher asks for it: data, label, line, step, k."""
    asked = []
    for noise, seed in JOBS:
        data = LinearData(noise_std=noise, seed=seed).generate()
        lo, hi = data_extent(data)
        x = np.linspace(lo, hi, 101, dtype=np.float32)[:, None]
        k = np.float32(2.0 + noise / 10)
        asked.append((data, f"noise_std={noise},seed={seed}", (x, k * x), 1000, float(k)))
    return asked


def drawn_here(asked: list[tuple]) -> list[bytes]:
    plot, pngs = None, []
    for request in asked:
        plot, png = fit_png(plot, *request)
        pngs.append(png)
    return pngs


def test_the_workers_pictures_are_the_bytes_drawn_here():
    """Two workers share the pictures (each draws in the figure of its last): the bytes
    are the same as one figure drawing them all in order here."""
    asked = requests() * 2
    pictures = FitPictures(workers=2)
    try:
        futures = [pictures.submit(*request) for request in asked]
        got = [future.result(timeout=120) for future in futures]
    finally:
        pictures.close()
    assert pictures._local_plot is None  # drawn by the workers, none here
    assert got == drawn_here(asked)
    assert all(png.startswith(b"\x89PNG") for png in got)
    assert all(not worker.alive and worker.process.poll() == 0 for worker in pictures._workers)


def test_pictures_left_by_a_dead_worker_are_drawn_here_and_errors_reach_the_caller():
    asked = requests()
    pictures = FitPictures()
    (worker,) = pictures._workers
    first = pictures.submit(*asked[0])
    assert first.result(timeout=120) == drawn_here(asked[:1])[0]
    worker.process.kill()
    rest = [pictures.submit(*request) for request in asked[1:]]
    assert [future.result(timeout=120) for future in rest] == drawn_here(asked)[1:]
    assert not worker.alive
    with pytest.raises(AttributeError):  # no data to draw: raised where it is taken
        pictures.submit(None, "", asked[0][2], 1000, 2.0).result(timeout=120)


def test_an_error_in_the_worker_is_raised_where_the_picture_is_taken():
    pictures = FitPictures()
    try:
        broken = pictures.submit(None, "", requests()[0][2], 1000, 2.0)
        with pytest.raises(RuntimeError, match="AttributeError"):
            broken.result(timeout=120)
        after = pictures.submit(*requests()[1])  # the worker draws on
        assert after.result(timeout=120) == drawn_here(requests()[1:2])[0]
    finally:
        pictures.close()


def test_closing_with_pictures_not_taken_ends_and_reaps_the_worker():
    """An interrupted sweep leaves pictures nobody takes: `close` does not draw them all
    (neither there nor here) and leaves no process behind."""
    import time

    from pipeline.sinks.fit_pictures import CLOSE_SECONDS

    asked = requests() * 25
    pictures = FitPictures(workers=2)
    for request in asked:
        pictures.submit(*request)
    started = time.monotonic()
    pictures.close()
    assert time.monotonic() - started < 2 * CLOSE_SECONDS + 5
    assert all(worker.process.poll() is not None for worker in pictures._workers)  # reaped
