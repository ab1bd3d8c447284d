"""The pictures of a regression and a classification run: predicted vs true, confusion matrix.

Pure renderers: arrays in, palette PNG bytes out, no TensorFlow and no writer, so the image
sink decides when to draw them and tests read the numbers they show. Each is drawn at
450 x 450 px (4.5 in square at 100 dpi) with 10-13 pt text, legible where TensorBoard scales a
picture down to its card (300-450 px wide); tick labels keep matplotlib's minus sign (U+2212,
in the bundled DejaVu Sans). Figures are `matplotlib.figure.Figure` on an Agg canvas, never
pyplot: no global figure list to leak into, no display, safe in a worker thread. The same
arrays give the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from pipeline.sinks.fit_plot import shown_points

#: the figure's size in inches at `DPI`: 450 x 450 px, square as the axes are (equal scales,
#: square cells), so they fill the card's width
FIGSIZE, DPI = (4.5, 4.5), 100
#: the splits' colours and markers, as in the fit plot
SPLITS = (("train", "o", "#1f77b4"), ("test", "x", "#ff7f0e"))
#: above this many classes the cells are too small for their counts: the colours say it alone
MAX_CLASSES_WITH_COUNTS = 20


def r_squared(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """1 - SS_res / SS_tot over every value given; nan where the truth is constant (or empty)."""
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2)) if y_true.size else 0.0
    if ss_tot == 0.0:
        return float("nan")
    return 1.0 - float(np.sum((y_true - y_pred) ** 2)) / ss_tot


def first_column(values: np.ndarray) -> tuple[np.ndarray, int]:
    """A target's first column and how many it has: (N,), (N, 1) and (N, T) alike."""
    values = np.asarray(values, dtype=np.float64)
    flat = values.reshape(values.shape[0], int(np.prod(values.shape[1:])))  # (0, T) too
    return flat[:, 0], flat.shape[1]


def predicted_vs_true_figure(
    y_train: np.ndarray, pred_train: np.ndarray, y_test: np.ndarray, pred_test: np.ndarray,
    *, step: int, title: str = "",
) -> Figure:  # fmt: skip
    """Predicted against true for both splits over the line y = x; the test split's R² on top.

    A target of several columns (N, T) is shown by its first column (the axes say so): one
    panel stays legible at card size where T small ones would not. R² is of that column.
    """
    n_targets = first_column(y_test)[1]
    columns = {
        split: (first_column(y)[0], first_column(pred)[0])
        for split, y, pred in (("train", y_train, pred_train), ("test", y_test, pred_test))
    }
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    ax = fig.subplots()
    for split, marker, colour in SPLITS:
        true, guess = columns[split]
        if len(true):  # an empty split still has its entry in the legend
            true, guess, label = shown_points(true, guess, split)
        else:
            label = split
        ax.scatter(true, guess, s=14, alpha=0.6, marker=marker, color=colour, label=label)
    every = np.concatenate([v for pair in columns.values() for v in pair])
    every = every[np.isfinite(every)]
    lo, hi = (float(every.min()), float(every.max())) if every.size else (0.0, 1.0)
    pad = 0.05 * (hi - lo) or 0.5  # a constant column still gets a visible square
    lo, hi = lo - pad, hi + pad
    ax.plot([lo, hi], [lo, hi], "--", color="black", lw=1.5, label="y = x", zorder=0)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal", adjustable="box")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(5))
    which = f" (column 0 of {n_targets})" if n_targets > 1 else ""
    ax.set_xlabel(f"true{which}", fontsize=11)
    ax.set_ylabel(f"predicted{which}", fontsize=11)
    ax.tick_params(labelsize=10)
    ax.legend(loc="upper left", fontsize=10, framealpha=0.9, markerscale=1.3, borderpad=0.3)
    fig.suptitle(f"test R² = {r_squared(*columns['test']):.3f}", fontsize=13, fontweight="bold")
    ax.set_title(subtitle(title, step), fontsize=11)
    return fig


def predicted_vs_true_png(
    y_train: np.ndarray, pred_train: np.ndarray, y_test: np.ndarray, pred_test: np.ndarray,
    *, step: int, title: str = "",
) -> bytes:  # fmt: skip
    """`predicted_vs_true_figure` as palette PNG bytes (450 x 450 px)."""
    return palette_png(
        predicted_vs_true_figure(y_train, pred_train, y_test, pred_test, step=step, title=title)
    )


