"""The regression and classification pictures show the numbers of the run, legibly, the same
bytes every time: predicted vs true with the test split's R², the confusion matrix's counts."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from PIL import Image

from pipeline.sinks.task_plots import (
    confusion_counts,
    confusion_matrix_figure,
    confusion_matrix_png,
    predicted_vs_true_figure,
    predicted_vs_true_png,
    r_squared,
)
from tests.conftest import ROOT


def regression(n: int = 300, targets: int = 1, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Standardised targets (negative ones too) and predictions that miss them a little."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n, targets)).astype(np.float32)
    pred = 0.8 * y + rng.normal(scale=0.4, size=y.shape).astype(np.float32)
    cut = n * 4 // 5
    return y[:cut], pred[:cut], y[cut:], pred[cut:]


def digits_like(n: int = 360, classes: int = 10, wrong: float = 0.06, seed: int = 0):
    """Class labels and predictions right but for a share `wrong` of them."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    predictions = np.where(rng.random(n) < wrong, rng.integers(0, classes, n), labels)
    return labels, predictions


def decoded(png: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(png))
    picture.load()
    return picture


def test_predicted_vs_true_is_a_small_palette_png_of_the_intended_size_the_same_twice():
    png = predicted_vs_true_png(*regression(), step=500, title="units=[64, 64]")
    picture = decoded(png)
    assert picture.format == "PNG" and picture.mode == "P"
    assert picture.size == (450, 450)
    assert png == predicted_vs_true_png(*regression(), step=500, title="units=[64, 64]")
    rgb = io.BytesIO()
    picture.convert("RGB").save(rgb, format="png")
    assert len(png) < 0.6 * len(rgb.getvalue())
    assert picture.convert("RGB").getpixel((1, 1)) == (255, 255, 255)  # white stays white


def test_r_squared_is_one_minus_residual_over_total_sum_of_squares():
    y, pred = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.1, 1.9, 3.2, 3.7])
    # SS_res = 0.01 + 0.01 + 0.04 + 0.09 = 0.15; mean 2.5, SS_tot = 2.25 + 0.25 + 0.25 + 2.25 = 5
    assert r_squared(y, pred) == pytest.approx(1 - 0.15 / 5)
    assert r_squared(y, np.full(4, 2.5)) == pytest.approx(0.0)  # the mean explains nothing
    assert np.isnan(r_squared(np.ones(4), pred))  # a constant truth has no variance to explain


def test_the_headline_is_the_test_splits_r_squared_and_the_subtitle_says_the_step():
    y_train, pred_train, y_test, pred_test = regression()
    fig = predicted_vs_true_figure(y_train, pred_train, y_test, pred_test, step=42, title="lr=0.1")
    direct = 1 - np.sum((y_test - pred_test) ** 2) / np.sum((y_test - y_test.mean()) ** 2)
    assert fig.get_suptitle() == f"test R² = {direct:.3f}"
    assert f"{r_squared(y_train, pred_train):.3f}" != f"{direct:.3f}"  # not the train split's
    ax = fig.axes[0]
    assert ax.get_title() == "lr=0.1 · step 42"
    assert ax.get_xlim() == ax.get_ylim()  # equal limits: the identity line is the diagonal
    lo, hi = ax.get_xlim()
    every = np.concatenate([y_train, pred_train, y_test, pred_test])
    assert lo < every.min() and every.max() < hi
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["train", "test", "y = x"]


def test_negative_ticks_keep_their_minus_sign_in_a_font_that_has_it():
    fig = predicted_vs_true_figure(*regression(), step=0)
    FigureCanvasAgg(fig).draw()
    ticks = [label.get_text() for label in fig.axes[0].get_xticklabels()]
    assert any(text.startswith("\u2212") for text in ticks), ticks
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    font = font_manager.findfont(fig.axes[0].get_xticklabels()[0].get_fontproperties())
    assert FT2Font(font).get_char_index(ord("\u2212")) != 0


def test_several_targets_show_the_first_column_and_say_so():
    y_train, pred_train, y_test, pred_test = regression(targets=3)
    fig = predicted_vs_true_figure(y_train, pred_train, y_test, pred_test, step=1)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "true (column 0 of 3)"
    assert ax.get_ylabel() == "predicted (column 0 of 3)"
    test_points = ax.collections[1].get_offsets()
    np.testing.assert_allclose(test_points, np.column_stack([y_test[:, 0], pred_test[:, 0]]))
    assert fig.get_suptitle() == f"test R² = {r_squared(y_test[:, 0], pred_test[:, 0]):.3f}"


def test_confusion_counts_count_each_true_and_predicted_pair():
    labels = np.array([0, 0, 1, 2, 2, 2])
    predictions = np.array([0, 1, 1, 2, 0, 2])
    expected = [[1, 1, 0], [0, 1, 0], [1, 0, 2]]  # rows true, columns predicted
    np.testing.assert_array_equal(confusion_counts(labels, predictions, 3), expected)
    scores = np.eye(3)[predictions] * 0.9 + 0.05  # one probability per class: the largest wins
    np.testing.assert_array_equal(confusion_counts(labels[:, None], scores, 3), expected)
    with pytest.raises(ValueError, match=r"labels must be class ids in 0\.\.2, got 0\.\.3"):
        confusion_counts(np.array([0, 3]), np.array([0, 1]), 3)


def test_a_ten_class_matrix_renders_and_its_cells_show_the_counts():
    labels, predictions = digits_like()
    png = confusion_matrix_png(labels, predictions, 10, step=1000, title="seed=0")
    assert decoded(png).size == (450, 450)
    assert png == confusion_matrix_png(labels, predictions, 10, step=1000, title="seed=0")

    fig = confusion_matrix_figure(labels, predictions, 10, step=1000, title="seed=0")
    ax = fig.axes[0]
    shown = np.zeros((10, 10), dtype=int)
    for text in ax.texts:
        col, row = text.get_position()
        shown[int(row), int(col)] = int(text.get_text())
    by_hand = np.zeros((10, 10), dtype=int)
    for true, guess in zip(labels, predictions, strict=True):
        by_hand[true, guess] += 1
    np.testing.assert_array_equal(shown, by_hand)
    assert len(ax.texts) == 100
    accuracy = np.mean(labels == predictions)
    assert fig.get_suptitle() == f"test accuracy = {accuracy:.3f}"
    assert ax.get_title() == "seed=0 · step 1000"
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(c) for c in range(10)]
    # light text on the darkest cells (the diagonal), dark text on the pale ones
    diagonal = next(t for t in ax.texts if t.get_position() == (0, 0))
    assert to_rgb(diagonal.get_color()) == (1.0, 1.0, 1.0)
    pale = [t for t in ax.texts if t.get_text() != "0" and int(t.get_text()) <= 2]
    assert pale and all(sum(to_rgb(t.get_color())) < 1.5 for t in pale)


def test_class_names_label_both_axes():
    labels, predictions = digits_like(n=90, classes=3)
    names = ["setosa", "versicolor", "virginica"]
    fig = confusion_matrix_figure(labels, predictions, 3, step=7, class_names=names)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    with pytest.raises(ValueError, match="class_names has 2 names for 3 classes"):
        confusion_matrix_figure(labels, predictions, 3, step=7, class_names=names[:2])


@pytest.mark.slow  # starts a new process: in `make test`, not `make test-fast`
def test_the_renderers_load_neither_tensorflow_nor_pyplot():
    code = (
        "import sys, pipeline.sinks.task_plots; "
        "print(sorted({'tensorflow', 'matplotlib.pyplot'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
