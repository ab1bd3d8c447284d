"""Pictures read at TensorBoard's card size: IMAGES and TIME SERIES shrink a picture to a
card ~325 px wide (at a 1400 px window), as a browser scales an image down."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from pipeline.data import LinearData
from pipeline.sinks.fit_plot import TRUTH_COLOUR, FitPlot

#: a card's width in TIME SERIES and IMAGES at a 1400 px window
CARD_WIDTH = 325


def fit_at_card_size(noise_std: float) -> tuple[FitPlot, np.ndarray, float]:
    """The fit picture of a converged run, as written to the event file, shrunk to a card
    with a box filter (what a browser's downscale comes closest to); its scale."""
    data = LinearData(noise_std=noise_std).generate()
    plot = FitPlot.drawn(data, f"noise_std={noise_std}")
    x = np.array([data.x_train.min(), data.x_train.max()])
    picture = Image.open(io.BytesIO(plot.png(x, 1.99 * x, 1000, 1.99))).convert("RGB")
    scale = CARD_WIDTH / picture.width
    card = picture.resize((CARD_WIDTH, round(picture.height * scale)), Image.Resampling.BOX)
    return plot, np.asarray(card), scale


def test_the_fits_tick_labels_keep_their_minus_signs_at_card_size():
    plot, card, scale = fit_at_card_size(0.5)
    ax, renderer = plot.figure.axes[0], plot.canvas.get_renderer()
    height = plot.figure.bbox.height
    negative = []
    for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        for tick in axis.get_major_ticks():
            label = tick.label1
            if label.get_text().startswith("\u2212") and lo <= tick.get_loc() <= hi:
                x0, y0, x1, y1 = label.get_window_extent(renderer).extents
                minus_right = x0 + (x1 - x0) / len(label.get_text())  # the first character
                rows = slice(int((height - y1) * scale), int((height - y0) * scale) + 1)
                columns = slice(int(x0 * scale), int(minus_right * scale) + 1)
                negative.append((label.get_text(), int(card[rows, columns].min())))
    assert len(negative) >= 3, negative
    # each minus sign still has a near-black pixel (a regular-weight one fades to grey ~128)
    assert all(darkest < 64 for _, darkest in negative), negative


def test_the_truth_line_shows_over_the_fit_at_card_size():
    red = np.array([int(TRUTH_COLOUR[i : i + 2], 16) for i in (1, 3, 5)])
    for noise in (0.01, 0.5):  # the fit right on the truth, and among scattered points
        _, card, _ = fit_at_card_size(noise)
        reddish = np.abs(card.astype(int) - red).sum(axis=2) < 90
        assert reddish.sum() > 150, (noise, int(reddish.sum()))  # the dashes, not the legend alone


def test_a_fit_drawn_in_parts_is_the_figure_drawn_whole():
    """A job's picture is drawn in parts (the background once, the fit and titles over it,
    the legend drawn once a figure and laid over last) and must show what the whole figure
    drawn at once shows: the same pixels but for blending's rounding at the legend's text
    edges (a level or two, a few more after the palette), the legend's frame whole and the
    fit seen through it as through the frame a whole draw gives."""
    from pipeline.data import data_extent
    from pipeline.sinks.fit_plot import fit_figure, palette_png

    spare = None
    for noise, seed in ((0.01, 0), (1.0, 2), (10.0, 4)):  # the fit under the legend or not
        data = LinearData(noise_std=noise, seed=seed).generate()
        spare = FitPlot.drawn(data, f"noise_std={noise}", spare)
        lo, hi = data_extent(data)
        x = np.linspace(lo, hi, 101, dtype=np.float32)[:, None]
        parts = spare.png(x, 2.05 * x, 1000, 2.05)
        whole = palette_png(fit_figure(data, x, 2.05 * x, 1000, 2.05, f"noise_std={noise}"))
        parts_rgb, whole_rgb = (
            np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
            for png in (parts, whole)
        )
        difference = np.abs(parts_rgb - whole_rgb).max(axis=2)
        assert difference.max() <= 32, (noise, int(difference.max()))
        assert (difference > 8).sum() < 0.001 * difference.size, (noise, (difference > 8).sum())
