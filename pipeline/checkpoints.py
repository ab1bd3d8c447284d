"""Checkpoints of a run, so that a stopped run goes on where it was saved, as if never stopped.

A checkpoint (TensorFlow's own `tf.train.Checkpoint`, kept by a `CheckpointManager` in
`<run dir>/checkpoints/`) holds everything the next steps depend on: the compiled loop's
model and optimizer variables (the loop's variables are the state, whichever sweep job
traced it: `pipeline/reuse.py`), the step, and with mini-batches the tf.data iterator
(its position, prefetched batches included) and the batch carried to the next step. The
rest is rebuilt from the saved config and seed: the data, the pieces, the loop. Nothing
in the loop draws random numbers (mini-batch orders come from stateless shuffles seeded
by `seed` and the epoch), so no other RNG state exists to save.

A checkpoint at step c is written at a chunk end, after the writers are flushed: the event
files then hold every in-loop record of steps < c. A run killed later may have written
more; `keep_events_before(c)` rewrites each writer dir's event files with the records of
steps < c only, so TensorBoard (and any reader) sees each step once. The Python sinks due
at c (images) are recorded again when the run goes on (`Trainer.run(start=c)`).
"""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path

import tensorflow as tf

from pipeline.runinfo import CHECKPOINT_DIR
from pipeline.train import variables_of

#: TensorFlow logs this at INFO (through absl) on every save; Hydra's log set-up shows it
SAVE_CHATTER = "Sharding callback duration"


def _not_save_chatter(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(SAVE_CHATTER)


logging.getLogger("absl").addFilter(_not_save_chatter)

#: TensorBoard reads any file whose name contains this as an event file
EVENT_FILE_MARK = "tfevents"


class RunCheckpoint:
    """Saves and restores one run's state into the variables of its compiled loop."""

    def __init__(self, run_dir: Path, loop, batches=None):
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
        state = {
            "step": self.step,
            "model": variables_of(loop.model),
            "optimizer": variables_of(loop.optimizer),
        }
        self.batch: tuple[tf.Variable, ...] = ()
        if batches is not None:  # the iterator's position and the batch the next step uses
            self.batch = tuple(
                tf.Variable(tf.zeros(spec.shape, spec.dtype), trainable=False)
                for spec in batches.element_spec
            )
            state.update(batches=batches, batch=list(self.batch))
        self.checkpoint = tf.train.Checkpoint(**state)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(Path(run_dir) / CHECKPOINT_DIR), max_to_keep=1
        )

    def save(self, step: int, batch: tuple = ()) -> None:
        """Write the state after `step` updates; the previous checkpoint is dropped once
        this one is complete (TF renames the `checkpoint` index file atomically)."""
        self.step.assign(step)
        for variable, value in zip(self.batch, batch, strict=True):
            variable.assign(value)
        self.manager.save(checkpoint_number=step)

    def restore(self) -> tuple[int, tuple] | None:
        """Load the latest checkpoint into the loop; the step and the carried batch, or None
        when the run saved none."""
        latest = self.manager.latest_checkpoint
        if latest is None:
            return None
        self.checkpoint.restore(latest).assert_existing_objects_matched()
        return int(self.step.numpy()), tuple(tf.identity(v) for v in self.batch)


def latest_step(run_dir: Path) -> int | None:
    """The step of a run's latest checkpoint, read from the index file (no TensorFlow op)."""
    latest = tf.train.latest_checkpoint(str(Path(run_dir) / CHECKPOINT_DIR))
    return None if latest is None else int(latest.rsplit("-", 1)[1])


def keep_events_before(folder: Path, step: int) -> int:
    """Rewrite every event file in `folder` keeping only the records of steps < `step`.

    Records are copied byte for byte; a record cut short by a killed process ends the
    file. Each file is replaced atomically (temporary file + rename). Returns how many
    records were dropped.
    """
    from tensorboard.compat.proto import event_pb2

    dropped = 0
    for path in sorted(Path(folder).glob(f"*{EVENT_FILE_MARK}*")):
        data = path.read_bytes()
        kept, offset = [], 0
        while offset + 12 <= len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            end = offset + 12 + length + 4
            if end > len(data):
                break
            record = data[offset:end]
            if event_pb2.Event.FromString(record[12:-4]).step < step:
                kept.append(record)
            else:
                dropped += 1
            offset = end
        if sum(map(len, kept)) != len(data):  # something dropped: write what is kept
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(b"".join(kept))
            os.replace(tmp, path)
    return dropped


def remove_events(folder: Path) -> None:
    """Delete the event files of a run that starts over (no checkpoint to go on from)."""
    for path in Path(folder).glob(f"*{EVENT_FILE_MARK}*"):
        path.unlink()
