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

Nothing a resume does may lose a checkpoint. TensorFlow reads checkpoint paths as glob
patterns (a run dir named `..._sinks=[scalars]` matches nothing): a run dir whose path
holds a glob character is handed to TensorFlow through `/proc/self/fd`, a path without
one. The two newest checkpoints are kept (`KEEP`), so a damaged newest one falls back to
the one before, naming the damaged file. Event files are rewritten crash-safe: a temporary
file whose name has no `tfevents` in it (TensorBoard reads any file that has), written in
full and synced before it replaces the original; one left by a killed rewrite is removed
by the next.
"""

from __future__ import annotations

import logging
import os
import weakref
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from pipeline.runinfo import (
    CHECKPOINT_DIR,
    EVENT_FILE_MARK,
    RUNNING,
    Records,
    read_metrics,
    saved_checkpoints,
    write_durably,
    write_metrics,
)
from pipeline.train import variables_of

#: TensorFlow logs this at INFO (through absl) on every save; Hydra's log set-up shows it
SAVE_CHATTER = "Sharding callback duration"


def _not_save_chatter(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(SAVE_CHATTER)


logging.getLogger("absl").addFilter(_not_save_chatter)

#: an event file being rewritten is first written to `<this><its number>`: no EVENT_FILE_MARK
REWRITING = ".tbpipe-rewriting-"
#: how many checkpoints a run keeps: the newest, and the one before in case it is damaged
KEEP = 2
#: what TensorFlow's file matching reads as a pattern in a path
GLOB_CHARACTERS = frozenset("*?[]{}\\")


@dataclass
class Damaged:
    """A checkpoint that could not be restored: its step, the file at fault, and why."""

    step: int
    file: Path
    reason: str


class RunCheckpoint:
    """Saves and restores one run's state into the variables of its compiled loop."""

    def __init__(self, run_dir: Path, loop, batches=None):
        self.run_dir = Path(run_dir)
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
        #: the checkpoint folder as TensorFlow is given it: a path without glob characters
        self.folder = f"{path_without_glob(self.run_dir, self)}/{CHECKPOINT_DIR}"
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.folder, max_to_keep=KEEP)
        #: the checkpoints `restore` found damaged, newest first
        self.damaged: list[Damaged] = []

    def save(self, step: int, batch: tuple = ()) -> None:
        """Write the state after `step` updates; the oldest checkpoint beyond KEEP is dropped
        once this one is complete (TF renames the `checkpoint` index file atomically). Then
        metrics.json names it, whatever the run does next (Ctrl-C, kill -9)."""
        self.step.assign(step)
        for variable, value in zip(self.batch, batch, strict=True):
            variable.assign(value)
        self.manager.save(checkpoint_number=step)
        try:
            metrics = read_metrics(self.run_dir)
        except (OSError, ValueError):
            return  # a run without metrics.json (a test's own loop): nothing to name it in
        if metrics.get("status") == RUNNING:
            write_metrics(self.run_dir, {**metrics, "checkpoint_step": step})

    def restore(self) -> tuple[int, tuple] | None:
        """Load the newest checkpoint that can be read into the loop; the step and the
        carried batch, or None when none can. Those that cannot are listed in `damaged`."""
        self.damaged = []
        for step in saved_checkpoints(self.run_dir):
            prefix = f"{self.folder}/ckpt-{step}"
            try:
                self.checkpoint.restore(prefix).assert_existing_objects_matched()
            except Exception as error:  # TF raises IndexError, DataLossError, ... by the damage
                reason = " ".join(f"{type(error).__name__}: {error}".split())[:200]
                self.damaged.append(Damaged(step, self._bad_file(step, prefix), reason))
                continue
            return int(self.step.numpy()), tuple(tf.identity(v) for v in self.batch)
        return None

    def _bad_file(self, step: int, prefix: str) -> Path:
        """The file of a damaged checkpoint at fault: its index, or else its data."""
        folder = self.run_dir / CHECKPOINT_DIR
        try:
            tf.train.load_checkpoint(prefix)  # reads the index only
        except Exception:
            return folder / f"ckpt-{step}.index"
        data = sorted(folder.glob(f"ckpt-{step}.data-*"))
        return data[0] if data else folder / f"ckpt-{step}.data-00000-of-00001"


def path_without_glob(path: Path, owner: object) -> str:
    """`path` as a string TensorFlow's file matching takes literally: the path itself, or
    where it holds a glob character `/proc/self/fd/N` of it, open while `owner` lives."""
    text = str(Path(path).absolute())
    if not GLOB_CHARACTERS.intersection(text) or not os.path.isdir("/proc/self/fd"):
        return text
    descriptor = os.open(text, os.O_RDONLY | os.O_DIRECTORY)
    weakref.finalize(owner, os.close, descriptor)
    return f"/proc/self/fd/{descriptor}"


def keep_events_before(folder: Path, step: int) -> int:
    """Rewrite every event file in `folder` keeping only the records of steps < `step`.

    Records (walked by `runinfo.Records`, their CRCs unchecked) are copied byte for byte; a
    record cut short by a killed process ends the file. Each file is replaced only once its
    new content is complete and on disk (a temporary file without `tfevents` in its name,
    fsync, rename, fsync of the folder): killed or out of space at any moment, the folder
    holds each original or its rewrite, never a part. A temporary file left by an earlier
    rewrite is removed first. Returns how many records were dropped; OSError (e.g. a full
    disk) leaves the originals.
    """
    from tensorboard.compat.proto import event_pb2

    folder = Path(folder)
    for leftover in [*folder.glob(f"{REWRITING}*"), *folder.glob(f"*{EVENT_FILE_MARK}*.tmp")]:
        leftover.unlink()  # (`*.tmp`: what earlier versions of tbpipe left)
    dropped = 0
    for number, path in enumerate(sorted(folder.glob(f"*{EVENT_FILE_MARK}*"))):
        data = path.read_bytes()
        kept = []
        for start, end, record in Records(data, checked=False):
            if event_pb2.Event.FromString(record).step < step:
                kept.append(data[start:end])
            else:
                dropped += 1
        if sum(map(len, kept)) != len(data):  # something dropped: write what is kept
            write_durably(path, kept, folder / f"{REWRITING}{number}")
    return dropped


def remove_events(folder: Path) -> None:
    """Delete the event files of a run that starts over (no checkpoint to go on from)."""
    for path in Path(folder).glob(f"*{EVENT_FILE_MARK}*"):
        path.unlink()
