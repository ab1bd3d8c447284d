"""IMAGES tab: the task's pictures, matplotlib plots rendered to PNG in memory.

`plots/fit` (the tutorial's points, fitted line and truth: one feature),
`plots/predicted_vs_true` (regression with any features) and `plots/confusion_matrix`
(classification), as the task's `images` say.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import tensorflow as tf
from PIL import Image
from tensorboard.plugins.image.metadata import create_summary_metadata as image_metadata

from pipeline.sinks.base import Experiment, Sink
from pipeline.sinks.tags import PLOTS


class ImageSink(Sink):
    """Draws the task's pictures at the end, and every `every` steps if set.

    A plot costs tens of milliseconds of matplotlib, a thousand times a training step, so
    by default only the final fit is drawn.
    """

    reusable_across_jobs = True  # no random state; runs in Python, outside the loop

    in_graph = False  # matplotlib runs in Python, between compiled chunks

    def __init__(self, every: int | None = None, writer: str = "train"):
        super().__init__(writer=writer, every=every)
        self._plot: Future | None = None  # the run's FitPlot, made by the drawing thread
        self._warm: Future | None = None  # matplotlib's first drawing, in that thread

    def writers_used(self) -> set[str]:
        return {self.writer}

    def start(self, experiment: Experiment) -> None:
        """In a worker thread while the loop trains (its compiled calls leave the thread
        room): matplotlib imported and warmed up by a first drawing (a large part of a
        short run's start otherwise) and, for the fit, the plot made with what all its
        pictures share (points, axes, legend) drawn, so each picture costs less."""
        if "fit" not in images_of(experiment):
            self._warm = _drawing().submit(_warm_up_plotting)
            return
        spare = _spares.pop() if _spares else None  # an ended run's figure, to reuse
        self._plot = _drawing().submit(_fit_plot, experiment.data, experiment.label, spare)

    def record(self, experiment: Experiment, step: Any, stats: Mapping[str, Any]) -> None:
        self._warmed()  # one figure drawn at a time
        draw = {"fit": self.fit, **TASK_PICTURES}
        pictures = {
            PLOTS + image: draw[image](experiment, int(step), stats)
            for image in images_of(experiment)
        }
        with self.writer_of(experiment).as_default(step=int(step)):
            for tag, png in pictures.items():
                write_png(tag, png)

    def fit(self, experiment: Experiment, step: int, stats: Mapping[str, Any]) -> bytes:
        """The tutorial's picture: points, the fitted line and the truth."""
        if self._plot is None:  # a resumed run does not start its sinks again
            self.start(experiment)
        plot = self._plot.result()  # drawn by now (or its error raised here)
        from pipeline.data import data_extent

        lo, hi = data_extent(experiment.data)
        line_x = np.linspace(lo, hi, 101, dtype=np.float32)[:, None]
        line_y = experiment.model(tf.constant(line_x)).numpy()
        return plot.png(line_x, line_y, step=step, k=float(stats.get("train/k", float("nan"))))

    def _warmed(self) -> None:
        """Wait for the warm-up drawing (its error, if any, is the real drawing's to raise)."""
        if self._warm is not None:
            self._warm.exception()
            self._warm = None

    def finish(self, experiment: Experiment, status: str) -> None:
        """However the run ended, its drawing is done before the next run's starts."""
        self._warmed()
        if self._plot is not None and self._plot.exception() is None:  # waits for it
            _spares[:] = [self._plot.result()]  # the next run's plot may reuse its figure
        self._plot = None  # (an error was raised by `record` already)


def images_of(experiment: Experiment) -> list[str]:
    """The pictures the run's task asks for (the fit, for a run without a task)."""
    task = experiment.task
    return list(task.images) if task is not None else ["fit"]


def predictions(experiment: Experiment, split: str) -> np.ndarray:
    return np.asarray(experiment.model(experiment.tensors[f"x_{split}"]))


def predicted_vs_true(experiment: Experiment, step: int, stats: Mapping[str, Any]) -> bytes:
    """Regression: every point's prediction against its true value, train and test."""
    from pipeline.sinks.task_plots import predicted_vs_true_png

    data = experiment.data
    return predicted_vs_true_png(
        data.y_train,
        predictions(experiment, "train"),
        data.y_test,
        predictions(experiment, "test"),
        step=step,
        title=experiment.label,
    )


def confusion_matrix(experiment: Experiment, step: int, stats: Mapping[str, Any]) -> bytes:
    """Classification: the test split's true labels against the predicted ones."""
    from pipeline.sinks.task_plots import confusion_matrix_png

    data = experiment.data
    logits = predictions(experiment, "test")
    return confusion_matrix_png(
        data.y_test.reshape(-1),
        logits.argmax(axis=-1),
        int(logits.shape[-1]),
        step=step,
        title=experiment.label,
    )


def _warm_up_plotting() -> None:
    """What a task's first picture pays once per process (importing matplotlib, loading its
    fonts and colour maps, the first draw), paid ahead of it by a picture nobody sees."""
    from pipeline.sinks.task_plots import confusion_matrix_png

    confusion_matrix_png(np.zeros(2, np.int64), np.zeros(2, np.int64), 2, step=0)


def _fit_plot(data: Any, label: str, spare: Any) -> Any:
    """The run's `FitPlot`, its shared parts drawn (in the drawing thread)."""
    from pipeline.sinks.fit_plot import FitPlot

    return FitPlot.drawn(data, label, spare)


#: the pictures other than the fit, by the name a task's `images` gives them
TASK_PICTURES = {"predicted_vs_true": predicted_vs_true, "confusion_matrix": confusion_matrix}

#: the figure of the last run that ended in this process, for the next run's plot: one,
#: taken by one run at a time (a sweep's jobs follow one another)
_spares: list[Any] = []  # pipeline.sinks.fit_plot.FitPlot


@functools.cache
def _drawing() -> ThreadPoolExecutor:
    """The one worker thread that draws plot backgrounds: one at a time, so matplotlib
    (not thread-safe) never draws two figures at once."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="tbpipe-plot")


def write_png(tag: str, png: bytes) -> None:
    """Write an encoded PNG as an IMAGES-tab summary, as `tf.summary.image` stores one
    ([width, height, png] strings) but without decoding and re-encoding it."""
    width, height = Image.open(io.BytesIO(png)).size
    tf.summary.write(
        tag,
        tf.constant([str(width), str(height), png]),
        metadata=image_metadata(display_name=None, description=None),
    )
