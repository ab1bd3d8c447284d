"""`report` and `board` agree on what a run is: symlinked runs are followed as TensorBoard
follows them, and a symlink loop is walked once (TensorBoard would list it ~40 times).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tensorboard.backend.event_processing import io_wrapper
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from pipeline.readback.runs import find_runs, symlink_loops


def write_scalar(folder: Path, tag: str, value: float) -> None:
    """One scalar event, written with TensorBoard's own writer."""
    writer = EventFileWriter(str(folder))
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
    writer.add_event(event_pb2.Event(wall_time=time.time(), step=1, summary=summary))
    writer.close()


def logdir_with_links(tmp_path: Path) -> Path:
    real = tmp_path / "elsewhere" / "run"
    write_scalar(real / "train", "loss", 0.5)
    logs = tmp_path / "logs"
    write_scalar(logs / "own", "loss", 0.25)
    os.symlink(real, logs / "linked")  # a run kept elsewhere, linked in
    os.symlink(logs, logs / "loop")  # a loop back to the logdir itself
    os.symlink(tmp_path / "gone", logs / "dangling")
    return logs


def test_a_linked_run_is_found_and_a_loop_is_walked_once(tmp_path):
    logs = logdir_with_links(tmp_path)
    assert [name for name, _ in find_runs(logs)] == ["linked/train", "own"]
    assert symlink_loops(logs) == [logs / "loop"]


def test_report_and_tensorboard_see_the_same_runs(tmp_path):
    logs = logdir_with_links(tmp_path)
    seen_by_tensorboard = {
        os.path.realpath(folder) for folder in io_wrapper.GetLogdirSubdirectories(str(logs))
    }
    seen_by_report = {os.path.realpath(folder) for _, folder in find_runs(logs)}
    assert seen_by_report == seen_by_tensorboard  # the same runs, each once for report


def test_report_reads_a_linked_run(tmp_path, capsys):
    from pipeline.readback.report import main

    logs = logdir_with_links(tmp_path)
    assert main([str(logs), "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("run,step")
    assert sorted(line.split(",")[0] for line in lines[1:]) == ["linked/train", "own"]
