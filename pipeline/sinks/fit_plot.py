"""Matplotlib figures rendered to PNG bytes in memory (no display, no pyplot).

The figure is drawn with matplotlib's object-oriented API (`Figure`, Agg canvas), which
keeps no global figure state, and stored as a 256-colour palette PNG: a plot of a few
flat colours loses nothing visible and takes about a third of the bytes of the RGBA PNG
matplotlib writes (~8 KiB instead of ~23 KiB per image in the event file).
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from pipeline.data import Dataset


def fit_png(data: Dataset, line_x: np.ndarray, line_y: np.ndarray, step: int, k: float) -> bytes:
    """Train and test points with the model's current fit; returns PNG bytes."""
    fig = Figure(figsize=(5, 3.75), dpi=80)
    # fixed margins: the figure's size and labels never change, and tight_layout()
    # would draw the figure twice (~0.08 s a plot)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.13, top=0.92)
    ax = fig.subplots()
    for split, marker in (("train", "o"), ("test", "x")):
        x, y, label = shown_points(getattr(data, f"x_{split}"), getattr(data, f"y_{split}"), split)
        ax.scatter(x, y, s=8, alpha=0.6, marker=marker, label=label)
    ax.plot(line_x, line_y, color="black", lw=2, label=f"fit, k = {k:.4f}")
    if data.k_true is not None:
        ax.plot(line_x, data.k_true * line_x, "--", color="grey", lw=1, label="truth")
    ax.set(xlabel="x", ylabel="y", title=f"step {step}")
    ax.legend(loc="upper left", fontsize="small")
    return palette_png(fig)


#: points drawn per split at most: a million would take matplotlib seconds and show no more
MAX_POINTS = 2000


def shown_points(x: np.ndarray, y: np.ndarray, label: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Every point, or every k-th one when there are more than MAX_POINTS (said in the label)."""
    every = -(-len(x) // MAX_POINTS)  # ceil
    if every == 1:
        return x, y, label
    return x[::every], y[::every], f"{label} (every {every:,}th of {len(x):,})"


def palette_png(fig: Figure) -> bytes:
    """The figure as a 256-colour palette PNG."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgb = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba())
    buffer = io.BytesIO()
    rgb.convert("RGB").quantize(256).save(buffer, format="png", optimize=True)
    return buffer.getvalue()
