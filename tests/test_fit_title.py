"""The fit picture's background drawn with the axes' title empty: the same bytes.

A full draw of the fit figure works out where the axes' title (animated, drawn over the
background later) would go, laying the y axis out once more to see whether its offset text
is in the way. Each picture's title is set back at its usual height with its words, so
`FitPlot.draw_background` draws with the title empty, which matplotlib skips. The
pictures of a sweep's jobs, each drawn in the last one's figure, must be the bytes a plain
full draw gives, a y axis with an offset text included.
"""

from __future__ import annotations

import numpy as np

from pipeline.data import LinearData, data_extent
from pipeline.sinks.fit_plot import FitPlot


class PlainFullDraw(FitPlot):
    """The background drawn by one plain full draw, title and all (matplotlib's own rule)."""

    def draw_background(self) -> None:
        self.canvas.draw()
        if self._legend is None:
            self._legend = self._legend_alone()
        self._background = self.canvas.copy_from_bbox(self.figure.bbox)


#: jobs of a sweep in order: the fit under the legend or not, a y axis far from zero (its
#: ticks carry an offset text, e.g. `+2e3`) between ordinary ones
JOBS = (
    {"noise_std": 0.01, "seed": 0},
    {"noise_std": 1.0, "seed": 2},
    {"noise_std": 0.01, "seed": 1, "x_low": 100000.0, "x_high": 100000.01},
    {"noise_std": 10.0, "seed": 4},
    {"noise_std": 0.1, "seed": 3},
)


def pictures(kind: type[FitPlot]) -> tuple[list[bytes], list[str]]:
    """Each job's picture drawn by `kind` in the last job's figure; the y offset texts."""
    spare, pngs, offsets = None, [], []
    for job in JOBS:
        data = LinearData(**job).generate()
        label = ",".join(f"{key}={value}" for key, value in job.items())
        spare = kind.drawn(data, label, spare) if spare is not None else kind(data, label)
        spare.draw_background()
        lo, hi = data_extent(data)
        x = np.linspace(lo, hi, 101, dtype=np.float32)[:, None]
        pngs.append(spare.png(x, np.float32(2.05) * x, 1000, 2.05))
        offsets.append(spare.figure.axes[0].yaxis.offsetText.get_text())
    return pngs, offsets


def test_the_title_placed_after_the_draw_gives_the_full_draws_bytes():
    placed, offsets = pictures(FitPlot)
    plain, _ = pictures(PlainFullDraw)
    assert [bool(offset) for offset in offsets] == [False, False, True, False, False], offsets
    for job, mine, expected in zip(JOBS, placed, plain, strict=True):
        assert mine == expected, job
