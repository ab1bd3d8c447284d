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

from pipeline.data import Dataset, data_extent

#: the truth's colour: red against the blue/orange points and the black fit
TRUTH_COLOUR = "#d62728"


class FitPlot:
    """The fit figure of one run, drawn in parts.

    What stays the same for the whole run (the points, the axes and their ticks, the
    truth's extent) is drawn once, by `draw_background`, which may run in a worker thread
    while the loop trains (TensorFlow lets go of Python's lock meanwhile). Each `png` then
    draws only what changes on a copy of it (the fit, the truth over it, the titles) and
    lays the legend over the picture last.

    The legend is the same in every picture of the figure and of every run that reuses
    it (`drawn`'s `spare` must have the same legend): it is drawn once, alone on a
    transparent canvas, and its pixels are blended over each picture as Agg blends them
    when it draws the legend there (to within a level of rounding), so a sweep's jobs do
    not lay out and render its texts again.

    The axes' limits come from the points and the truth, not from the fit: a fit far off
    (early steps, a diverging run) leaves the plot at its edges instead of squeezing the
    points into a band.
    """

    def __init__(self, data: Dataset, setting: str = ""):
        self.data = data
        self.setting = setting
        self.figure = fit_figure(data, setting=setting)
        self.canvas = FigureCanvasAgg(self.figure)
        self._background = None
        #: the legend's pixels on a transparent canvas: (row, column) of its corner, RGBA
        self._legend: tuple[int, int, np.ndarray] | None = None
        legend = self.figure.axes[0].get_legend()
        #: what `png` draws over the background, in drawing order (the legend is laid over)
        self._changing = [a for a in animated_artists(self.figure) if a is not legend]

    @classmethod
    def drawn(cls, data: Dataset, setting: str = "", spare: FitPlot | None = None) -> FitPlot:
        """A plot with its background drawn: what a worker thread makes while the loop runs.

        `spare`, an ended run's plot, is reused when its legend reads the same (the usual
        sweep job): its points and axes' limits are set anew, saving the building of
        a figure and the drawing of its legend (tests/test_core.py checks that its
        pictures are the same, pixel for pixel).
        """
        if spare is not None and spare.legend_labels() == legend_labels(data):
            plot = spare
            plot.show_data(data, setting)
        else:
            plot = cls(data, setting)
        plot.draw_background()
        return plot

    def legend_labels(self) -> list[str]:
        """What this plot's legend says (the points' and the truth's labels)."""
        return [text.get_text() for text in self.figure.axes[0].get_legend().get_texts()]

    def show_data(self, data: Dataset, setting: str) -> None:
        """Put another run's points and truth into this figure, with limits as a new
        figure would take them (a fit from an earlier run is cleared first)."""
        self.data, self.setting = data, setting
        ax = self.figure.axes[0]
        fit, *truth = ax.get_lines()
        fit.set_data([], [])
        for points, split in zip(ax.collections, ("train", "test"), strict=True):
            x, y, _ = shown_points(getattr(data, f"x_{split}"), getattr(data, f"y_{split}"), split)
            points.set_offsets(np.column_stack([x, y]))
        if truth:
            lo, hi = data_extent(data)
            truth[0].set_data([lo, hi], [data.k_true * lo, data.k_true * hi])
        ax.relim()
        ax.autoscale_view()
        self._background = None

    def draw_background(self) -> None:
        """Draw everything but the changing artists and the legend (marked animated) and
        keep the pixels; the legend alone too, the first time.

        The axes' title is animated, yet a full draw still works out where it would go
        (laying the y axis out once more to see whether its offset text is in the way);
        `set_fit` puts each picture's title back at its usual height anyway, so the
        draw runs with the title empty, which matplotlib leaves alone."""
        ax = self.figure.axes[0]
        title = ax.title.get_text()
        ax.title.set_text("")
        try:
            self.canvas.draw()
        finally:
            ax.title.set_text(title)
        if self._legend is None:
            self._legend = self._legend_alone()
        self._background = self.canvas.copy_from_bbox(self.figure.bbox)

    def _legend_alone(self) -> tuple[int, int, np.ndarray]:
        """The legend drawn on the cleared (transparent) canvas: its RGBA pixels, with
        the row and column of their top left corner. The canvas is drawn again after."""
        renderer = self.canvas.get_renderer()
        renderer.clear()
        legend = self.figure.axes[0].get_legend()
        legend.draw(renderer)
        height = renderer.height
        x0, y0, x1, y1 = legend.get_window_extent(renderer).extents
        top, left = max(int(height - y1) - 1, 0), max(int(x0) - 1, 0)
        bottom, right = int(np.ceil(height - y0)) + 1, int(np.ceil(x1)) + 1
        pixels = np.array(self.canvas.buffer_rgba())[top:bottom, left:right]
        self.canvas.draw()
        return top, left, pixels

    def png(self, line_x: np.ndarray, line_y: np.ndarray, step: int, k: float) -> bytes:
        """The figure with this fit, as palette PNG bytes."""
        if self._background is None:
            self.draw_background()
        set_fit(self.figure, line_x, line_y, step, k, self.data, self.setting)
        self.canvas.restore_region(self._background)
        renderer = self.canvas.get_renderer()
        for artist in self._changing:
            artist.draw(renderer)
        rgb = np.array(self.canvas.buffer_rgba())[..., :3]
        top, left, legend = self._legend
        lay_over(rgb[top : top + legend.shape[0], left : left + legend.shape[1]], legend)
        return palette_png(rgb)


