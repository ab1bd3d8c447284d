"""Read runs back from their event files with TensorBoard's own reader.

No training code is imported here. TF2 stores every summary as a tensor, so we use
`plugin_event_accumulator` with no sample limit (the legacy reader keeps only a few
samples per tag) and sort tags by the plugin that wrote them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.util import tensor_util

#: TensorBoard's summary plugins, as they name themselves in the event files.
SCALARS, HISTOGRAMS, IMAGES, TEXT, GRAPHS, HPARAMS = (
    "scalars",
    "histograms",
    "images",
    "text",
    "graphs",
    "hparams",
)


@dataclass
class RunData:
    """Everything one TensorBoard run (one directory of event files) holds, by plugin."""

    path: Path
    #: plugin name -> tag -> list of (step, numpy value)
    series: dict[str, dict[str, list[tuple[int, np.ndarray]]]] = field(default_factory=dict)
    graph: object | None = None  # a GraphDef, if the run has one

    def tags(self, plugin: str) -> list[str]:
        return sorted(self.series.get(plugin, {}))

    def scalars(self, tag: str) -> list[tuple[int, float]]:
        """(step, value) pairs of a scalar tag, in step order."""
        return [(step, float(value)) for step, value in self.series[SCALARS][tag]]

    def histograms(self, tag: str) -> list[tuple[int, np.ndarray]]:
        """(step, buckets) pairs; buckets is a (B, 3) array of [left, right, count]."""
        return self.series[HISTOGRAMS][tag]

    def images(self, tag: str) -> list[tuple[int, bytes]]:
        """(step, encoded image bytes) pairs; the first image of each step."""
        return [(step, bytes(value[2])) for step, value in self.series[IMAGES][tag]]

    def texts(self, tag: str) -> list[tuple[int, str]]:
        return [(step, value.item().decode()) for step, value in self.series[TEXT][tag]]


def load_run(path: str | Path) -> RunData:
    """Load every summary in one run directory (e.g. `<run dir>/train`)."""
    accumulator = pea.EventAccumulator(str(path), size_guidance={pea.TENSORS: 0})
    accumulator.Reload()
    run = RunData(path=Path(path))
    for tag in accumulator.Tags().get(pea.TENSORS, []):
        plugin = accumulator.SummaryMetadata(tag).plugin_data.plugin_name
        events = sorted(accumulator.Tensors(tag), key=lambda e: e.step)
        run.series.setdefault(plugin, {})[tag] = [
            (e.step, tensor_util.make_ndarray(e.tensor_proto)) for e in events
        ]
    if accumulator.Tags().get(pea.GRAPH):
        run.graph = accumulator.Graph()
    return run


def share_between(buckets: np.ndarray, low: float, high: float) -> float:
    """Share of a histogram's mass in (low, high), assuming values spread evenly in a bucket."""
    left, right, count = buckets[:, 0], buckets[:, 1], buckets[:, 2]
    width = np.maximum(right - left, 1e-12)
    overlap = np.clip(np.minimum(right, high) - np.maximum(left, low), 0.0, None) / width
    # zero-width buckets (all values equal) count fully when their value is inside
    point = (right - left) <= 1e-12
    overlap = np.where(point, ((left > low) & (left < high)).astype(float), overlap)
    total = count.sum()
    return float((overlap * count).sum() / total) if total else float("nan")
