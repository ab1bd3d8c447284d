"""The tutorial's "how to read a distribution plot" lesson, computed instead of explained.

A TensorBoard histogram is a (B, 3) array of buckets [left, right, count]; the raw values
are gone. Every number here comes from the buckets, assuming values spread evenly within
a bucket (as `runs.share_between` does), and the percentiles are the ones the
DISTRIBUTIONS view draws, computed by TensorBoard's own compressor. For N(0, 1) weights
the guide says what the tutorial says: about 38.3% lie in (-0.5, 0.5), 86.6% in (-1.5, 1.5).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from tensorboard.plugins.distribution import compressor

from pipeline.readback.runs import HISTOGRAMS, RunData, share_between

#: The percentiles the DISTRIBUTIONS view shades between (TensorBoard's basis points / 100):
#: the normal CDF at -inf, -1.5, -1, -0.5, 0, 0.5, 1, 1.5 and +inf standard deviations.
DISTRIBUTION_PERCENTILES = tuple(bp / 100 for bp in compressor.NORMAL_HISTOGRAM_BPS)

#: |value| below this counts as a "dead" weight unless the caller says otherwise.
DEAD_THRESHOLD = 1e-3


@dataclass(frozen=True)
class HistogramReading:
    """What one histogram (one tag at one step) says, in the tutorial's terms."""

    run: str
    tag: str
    step: int
    count: float
    mean: float
    std: float
    within_half: float  # share of values in (-0.5, 0.5)
    within_one_and_half: float  # share of values in (-1.5, 1.5)
    dead: float  # share of values with |value| < dead_threshold (interpolated in a bucket)
    dead_at_most: float  # share in the buckets that touch (-dead_threshold, dead_threshold)
    dead_threshold: float
    percentiles: dict[str, float]  # "6.68" -> value below which 6.68% of values lie

    def as_dict(self) -> dict:
        return asdict(self)


def bucket_moments(buckets: np.ndarray) -> tuple[float, float, float]:
    """(count, mean, std) of the values behind `buckets`, evenly spread within each bucket."""
    left, right, count = buckets[:, 0], buckets[:, 1], buckets[:, 2]
    total = float(count.sum())
    if not total:
        return 0.0, math.nan, math.nan
    middle = (left + right) / 2
    mean = float((middle * count).sum() / total)
    # a uniform spread over a bucket of width w adds w^2 / 12 to the variance
    variance = float((count * ((middle - mean) ** 2 + (right - left) ** 2 / 12)).sum() / total)
    return total, mean, math.sqrt(max(variance, 0.0))


def touching_share(buckets: np.ndarray, low: float, high: float) -> float:
    """Share of values in buckets that touch (low, high): an upper bound on the share inside.

    A bucket much wider than (low, high) hides how its values sit: ReLU outputs that are
    exactly 0 share a bucket with small positive ones, so the interpolated dead share
    reads low; this bound says how high it could be.
    """
    left, right, count = buckets[:, 0], buckets[:, 1], buckets[:, 2]
    total = count.sum()
    return float(count[(right > low) & (left < high)].sum() / total) if total else math.nan


def distribution_percentiles(buckets: np.ndarray) -> dict[str, float]:
    """The values the DISTRIBUTIONS view plots, keyed by percentile ("0" ... "100")."""
    compressed = compressor.compress_histogram(np.asarray(buckets, dtype=float))
    return {f"{bp / 100:g}": float(value) for bp, value in compressed}


def read_histogram(
    buckets: np.ndarray,
    *,
    run: str = "",
    tag: str = "",
    step: int = 0,
    dead_threshold: float = DEAD_THRESHOLD,
) -> HistogramReading:
    """Read one histogram's buckets the way the tutorial teaches to read the plot."""
    buckets = np.asarray(buckets, dtype=float).reshape(-1, 3)
    count, mean, std = bucket_moments(buckets)
    return HistogramReading(
        run=run,
        tag=tag,
        step=int(step),
        count=count,
        mean=mean,
        std=std,
        within_half=share_between(buckets, -0.5, 0.5),
        within_one_and_half=share_between(buckets, -1.5, 1.5),
        dead=share_between(buckets, -dead_threshold, dead_threshold),
        dead_at_most=touching_share(buckets, -dead_threshold, dead_threshold),
        dead_threshold=dead_threshold,
        percentiles=distribution_percentiles(buckets),
    )


def read_run_histograms(
    name: str, run: RunData, dead_threshold: float = DEAD_THRESHOLD
) -> list[HistogramReading]:
    """Every histogram tag of a run at its first and last step (one reading if only one)."""
    readings = []
    for tag in run.tags(HISTOGRAMS):
        series = run.histograms(tag)
        if not series:
            continue
        ends = [series[0]] if len(series) == 1 else [series[0], series[-1]]
        for step, buckets in ends:
            readings.append(
                read_histogram(buckets, run=name, tag=tag, step=step, dead_threshold=dead_threshold)
            )
    return readings
