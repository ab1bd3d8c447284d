"""summary.png and its panels are drawn on Agg figures of their own, without pyplot.

The story: "the sweep's end draws its figure; it should not load pyplot for it, and the
picture must be the one it always was". A settings x seeds sweep's spread figure (log
axes, error bars, legends, a warning for failed jobs) is drawn by `plots.spread_png` and,
the same drawing, through pyplot's figures as before: every PNG is the same, byte for byte.
"""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from pipeline.sweeps import plots
from tests.conftest import ROOT


def groups(failed: int = 0) -> list[dict]:
    """Four noise levels x 5 seeds, as readback/groups.group_rows gives them."""
    out = []
    for index, noise in enumerate((0.01, 0.1, 1.0, 2.0)):
        out.append(
            {
                "setting": {"data.noise_std": noise}, "n": 5, "failed": failed * (index == 0),
                "jobs": list(range(5 * index, 5 * index + 5)), "metrics": ["k", "k_error"],
                "main_metric": "k_error", "k_mean": 2.0 - noise / 50, "k_std": noise / 10,
                "k_stderr": noise / 9, "k_error_mean": noise / 12,
            }
        )  # fmt: skip
    return out


def pyplot_render(draw, path, note="", names=()):
    """`plots.render` as it was drawn through pyplot."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=90)
    try:
        plots.save(fig, axes, draw(*axes), path, note)
    finally:
        plt.close(fig)
    with plt.rc_context(plots.PANEL_STYLE):
        figures = [plt.figure(figsize=plots.PANEL_SIZE, dpi=plots.PANEL_DPI) for _ in names]
        axes = [figure.add_subplot() for figure in figures]
        warning = draw(*axes)
        panels = []
        for figure, ax, name in zip(figures, axes, names, strict=True):
            if warning:
                figure.suptitle(warning, color="red", fontsize="small")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize="small")
            figure.tight_layout()
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png")
            panels.append((name, buffer.getvalue()))
            plt.close(figure)
    return panels


@pytest.mark.slow  # draws every figure twice, with pyplot too: in `make test` only
def test_the_spread_figure_is_the_one_pyplot_drew_byte_for_byte(tmp_path, monkeypatch):
    for failed in (0, 2):
        keys = ["data.noise_std"]
        ours = plots.spread_png(groups(failed), keys, tmp_path / "ours.png", k_true=2.0)
        with monkeypatch.context() as patch:
            patch.setattr(plots, "render", pyplot_render)
            theirs = plots.spread_png(groups(failed), keys, tmp_path / "theirs.png", k_true=2.0)
        assert [name for name, _ in ours] == ["k", "k_spread"]
        assert ours == theirs, failed
        assert (tmp_path / "ours.png").read_bytes() == (tmp_path / "theirs.png").read_bytes()


@pytest.mark.slow  # starts a new process: in `make test`, not `make test-fast`
def test_the_summary_figure_loads_no_pyplot(tmp_path):
    code = (
        "import sys; from pathlib import Path; from pipeline.sweeps import plots; "
        "from tests.test_summary_png import groups; "
        f"plots.spread_png(groups(), ['data.noise_std'], Path({str(tmp_path)!r}) / 's.png', 2.0); "
        "print('matplotlib.pyplot' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False", result.stdout + result.stderr
    assert (tmp_path / "s.png").stat().st_size > 0
