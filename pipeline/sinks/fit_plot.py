"""Matplotlib figures rendered to PNG bytes in memory (no display, no pyplot).

The fit is read at TensorBoard's card size (a card is ~400 px wide; IMAGES and TIME SERIES
scale the picture to it): a 480 x 360 px figure with 13-16 pt text, the fit as a thick
black line and the truth drawn on top of it, dashed in red, so it shows even where the two
lines coincide. The title says the run's setting and the estimate of k.

The figure is drawn with matplotlib's object-oriented API (`Figure`, Agg canvas), which
keeps no global figure state, and stored as a 256-colour palette PNG: a plot of a few
flat colours loses nothing visible and takes about a third of the bytes of the RGBA PNG
matplotlib writes.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from pipeline.data import Dataset

#: the truth's colour: red against the blue/orange points and the black fit
TRUTH_COLOUR = "#d62728"


def fit_png(
    data: Dataset,
    line_x: np.ndarray,
    line_y: np.ndarray,
    step: int,
    k: float,
    setting: str = "",
) -> bytes:
    """Train and test points with the model's current fit and the truth; PNG bytes."""
    return palette_png(fit_figure(data, line_x, line_y, step, k, setting))


def fit_figure(
    data: Dataset,
    line_x: np.ndarray,
    line_y: np.ndarray,
    step: int,
    k: float,
    setting: str = "",
) -> Figure:
    """The fit as a matplotlib figure: title, points, fit line, truth on top, legend."""
    fig = Figure(figsize=(6, 4.5), dpi=80)
    # fixed margins: the figure's size and labels never change, and tight_layout()
    # would draw the figure twice (~0.08 s a plot)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.13, top=0.83)
    ax = fig.subplots()
    for split, marker, colour in (("train", "o", "#1f77b4"), ("test", "x", "#ff7f0e")):
        x, y, label = shown_points(getattr(data, f"x_{split}"), getattr(data, f"y_{split}"), split)
        ax.scatter(x, y, s=14, alpha=0.55, marker=marker, color=colour, label=label)
    ax.plot(line_x, line_y, color="black", lw=3, label="fit", zorder=3)
    title = f"k = {k:.4f}"
    if data.k_true is not None:
        ax.plot(
            line_x, data.k_true * line_x, "--", color=TRUTH_COLOUR, lw=2.2, zorder=4,
            label=f"truth, k = {data.k_true:g}",
        )  # fmt: skip
        title += f"  (true {data.k_true:g})"
    fig.suptitle(title, fontsize=17, fontweight="bold", y=0.975)
    ax.set_title(" · ".join(part for part in (setting, f"step {step}") if part), fontsize=13)
    ax.set_xlabel("x", fontsize=13)
    ax.set_ylabel("y", fontsize=13)
    ax.tick_params(labelsize=12)
    ax.legend(loc="upper left", fontsize=12, framealpha=0.9, markerscale=1.5)
    return fig


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
