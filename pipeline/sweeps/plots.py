"""summary.png: how the results move with the swept setting (matplotlib, Agg).

For the tutorial's line, left: k against the swept parameter, with k_true; right:
|k - k_true|, and beside it the standard error of the least-squares slope,
sigma / sqrt(sum x^2): the error that noise alone explains. For any other task: the main
metric on the left, the train and test loss on the right (`metric_png`). Jobs that differ
in other swept keys (e.g. seed) get one line each.

summary.png holds both panels side by side. TensorBoard shows a picture at its card's
width (~330 px): two panels there are unreadable, so each function also returns every
panel as a picture of its own, its text enlarged and the warning (failed jobs) above it,
for the sweep root's IMAGES (`plots/sweep_summary/<panel>`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

from pipeline.check.schema import is_number
from pipeline.readback.groups import setting_label
from pipeline.runinfo import COMPLETED

matplotlib.use("Agg")
# figures drawn straight on an Agg canvas: pyplot (its figure registry, every backend's
# hooks) is not imported for them
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

#: The parameter a sweep is most likely about; drawn on the x axis when it was swept.
PREFERRED_AXIS = "data.noise_std"
#: each panel on its own for TensorBoard: 440 x 330 px, 13 pt text (~12 px high once a
#: card shrinks it to ~330 px wide), as the fit picture (pipeline/sinks/fit_plot.py)
PANEL_SIZE = (5.5, 4.125)
PANEL_DPI = 80
PANEL_STYLE = {"font.size": 13, "axes.titlesize": 15, "lines.linewidth": 2.2, "lines.markersize": 8}
#: (name, PNG bytes) of each panel, in the order drawn
Panels = list[tuple[str, bytes]]


def axis_key(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> str | None:
    """The swept key to draw on the x axis: numeric, with more than one value."""
    numeric = [
        key
        for key in keys
        if all(is_number(row["swept"].get(key)) for row in rows)
        and len({row["swept"][key] for row in rows}) > 1
    ]
    if PREFERRED_AXIS in numeric:
        return PREFERRED_AXIS
    return numeric[0] if numeric else None


def series_label(row: dict[str, Any], keys: Sequence[str]) -> str:
    """What tells apart the lines: the other swept keys' values."""
    return setting_label({key: row["swept"][key] for key in keys if key in row["swept"]}, sep=", ")


def summary_png(
    rows: Sequence[dict[str, Any]], keys: Sequence[str], path: Path, note: str = ""
) -> Panels:
    """Draw the sweep's k and |k - k_true| against its swept parameter; write a PNG.
    `note` (e.g. how the noise was drawn) goes under the plots. Returns each panel."""
    if not any("k" in row for row in rows):
        return metric_png(rows, keys, path)
    done = [row for row in rows if row.get("status") == COMPLETED and row.get("k") is not None]
    x_key = axis_key(done, keys) if done else None
    others = [k for k in keys if k != x_key and len({str(r["swept"].get(k)) for r in done}) > 1]

    def draw(ax_k, ax_err) -> str:
        if x_key is None:  # nothing numeric swept: one point per job, labelled by its setting
            positions = list(range(len(done)))
            differ = [k for k in keys if len({str(r["swept"].get(k)) for r in rows}) > 1]
            names = [series_label(row, differ) or row["dir"] for row in done]
            for ax in (ax_k, ax_err):
                ax.set_xticks(positions, names, rotation=30, ha="right", fontsize="small")
            groups = {"": list(zip(positions, done, strict=True))}
        else:
            groups = {}
            for row in sorted(done, key=lambda r: r["swept"][x_key]):
                groups.setdefault(series_label(row, others), []).append((row["swept"][x_key], row))
        for label, points in groups.items():
            xs = [x for x, _ in points]
            ax_k.plot(xs, [row["k"] for _, row in points], "o-", label=label or "k")
            (error_line,) = ax_err.plot(
                xs,
                [row.get("k_error") for _, row in points],
                "o-",
                label=f"|k - k_true| {label}".strip(),
            )
            stderr = [(x, row["k_stderr"]) for x, row in points if row.get("k_stderr") is not None]
            if stderr:
                ax_err.plot(
                    *zip(*stderr, strict=True),
                    "--",
                    color="grey" if len(groups) == 1 else error_line.get_color(),
                    alpha=0.7,
                    label=f"std. error of slope σ/√Σx² {label}".strip(),
                )
        k_true = next((row["k_true"] for row in done if row.get("k_true") is not None), None)
        if k_true is not None:
            ax_k.axhline(k_true, color="grey", lw=1, ls=":", label=f"k_true = {k_true}")
        xlabel = x_key or "job"
        ax_k.set(xlabel=xlabel, ylabel="estimated k", title="estimate of k")
        ax_err.set(xlabel=xlabel, ylabel="|k - k_true|", title="error of the estimate")
        if x_key is not None and min(r["swept"][x_key] for r in done) > 0:
            for ax in (ax_k, ax_err):
                ax.set_xscale("log")
        failed = len(rows) - len(done)
        return f"{failed} of {len(rows)} jobs failed (see summary.csv)" if failed else ""

    return render(draw, path, note, ("k", "k_error"))


