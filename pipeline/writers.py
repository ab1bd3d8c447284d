"""Summary writers: one per TensorBoard run, each in its own subdirectory of the run dir.

TensorBoard follows only the newest event file in a directory, so each directory gets
exactly one writer.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf


def open_writers(
    run_dir: Path,
    train: str = "train",
    test: str = "test",
    max_queue: int = 1000,
    flush_millis: int = 10000,
) -> dict[str, tf.summary.SummaryWriter]:
    """Create the train and test writers under `run_dir`."""
    return {
        name: tf.summary.create_file_writer(
            str(run_dir / subdir), max_queue=max_queue, flush_millis=flush_millis
        )
        for name, subdir in (("train", train), ("test", test))
    }


def close_writers(writers: dict[str, tf.summary.SummaryWriter]) -> None:
    """Flush and close every writer, so the event files are complete on disk."""
    for writer in writers.values():
        writer.close()


def handle_of(writer: tf.summary.SummaryWriter) -> tf.Tensor:
    """The resource handle behind a file writer, to pass into a compiled function.

    TensorFlow's summary ops write to the default writer's `_resource`; this and
    `LoopWriter` are the only places tbpipe relies on that name (every run goes through
    them, so the whole test suite fails if a TensorFlow release renames it).
    """
    return writer._resource  # noqa: SLF001


class LoopWriter(tf.summary.SummaryWriter):
    """A writer inside the compiled loop, made from a handle the loop was given.

    Passing the handle as an argument, not capturing the writer, lets one trace write to
    each sweep job's own files. It also leaves out the flush TensorFlow's writers add each
    time `as_default()` is left inside a function (several per step): the file writer
    still flushes every `max_queue` events or `flush_millis`, and when it is closed.
    """

    def __init__(self, handle: tf.Tensor):
        self._resource = handle

    def init(self) -> None:
        """Opened by the writer the handle came from."""

    def flush(self) -> None:
        """No flush per step; see the class docstring."""

    def close(self) -> None:
        """Closed by the writer the handle came from."""
