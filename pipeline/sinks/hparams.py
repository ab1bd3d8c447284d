"""HPARAMS tab: the run's settings, so TensorBoard can compare the runs of a sweep.

The HParams plugin treats a TensorBoard run holding `hp.hparams(...)` as one session and
reads the session's metrics from `<session>/<metric group>`: the last value of each metric
tag there. Where the session is written therefore decides what it shows:

- `session_run: root` (the default): at the run dir's root, so its metrics are the `train/`
  and `test/` runs' (`train/k`, `test/loss`). The root is then a TensorBoard run of its
  own (the only way one session sees both writers: the plugin joins the session's name
  and the group as they are), so that it never shows up empty the same settings go to
  its TEXT tab as a table.
- `session_run: train`: inside the train run, which makes no run of its own (a seeds sweep
  keeps under the 40 runs TensorBoard selects by default); its metrics are the train
  writer's only. The sweep root's HParams experiment names them so (pipeline/sweeps/summary.py).

The session is written once, when the run ends, with how it ended (`success`, or
`failure` for a diverged or failed run); an interrupted run, which may be resumed, gets
its session when a resume ends it, so a running or stopped job is not in HPARAMS yet.
A diverged run's last values are a blow-up (k of 1e20 and more) that would stretch every
axis of the parallel-coordinates view, so its session is written where its lookups find none
(the train run for `root`, the root for `train`): HPARAMS lists it as a failure with its
settings and no metrics; its last values are in metrics.json, `tbpipe report` and the
console line.
"""

from __future__ import annotations

import time
from typing import Any

import tensorflow as tf
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import summary as hp_v1
from tensorboard.plugins.hparams import summary_v2 as hp

from pipeline.check.text_table import markdown_table
from pipeline.runinfo import COMPLETED, DIVERGED, FAILED
from pipeline.sinks.base import Experiment, Sink

#: how a run's end state reads in the HPARAMS tab's Status column
SESSION_STATUS = {
    COMPLETED: api_pb2.STATUS_SUCCESS,
    DIVERGED: api_pb2.STATUS_FAILURE,
    FAILED: api_pb2.STATUS_FAILURE,
}
#: where a session can live: the run dir's root, or inside the train run
SESSION_RUNS = ("root", "train")


def settings_table(hparams: dict[str, Any]) -> str:
    """The settings as a Markdown table (TensorBoard renders text summaries as Markdown)."""
    return markdown_table(["setting", "value"], list(hparams.items()))


def session_run_of(session_run: str, status: str) -> str:
    """Where a run's session goes: `session_run`, except for a diverged run, whose session
    goes where its metric lookups find nothing (see the module's docstring)."""
    if status != DIVERGED:
        return session_run
    return "train" if session_run == "root" else "root"


class HParamsSink(Sink):
    """Writes the run's settings (TEXT) before training, its HParams session as it ends.

    Args:
        session_run: `root` (the run dir's root: train and test metrics, one more
            TensorBoard run) or `train` (inside the train run: train metrics only).
    """

    reusable_across_jobs = True  # no random state; writes outside the loop

    def __init__(self, session_run: str = "root") -> None:
        super().__init__()
        if session_run not in SESSION_RUNS:
            raise ValueError(f"session_run={session_run}: must be one of {', '.join(SESSION_RUNS)}")
        self.session_run = session_run
        self._started: float | None = None  # a resumed run's start is its resume's

    def writers_used(self) -> set[str]:
        # `root`: a writer of its own (a train writer opened for it alone would be an
        # empty run; a diverged run's session uses the train writer where another sink
        # opened it, else the root, whose lookups find no metrics either)
        return {"train"} if self.session_run == "train" else set()

    def _writer(self, experiment: Experiment, where: str) -> tuple[Any, bool]:
        """The train run's open writer, or one of its own at the run dir's root; and
        whether it is this sink's own (to close)."""
        if where == "train" and "train" in experiment.writers:
            return self.writer_of(experiment, "train"), False
        return tf.summary.create_file_writer(str(experiment.run_dir)), True

    def start(self, experiment: Experiment) -> None:
        self._started = time.time()  # the session's start, written with its end
        if not experiment.hparams:
            return
        writer, own = self._writer(experiment, self.session_run)
        try:
            with writer.as_default(step=0):
                tf.summary.text("settings", settings_table(dict(experiment.hparams)))
            writer.flush()
        finally:
            if own:
                writer.close()

    def finish(self, experiment: Experiment, status: str) -> None:
        if not experiment.hparams or status not in SESSION_STATUS:
            return  # an interrupted run gets its session when a resume ends it
        writer, own = self._writer(experiment, session_run_of(self.session_run, status))
        try:
            with writer.as_default(step=0):
                # one session per run dir, even when two runs share every setting
                hp.hparams(
                    dict(experiment.hparams),
                    trial_id=experiment.run_dir.name,
                    start_time_secs=self._started,
                )
                end = hp_v1.session_end_pb(SESSION_STATUS[status], end_time_secs=time.time())
                tf.summary.experimental.write_raw_pb(end.SerializeToString(), step=0)
            writer.flush()
        finally:
            self._started = None  # the sink may serve the next job of a sweep
            if own:
                writer.close()
