"""Matplotlib figures rendered to PNG bytes in memory (no display, no pyplot).

The fit is read at TensorBoard's card size (IMAGES and TIME SERIES scale a picture to a card
about 300-330 px wide at a 1400 px window): a 400 x 300 px figure with 11-16 pt text, five
ticks an axis, a two-column legend, the fit as a thick black line and the truth drawn on
top of it, dashed in red, so it shows even where the two lines coincide. The title says
the estimate of k, the subtitle the run's setting and step.

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
from matplotlib.ticker import MaxNLocator
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
    fig = Figure(figsize=(5, 3.75), dpi=80)
    # fixed margins: the figure's size and labels never change, and tight_layout()
    # would draw the figure twice (~0.08 s a plot)
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.14, top=0.82)
    ax = fig.subplots()
    for split, marker, colour in (("train", "o", "#1f77b4"), ("test", "x", "#ff7f0e")):
        x, y, label = shown_points(getattr(data, f"x_{split}"), getattr(data, f"y_{split}"), split)
        ax.scatter(x, y, s=12, alpha=0.55, marker=marker, color=colour, label=label)
    ax.plot(line_x, line_y, color="black", lw=3, label="fit", zorder=3)
    title = f"k = {k:.4f}"
    if data.k_true is not None:
        ax.plot(
            line_x, data.k_true * line_x, "--", color=TRUTH_COLOUR, lw=2.2, zorder=4,
            label=f"truth, k = {data.k_true:g}",
        )  # fmt: skip
        title += f"  (true {data.k_true:g})"
    fig.suptitle(title, fontsize=16, fontweight="bold", y=0.975)
    ax.set_title(" · ".join(part for part in (setting, f"step {step}") if part), fontsize=13)
    ax.set_xlabel("x", fontsize=12, labelpad=1)
    ax.set_ylabel("y", fontsize=12, labelpad=1)
    ax.tick_params(labelsize=11)
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.legend(
        loc="upper left", ncol=2, fontsize=12, framealpha=0.9, markerscale=1.5,
        handlelength=1.5, columnspacing=0.8, borderpad=0.3, labelspacing=0.2,
    )  # fmt: skip
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
    # fast octree: ~1 ms against ~8 ms for median cut, the same flat colours; zlib's
    # default effort: `optimize=True` costs ~7 ms more a plot to save ~5% of 9 KB
    rgb.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE).save(buffer, format="png")
    return buffer.getvalue()
