"""The tbpipe tab reads a run's scalars again exactly when `tbpipe report`'s cache would:
when an event file's stamp (name, size, mtime, ctime, inode) changes."""

from __future__ import annotations

import os
import shutil

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from pipeline.board_plugin.sweep_view import scalars_of


def write_k(folder, value: float) -> str:
    """The folder's one event file, holding k at steps 0 and 1: its name."""
    writer = EventFileWriter(str(folder))
    for step in (0, 1):
        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag="k", simple_value=value)]
        )
        writer.add_event(event_pb2.Event(step=step, wall_time=1.0, summary=summary))
    writer.close()
    (name,) = os.listdir(folder)
    return name


def test_an_unchanged_run_is_not_read_again(tmp_path):
    write_k(tmp_path, 1.5)
    first = scalars_of(tmp_path)
    assert first == {"k": [(0, 1.5), (1, 1.5)]}
    assert scalars_of(tmp_path) is first


def test_a_file_replaced_by_one_of_the_same_size_and_mtime_is_read_again(tmp_path):
    run, other = tmp_path / "run", tmp_path / "other"
    run.mkdir(), other.mkdir()
    name = write_k(run, 1.5)
    assert scalars_of(run)["k"][-1] == (1, 1.5)
    write_k(other, 2.5)
    replacement = next(other.iterdir())
    old = (run / name).stat()
    assert replacement.stat().st_size == old.st_size
    os.utime(replacement, ns=(old.st_atime_ns, old.st_mtime_ns))
    shutil.move(replacement, run / name)  # a new inode and ctime under the same name
    assert scalars_of(run)["k"][-1] == (1, 2.5)
