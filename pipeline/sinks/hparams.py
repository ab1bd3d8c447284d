"""HPARAMS tab: the run's settings, so TensorBoard can compare the runs of a sweep.

The HParams plugin treats a directory holding `hp.hparams(...)` as one session and looks
for its metrics in the session's subdirectories (`train/`, `test/`), so the settings are
written by a writer of their own at the run dir's root. That root is a TensorBoard run
too; so that it never shows up empty, the same settings go to its TEXT tab as a table.
When the run ends, the session records how (`success`, or `failure` for a diverged or
failed run); an interrupted run, which may be resumed, keeps no end status.
"""

from __future__ import annotations

import time
from typing import Any

import tensorflow as tf
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import summary as hp_v1
from tensorboard.plugins.hparams import summary_v2 as hp

from pipeline.runinfo import COMPLETED, DIVERGED, FAILED
from pipeline.sinks.base import Experiment, Sink

#: how a run's end state reads in the HPARAMS tab's Status column
SESSION_STATUS = {
    COMPLETED: api_pb2.STATUS_SUCCESS,
    DIVERGED: api_pb2.STATUS_FAILURE,
    FAILED: api_pb2.STATUS_FAILURE,
}


def settings_table(hparams: dict[str, Any]) -> str:
    """The settings as a Markdown table (TensorBoard renders text summaries as Markdown)."""
    rows = [f"| {name} | {value} |" for name, value in hparams.items()]
    return "\n".join(["| setting | value |", "|---|---|", *rows])


class HParamsSink(Sink):
    """Writes the run's settings before training and its end status after, at the run root."""

    reusable_across_jobs = True  # no random state; writes outside the loop

    def __init__(self) -> None:
        super().__init__()
        self._writer: Any = None

    def writers_used(self) -> set[str]:
        return set()  # a writer of its own, at the run dir's root

    def start(self, experiment: Experiment) -> None:
        if not experiment.hparams:
            return
        self._writer = tf.summary.create_file_writer(str(experiment.run_dir))
        with self._writer.as_default(step=0):
            # one session per run dir, even when two runs share every setting
            hp.hparams(dict(experiment.hparams), trial_id=experiment.run_dir.name)
            tf.summary.text("settings", settings_table(dict(experiment.hparams)))
        self._writer.flush()

    def finish(self, experiment: Experiment, status: str) -> None:
        if self._writer is None:  # a resumed run: its session started before the stop
            if not experiment.hparams or status not in SESSION_STATUS:
                return
            self._writer = tf.summary.create_file_writer(str(experiment.run_dir))
        try:
            if status in SESSION_STATUS:
                end = hp_v1.session_end_pb(SESSION_STATUS[status], end_time_secs=int(time.time()))
                with self._writer.as_default(step=0):
                    tf.summary.experimental.write_raw_pb(end.SerializeToString(), step=0)
        finally:
            self._writer.close()
            self._writer = None
