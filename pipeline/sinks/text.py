"""TEXT tab: the resolved config and the command line that produced the run."""

from __future__ import annotations

import tensorflow as tf

from pipeline.sinks.base import Experiment, Sink


def indent_code(text: str) -> str:
    """Markdown code block by indentation (TensorBoard renders text summaries as Markdown)."""
    return "\n".join("    " + line for line in text.splitlines())


class TextSink(Sink):
    """Writes the config and the reproducing command once, at step 0."""

    reusable_across_jobs = True  # no random state; writes once, outside the loop

    def writers_used(self) -> set[str]:
        return {self.writer}

    def start(self, experiment: Experiment) -> None:
        with self.writer_of(experiment).as_default(step=0):
            tf.summary.text("config", indent_code(experiment.config_yaml))
            tf.summary.text("command", indent_code(experiment.command))
