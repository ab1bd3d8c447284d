"""GRAPHS tab: the GraphDef of one training step, not a profiler trace."""

from __future__ import annotations

import tensorflow as tf

from pipeline.sinks.base import Experiment, Sink


class GraphSink(Sink):
    """Writes the op graph of one training step once, before training starts.

    The compiled loop keeps its step inside a While body that graph viewers do not
    expand, so we trace a one-step function for this purpose and write its graph with
    `tf.summary.graph`, which stores a real GraphDef (trace_export stores RunMetadata).
    """

    reusable_across_jobs = True  # no random state; writes once, outside the loop

    def writers_used(self) -> set[str]:
        return {self.writer}

    def start(self, experiment: Experiment) -> None:
        with self.writer_of(experiment).as_default():
            tf.summary.graph(experiment.step_graph())