def render(draw: Any, path: Path, note: str = "", names: Sequence[str] = ()) -> Panels:
    """`draw(left_axes, right_axes)` (it returns the warning, "" for none) twice: into
    summary.png, both panels side by side, and into one card-sized figure a panel
    (`names`), larger text, returned as PNG bytes for TensorBoard."""
    fig = figure_of(figsize=(10, 4), dpi=90)
    axes = fig.subplots(1, 2)
    save(fig, axes, draw(*axes), path, note)
    with matplotlib.rc_context(PANEL_STYLE):
        figures = [figure_of(figsize=PANEL_SIZE, dpi=PANEL_DPI) for _ in names]
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
    return panels


def figure_of(figsize: tuple[float, float], dpi: float) -> Figure:
    """A figure on its own Agg canvas (what pyplot's `figure` makes with the Agg backend),
    freed with its last reference: nothing to close."""
    figure = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


def save(fig: Any, axes: Sequence[Any], warning: str, path: Path, note: str = "") -> None:
    """Legends where there is something to name, a red warning on top if any, a note
    under the plots if any (e.g. how the noise was drawn), the PNG."""
    if warning:
        fig.suptitle(warning, color="red")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="x-small")
    fig.tight_layout()
    if note:
        fig.subplots_adjust(bottom=fig.subplotpars.bottom + 0.08)
        fig.text(0.5, 0.015, note, ha="center", va="bottom", fontsize="small", wrap=True)
    fig.savefig(path, format="png")


