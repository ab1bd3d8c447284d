"""HPARAMS tab: the run's settings, so TensorBoard can compare the runs of a sweep.

The HParams plugin treats a directory holding `hp.hparams(...)` as one session and looks
for its metrics in the session's subdirectories (`train/`, `test/`), so the settings are
written by a writer of their own at the run dir's root. The metrics are the scalars the
ScalarSink already writes; the settings are computed outside (`Experiment.hparams`).
"""

from __future__ import annotations

import tensorflow as tf
from tensorboard.plugins.hparams import summary_v2 as hp

from pipeline.sinks.base import Experiment, Sink


class HParamsSink(Sink):
    """Writes the run's settings once, before training, at the root of the run dir."""

    reusable_across_jobs = True  # no random state; writes once, outside the loop

    def start(self, experiment: Experiment) -> None:
        if not experiment.hparams:
            return
        writer = tf.summary.create_file_writer(str(experiment.run_dir))
        try:
            with writer.as_default(step=0):
                # one session per run dir, even when two runs share every setting
                hp.hparams(dict(experiment.hparams), trial_id=experiment.run_dir.name)
        finally:
            writer.close()