def lay_over(rgb: np.ndarray, rgba: np.ndarray) -> None:
    """Blend straight-alpha RGBA pixels over RGB ones in place, as Agg blends a colour
    of that alpha over an opaque pixel (rounded to the nearest level)."""
    alpha = rgba[..., 3:].astype(np.uint32)
    blended = rgba[..., :3] * alpha + rgb * (255 - alpha) + 127
    rgb[...] = blended // 255


def fit_figure(
    data: Dataset,
    line_x: np.ndarray | None = None,
    line_y: np.ndarray | None = None,
    step: int = 0,
    k: float = float("nan"),
    setting: str = "",
) -> Figure:
    """The fit as a matplotlib figure: title, points, fit line, truth on top, legend.

    The fit, the truth, the legend and the titles are marked animated (left out of a
    full draw, drawn over the background by `FitPlot.png`); `line_x`/`line_y` given, the
    fit is set as well.
    """
    fig = Figure(figsize=(5, 3.75), dpi=80)
    # fixed margins: the figure's size and labels never change, and tight_layout()
    # would draw the figure twice
    fig.subplots_adjust(left=0.15, right=0.97, bottom=0.15, top=0.82)
    ax = fig.subplots()
    for split, marker, colour in (("train", "o", "#1f77b4"), ("test", "x", "#ff7f0e")):
        x, y, label = shown_points(getattr(data, f"x_{split}"), getattr(data, f"y_{split}"), split)
        ax.scatter(x, y, s=12, alpha=0.55, marker=marker, color=colour, label=label)
    ax.plot([], [], color="black", lw=3, label="fit", zorder=3, animated=True)
    if data.k_true is not None:
        lo, hi = data_extent(data)
        ax.plot(
            [lo, hi], [data.k_true * lo, data.k_true * hi], "--", color=TRUTH_COLOUR, lw=2.2,
            zorder=4, label=truth_label(data.k_true), animated=True,
        )  # fmt: skip
    fig.suptitle("", fontsize=16, fontweight="bold", y=0.975).set_animated(True)
    ax.set_title("", fontsize=13).set_animated(True)
    ax.set_xlabel("x", fontsize=12, labelpad=1)
    ax.set_ylabel("y", fontsize=12, labelpad=1)
    ax.tick_params(labelsize=12, width=1.5)
    for label in (*ax.get_xticklabels(), *ax.get_yticklabels()):
        label.set_fontweight("bold")  # a regular minus is one pixel thick: lost in the card
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.legend(
        loc="upper left", ncol=2, fontsize=12, framealpha=0.9, markerscale=1.5,
        handlelength=1.5, columnspacing=0.8, borderpad=0.3, labelspacing=0.2,
    ).set_animated(True)  # fmt: skip
    if line_x is not None and line_y is not None:
        set_fit(fig, line_x, line_y, step, k, data, setting)
    return fig


def set_fit(
    fig: Figure, line_x: np.ndarray, line_y: np.ndarray, step: int, k: float, data: Dataset,
    setting: str,
) -> None:  # fmt: skip
    """Put this fit and its titles into the figure (the estimate of k, setting and step)."""
    ax = fig.axes[0]
    ax.get_lines()[0].set_data(np.ravel(line_x), np.ravel(line_y))
    title = f"k = {k:.4f}"
    if data.k_true is not None:
        title += f"  (true {data.k_true:g})"
    fig.suptitle(title, fontsize=16, fontweight="bold", y=0.975)  # the same Text, new words
    ax.set_title(" · ".join(part for part in (setting, f"step {step}") if part), fontsize=13)


def animated_artists(fig: Figure) -> list:
    """The artists a full draw leaves out, in the order they are drawn over it (by zorder:
    the fit, then the truth on top of it, then the legend)."""
    found = [a for a in fig.findobj() if a.get_animated()]
    return sorted(found, key=lambda artist: artist.get_zorder())


def legend_labels(data: Dataset) -> list[str]:
    """What the legend of `data`'s plot says, in order: the points, the fit, the truth."""
    labels = [
        shown_points(getattr(data, f"x_{split}"), getattr(data, f"y_{split}"), split)[2]
        for split in ("train", "test")
    ]
    labels.append("fit")
    if data.k_true is not None:
        labels.append(truth_label(data.k_true))
    return labels


def truth_label(k_true: float) -> str:
    """The truth's entry in the legend."""
    return f"truth, k = {k_true:g}"


#: points drawn per split at most: a million would take matplotlib seconds and show no more
MAX_POINTS = 2000


def shown_points(x: np.ndarray, y: np.ndarray, label: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Every point, or every k-th one when there are more than MAX_POINTS (said in the label)."""
    every = -(-len(x) // MAX_POINTS)  # ceil
    if every == 1:
        return x, y, label
    return x[::every], y[::every], f"{label} (every {every:,}th of {len(x):,})"


def palette_png(drawn: Figure | np.ndarray) -> bytes:
    """RGB pixels (or a figure, drawn whole) as a 256-colour palette PNG."""
    if isinstance(drawn, Figure):
        canvas = FigureCanvasAgg(drawn)
        canvas.draw()
        for artist in animated_artists(drawn):
            artist.draw(canvas.get_renderer())
        drawn = np.array(canvas.buffer_rgba())[..., :3]
    buffer = io.BytesIO()
    # fast octree: several times faster than median cut, the same flat colours; zlib's
    # fastest level: the same pixels, a few more bytes than its default in a fraction of
    # the time (`optimize=True` would cost more time a plot than the bytes it saves)
    picture = Image.fromarray(np.ascontiguousarray(drawn), "RGB")
    picture.quantize(256, method=Image.Quantize.FASTOCTREE).save(
        buffer, format="png", compress_level=1
    )
    return buffer.getvalue()