def spread_png(
    groups: Sequence[dict[str, Any]],
    keys: Sequence[str],
    path: Path,
    k_true: float | None = None,
) -> Panels:
    """A settings x seeds sweep: is the scatter across seeds what theory says?

    Left: the mean of k per setting with error bars of one standard deviation across its
    seeds, and k_true. Right: the measured standard deviation of k across seeds beside the
    standard error of the least-squares slope, sigma / sqrt(sum x^2) (mean over seeds),
    and the mean |k - k_true|.
    """
    if groups and "k" not in groups[0]["metrics"]:
        return metric_png(groups, keys, path, seeds=True)
    done = [g for g in groups if g["n"] > 0]
    rows = [{"swept": g["setting"]} for g in done]
    x_key = axis_key(rows, keys) if done else None

    def draw(ax_k, ax_std) -> str:
        if x_key is None:
            xs = list(range(len(done)))
            names = [setting_label(g["setting"], sep=", ") for g in done]
            for ax in (ax_k, ax_std):
                ax.set_xticks(xs, names, rotation=30, ha="right", fontsize="small")
        else:
            done.sort(key=lambda g: g["setting"][x_key])
            xs = [g["setting"][x_key] for g in done]
        ax_k.errorbar(
            xs, [g["k_mean"] for g in done], yerr=[g["k_std"] or 0 for g in done],
            fmt="o-", capsize=4, label="mean k ± 1 std across seeds",
        )  # fmt: skip
        if k_true is not None:
            ax_k.axhline(k_true, color="grey", lw=1, ls=":", label=f"k_true = {k_true}")
        ax_std.plot(xs, [g["k_std"] for g in done], "o", ms=7, label="std of k across seeds")
        ax_std.plot(
            xs, [g["k_stderr"] for g in done], "--", color="grey",
            label="theory: std. error of slope σ/√Σx²",
        )  # fmt: skip
        ax_std.plot(xs, [g["k_error_mean"] for g in done], "x:", label="mean |k - k_true|")
        xlabel = x_key or "setting"
        n = ", ".join(sorted({str(g["n"]) for g in done}))
        ax_k.set(xlabel=xlabel, ylabel="estimated k", title=f"estimate of k ({n} seeds each)")
        ax_std.set(xlabel=xlabel, ylabel="spread of k", title="measured scatter vs theory")
        if x_key is not None and min(xs) > 0:
            for ax in (ax_k, ax_std):
                ax.set_xscale("log")
            ax_std.set_yscale("log")
        failed = sum(g["failed"] for g in groups)
        return f"{failed} jobs failed and are left out (see summary.csv)" if failed else ""

    return render(draw, path, "", ("k", "k_spread"))


def metric_png(
    points: Sequence[dict[str, Any]], keys: Sequence[str], path: Path, seeds: bool = False
) -> Panels:
    """A task without k: its main metric (left) and the train and test loss (right)
    against the swept parameter. `points` are jobs, or with `seeds` groups of a setting
    (mean ± 1 std across seeds)."""
    from pipeline.readback.jobs import column_of

    main = points[0].get("main_metric") if seeds and points else None
    main = main or column_of(next((p["main_metric"] for p in points if p.get("main_metric")), ""))
    if seeds:
        done = [g for g in points if g["n"] > 0]
        settings = [g["setting"] for g in done]
    else:
        done = [r for r in points if r.get("status") == COMPLETED and is_number(r.get(main))]
        settings = [r["swept"] for r in done]
    rows = [{"swept": setting} for setting in settings]
    x_key = axis_key(rows, keys) if done else None

    if x_key is not None:
        order = sorted(range(len(done)), key=lambda i: settings[i][x_key])
        done, settings = [done[i] for i in order], [settings[i] for i in order]

    def draw(ax_main, ax_loss) -> str:
        if x_key is None:
            xs = list(range(len(done)))
            names = [setting_label(s, "job", ", ") for s in settings]
            for ax in (ax_main, ax_loss):
                ax.set_xticks(xs, names, rotation=30, ha="right", fontsize="small")
        else:
            xs = [setting[x_key] for setting in settings]
        for ax, metric in ((ax_main, main), (ax_loss, "train_loss"), (ax_loss, "test_loss")):
            if seeds:
                means = [g.get(f"{metric}_mean") for g in done]
                spread = [g.get(f"{metric}_std") or 0 for g in done]
                ax.errorbar(xs, means, yerr=spread, fmt="o-", capsize=4, label=f"{metric} ± 1 std")
            else:
                ax.plot(xs, [r.get(metric) for r in done], "o-", label=metric)
        xlabel = x_key or ("setting" if seeds else "job")
        ax_main.set(xlabel=xlabel, ylabel=main, title=main)
        ax_loss.set(xlabel=xlabel, ylabel="loss", title="final loss")
        if x_key is not None and xs and min(xs) > 0:
            for ax in (ax_main, ax_loss):
                ax.set_xscale("log")
        failed = sum(g["failed"] for g in points) if seeds else len(points) - len(done)
        return f"{failed} jobs failed and are left out (see summary.csv)" if failed else ""

    return render(draw, path, "", (main, "loss"))
