"""The tbpipe tab reads a run's scalars again exactly when `tbpipe report`'s cache would:
when an event file's stamp (name, size, mtime, ctime, inode) changes. The tab's digest keys
each job's curves by these stamps (board_plugin/digest.py; tests/test_board_plugin.py reads
a real sweep's curves again after such a change)."""

from __future__ import annotations

import os
import shutil

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from pipeline.board_plugin.digest import stamps


def write_k(folder, value: float) -> str:
    """The folder's one event file, holding k at steps 0 and 1: its name."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(folder))
    for step in (0, 1):
        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag="k", simple_value=value)]
        )
        writer.add_event(event_pb2.Event(step=step, wall_time=1.0, summary=summary))
    writer.close()
    (name,) = os.listdir(folder)
    return name


def job(folder):
    """A folder the tab takes for a job: Hydra's `.hydra/overrides.yaml` in it."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("- seed=0\n")
    return folder


def test_an_unchanged_run_keeps_its_stamp(tmp_path):
    write_k(job(tmp_path / "0_seed-0") / "train", 1.5)
    first = stamps(tmp_path)
    assert list(first) == ["0_seed-0"]
    assert stamps(tmp_path) == first


def test_a_file_replaced_by_one_of_the_same_size_and_mtime_changes_the_stamp(tmp_path):
    run, other = job(tmp_path / "0_seed-0") / "train", tmp_path / "other"
    name = write_k(run, 1.5)
    before = stamps(tmp_path)
    write_k(other, 2.5)
    replacement = next(other.iterdir())
    old = (run / name).stat()
    assert replacement.stat().st_size == old.st_size
    os.utime(replacement, ns=(old.st_atime_ns, old.st_mtime_ns))
    shutil.move(replacement, run / name)  # a new inode and ctime under the same name
    assert stamps(tmp_path) != before
