"""Summary writers: one per TensorBoard run, each in its own subdirectory of the run dir.

TensorBoard follows only the newest event file in a directory, so each directory gets
exactly one writer. A writer no sink writes to is not opened: its directory would be a
run that TensorBoard lists with nothing in it.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import tensorflow as tf


def open_writers(
    run_dir: Path,
    train: str = "train",
    test: str = "test",
    max_queue: int = 1000,
    flush_millis: int = 10000,
    used: Collection[str] = ("train", "test"),
) -> dict[str, tf.summary.SummaryWriter]:
    """Create the train and test writers under `run_dir` (those named in `used`)."""
    return {
        name: tf.summary.create_file_writer(
            str(run_dir / subdir), max_queue=max_queue, flush_millis=flush_millis
        )
        for name, subdir in (("train", train), ("test", test))
        if name in used
    }


def close_writers(writers: dict[str, tf.summary.SummaryWriter]) -> None:
    """Flush and close every writer, so the event files are complete on disk."""
    for writer in writers.values():
        writer.close()
