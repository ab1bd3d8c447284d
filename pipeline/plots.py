"""Matplotlib figures rendered to PNG bytes in memory (Agg backend, no display)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.data import Dataset  # noqa: E402


def fit_png(data: Dataset, line_x: np.ndarray, line_y: np.ndarray, step: int, k: float) -> bytes:
    """Train and test points with the model's current fit; returns PNG bytes."""
    fig, ax = plt.subplots(figsize=(5, 3.75), dpi=80)
    try:
        ax.scatter(data.x_train, data.y_train, s=8, alpha=0.6, label="train")
        ax.scatter(data.x_test, data.y_test, s=8, alpha=0.6, marker="x", label="test")
        ax.plot(line_x, line_y, color="black", lw=2, label=f"fit, k = {k:.4f}")
        if data.k_true is not None:
            ax.plot(line_x, data.k_true * line_x, "--", color="grey", lw=1, label="truth")
        ax.set(xlabel="x", ylabel="y", title=f"step {step}")
        ax.legend(loc="upper left", fontsize="small")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)