def class_ids(values: np.ndarray, n_classes: int, what: str) -> np.ndarray:
    """Class ids as a flat int array: ids of shape (N,) or (N, 1), or scores (N, C) -> argmax."""
    values = np.asarray(values)
    if values.ndim == 2 and values.shape[1] == n_classes and n_classes > 1:
        values = values.argmax(axis=1)
    ids = values.reshape(-1)
    if ids.size and (not np.all(ids == np.round(ids)) or ids.min() < 0 or ids.max() >= n_classes):
        allowed, got = f"0..{n_classes - 1}", f"{ids.min()}..{ids.max()}"
        raise ValueError(f"{what} must be class ids in {allowed}, got {got}")
    return ids.astype(np.int64)


def confusion_counts(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """The confusion matrix the picture shows: counts[true, predicted], shape (C, C).

    `predictions` are class ids, or one score per class (N, C), taken by their largest.
    """
    true = class_ids(labels, n_classes, "labels")
    guess = class_ids(predictions, n_classes, "predictions")
    if true.shape != guess.shape:
        raise ValueError(f"labels ({true.size}) and predictions ({guess.size}) differ in length")
    pairs = np.bincount(true * n_classes + guess, minlength=n_classes * n_classes)
    return pairs.reshape(n_classes, n_classes)


def confusion_matrix_figure(
    labels: np.ndarray, predictions: np.ndarray, n_classes: int, *, step: int, title: str = "",
    class_names: Sequence[str] | None = None,
) -> Figure:  # fmt: skip
    """The test split's confusion matrix (rows true, columns predicted), counts in the cells
    (dark on light cells, light on dark, zeros in grey so the mistakes stand out), the
    accuracy on top."""
    counts = confusion_counts(labels, predictions, n_classes)
    names = [str(name) for name in (range(n_classes) if class_names is None else class_names)]
    if len(names) != n_classes:
        raise ValueError(f"class_names has {len(names)} names for {n_classes} classes")
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    ax = fig.subplots()
    cmap, norm = colormaps["Blues"], Normalize(0, max(int(counts.max()), 1))
    ax.imshow(counts, cmap=cmap, norm=norm, interpolation="nearest")
    if n_classes <= MAX_CLASSES_WITH_COUNTS:
        size = 11 if n_classes <= 6 else 9 if n_classes <= 12 else 7
        luminance = cmap(norm(counts))[..., :3] @ [0.2126, 0.7152, 0.0722]  # of each cell
        for (row, col), count in np.ndenumerate(counts):
            ax.text(
                col, row, str(count), ha="center", va="center", fontsize=size,
                color="white" if luminance[row, col] < 0.5 else "#08306b" if count else "#969696",
                in_layout=False,  # inside the axes: the layout need not measure a hundred texts
            )  # fmt: skip
        slanted = {"rotation": 45, "ha": "right", "rotation_mode": "anchor"}
        ax.set_xticks(range(n_classes), names, **(slanted if max(map(len, names)) > 3 else {}))
        ax.set_yticks(range(n_classes), names)
    else:
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(MaxNLocator(10, integer=True))
    ax.set_xlabel("predicted", fontsize=11)
    ax.set_ylabel("true", fontsize=11)
    ax.tick_params(labelsize=10, length=0)
    total = int(counts.sum())
    accuracy = f"{np.trace(counts) / total:.3f}" if total else "n/a"
    fig.suptitle(f"test accuracy = {accuracy}", fontsize=13, fontweight="bold")
    ax.set_title(subtitle(title, step), fontsize=11)
    return fig


def confusion_matrix_png(
    labels: np.ndarray, predictions: np.ndarray, n_classes: int, *, step: int, title: str = "",
    class_names: Sequence[str] | None = None,
) -> bytes:  # fmt: skip
    """`confusion_matrix_figure` as palette PNG bytes (450 x 450 px)."""
    figure = confusion_matrix_figure(
        labels, predictions, n_classes, step=step, title=title, class_names=class_names
    )
    return palette_png(figure)


def palette_png(figure: Figure) -> bytes:
    """A figure drawn whole, as a 256-colour palette PNG (about half the bytes of RGB's).

    Max-coverage quantizing, not the fit plot's fast octree: the octree merges white with
    the confusion matrix's palest blues and tints the whole background; max coverage keeps
    white exact and every pixel within a few levels of the drawing, at a few times the cost.
    """
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    rgb = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")
    buffer = io.BytesIO()
    rgb.quantize(256, method=Image.Quantize.MAXCOVERAGE).save(buffer, format="png")
    return buffer.getvalue()


def subtitle(title: str, step: int) -> str:
    """The line under the headline: the run's title (its setting) and the step."""
    return " · ".join(part for part in (title, f"step {step}") if part)
