"""IMAGES tab: a matplotlib plot of the fit, rendered to PNG in memory."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf
from PIL import Image
from tensorboard.plugins.image.metadata import create_summary_metadata as image_metadata

from pipeline.sinks.base import Experiment, Sink
from pipeline.sinks.fit_plot import fit_png
from pipeline.sinks.tags import FIT


class ImageSink(Sink):
    """Plots train/test points and the model's fit at the end, and every `every` steps if set.

    A plot costs tens of milliseconds of matplotlib, a thousand times a training step, so
    by default only the final fit is drawn.
    """

    reusable_across_jobs = True  # no random state; runs in Python, outside the loop

    in_graph = False  # matplotlib runs in Python, between compiled chunks

    def __init__(self, every: int | None = None, writer: str = "train"):
        super().__init__(writer=writer, every=every)

    def writers_used(self) -> set[str]:
        return {self.writer}

    def record(self, experiment: Experiment, step: Any, stats: Mapping[str, Any]) -> None:
        data = experiment.data
        lo = float(min(data.x_train.min(), data.x_test.min()))
        hi = float(max(data.x_train.max(), data.x_test.max()))
        line_x = np.linspace(lo, hi, 101, dtype=np.float32)[:, None]
        line_y = experiment.model(tf.constant(line_x)).numpy()
        png = fit_png(
            data, line_x, line_y, step=int(step), k=float(stats["k"]), setting=experiment.label
        )
        with self.writer_of(experiment).as_default(step=int(step)):
            write_png(FIT, png)


def write_png(tag: str, png: bytes) -> None:
    """Write an encoded PNG as an IMAGES-tab summary, as `tf.summary.image` stores one
    ([width, height, png] strings) but without decoding and re-encoding it."""
    width, height = Image.open(io.BytesIO(png)).size
    tf.summary.write(
        tag,
        tf.constant([str(width), str(height), png]),
        metadata=image_metadata(display_name=None, description=None),
    )
