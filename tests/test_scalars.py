"""The fast scalar reader (readback/scalars.py) gives what TensorBoard's accumulator gives.

Event files are written with TensorBoard's own writer, in the shapes that matter: TF2
tensors whose metadata comes with the first value only, TF1 simple_values, histograms
beside scalars, a restart (SessionLog.START) in a version-2 file, an out-of-order step in
a version-1 file, two files in one run, a truncated file; and a real tbpipe run.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util

from pipeline.readback.runs import SCALARS, DamagedEventFile, load_run, load_runs
from pipeline.readback.scalars import load_scalar_runs, read_scalars


def scalar(tag: str, value: float, step: int, first: bool = False, dtype=np.float32):
    metadata = scalar_metadata.create_summary_metadata(display_name=tag, description="")
    value = summary_pb2.Summary.Value(
        tag=tag,
        tensor=tensor_util.make_tensor_proto(np.array(value, dtype=dtype)),
        metadata=metadata if first else None,
    )
    return event_pb2.Event(step=step, wall_time=1.0, summary=summary_pb2.Summary(value=[value]))


def simple(tag: str, value: float, step: int):
    value = summary_pb2.Summary.Value(tag=tag, simple_value=value)
    return event_pb2.Event(step=step, wall_time=1.0, summary=summary_pb2.Summary(value=[value]))


def histogram(tag: str, step: int, first: bool = False):
    metadata = histogram_metadata.create_summary_metadata(display_name=tag, description="")
    buckets = np.array([[0.0, 1.0, 3.0], [1.0, 2.0, 4.0]])
    value = summary_pb2.Summary.Value(
        tag=tag,
        tensor=tensor_util.make_tensor_proto(buckets),
        metadata=metadata if first else None,
    )
    return event_pb2.Event(step=step, wall_time=1.0, summary=summary_pb2.Summary(value=[value]))


def restart(step: int):
    return event_pb2.Event(step=step, session_log=event_pb2.SessionLog(status=1))  # START


def write(run_dir, events, version="brain.Event:2", suffix=""):
    writer = EventFileWriter(str(run_dir), filename_suffix=suffix)
    if version is not None:  # EventFileWriter writes a version-2 header itself
        writer.add_event(event_pb2.Event(file_version=version))
    for event in events:
        writer.add_event(event)
    writer.close()


def accumulator_scalars(run_dir, ends_only=False) -> dict:
    run = load_run(run_dir, {SCALARS}, ends_only=ends_only)
    return {tag: [(s, float(v)) for s, v in run.series[SCALARS][tag]] for tag in run.tags(SCALARS)}


def same_as_tensorboard(run_dir) -> dict:
    for ends_only in (False, True):
        fast = read_scalars(run_dir, ends_only=ends_only)
        assert fast.series == accumulator_scalars(run_dir, ends_only)
    return read_scalars(run_dir).series


def test_tf2_and_tf1_scalars_beside_histograms(tmp_path):
    events = [scalar("k", 0.5, 0, first=True), histogram("w", 0, first=True)]
    events += [scalar("k", 0.25 * s, s) for s in range(1, 5)] + [histogram("w", 3)]
    events += [simple("old", 1.5, 2), simple("old", 2.5, 1)]
    events += [scalar("d", 0.1, 0, first=True, dtype=np.float64), scalar("d", 0.2, 1)]
    write(tmp_path, events)
    series = same_as_tensorboard(tmp_path)
    assert sorted(series) == ["d", "k", "old"]
    assert series["k"][-1] == (4, 1.0) and series["old"] == [(1, 2.5), (2, 1.5)]


def test_a_restart_in_a_version_2_file_drops_the_steps_written_again(tmp_path):
    events = [restart(0), scalar("k", 1.0, 0, first=True)]
    events += [scalar("k", float(s), s) for s in range(1, 6)]
    events += [restart(3)] + [scalar("k", 10.0 + s, s) for s in range(3, 5)]
    write(tmp_path, events)
    series = same_as_tensorboard(tmp_path)
    assert series["k"] == [(0, 1.0), (1, 1.0), (2, 2.0), (3, 13.0), (4, 14.0)]


def test_an_out_of_order_step_in_an_old_file_drops_that_tags_later_steps(tmp_path):
    events = [scalar("k", float(s), s, first=s == 0) for s in range(5)]
    events += [simple("other", 7.0, 4), scalar("k", 20.0, 2)]
    write(tmp_path, events, version="brain.Event:1")
    series = same_as_tensorboard(tmp_path)
    assert series["k"] == [(0, 0.0), (1, 1.0), (2, 20.0)] and series["other"] == [(4, 7.0)]


def test_two_files_of_one_run_and_steps_written_twice(tmp_path):
    write(tmp_path, [scalar("k", 1.0, 0, first=True), scalar("k", 2.0, 1)], suffix=".a")
    write(tmp_path, [scalar("k", 3.0, 1, first=True), scalar("k", 4.0, 2)], suffix=".b")
    # readers take a run's files in name order; a writer's name holds the second it opened
    # and the process's count of writers (9 sorts after 10), so give .a the earlier name
    for second, path in enumerate(sorted(tmp_path.glob("*tfevents*"), key=lambda p: p.suffix)):
        path.rename(tmp_path / f"events.out.tfevents.{second:010d}.host{path.suffix}")
    assert same_as_tensorboard(tmp_path)["k"] == [(0, 1.0), (1, 2.0), (1, 3.0), (2, 4.0)]


def test_a_truncated_file_is_read_up_to_its_damage_and_reported_as_the_report_does(tmp_path):
    run = tmp_path / "run"
    write(run, [scalar("k", float(s), s, first=s == 0) for s in range(6)])
    (event_file,) = run.iterdir()
    event_file.write_bytes(event_file.read_bytes()[:-10])
    same_as_tensorboard(run)
    with warnings.catch_warnings(record=True) as slow:
        warnings.simplefilter("always")
        expected = load_runs(tmp_path, {SCALARS}, ends_only=True)
    with warnings.catch_warnings(record=True) as fast:
        warnings.simplefilter("always")
        loaded = load_scalar_runs(tmp_path, ends_only=True)
    assert [str(w.message) for w in fast] == [str(w.message) for w in slow]
    assert {w.category for w in fast} == {DamagedEventFile} and "truncated" in str(fast[0].message)
    assert [name for name, _ in loaded] == [name for name, _ in expected] == ["run"]
    for (_, fast_run), (_, slow_run) in zip(loaded, expected, strict=True):
        assert fast_run.tags(SCALARS) == slow_run.tags(SCALARS) == ["k"]
        assert fast_run.scalars("k") == slow_run.scalars("k")


@pytest.mark.slow
def test_a_real_runs_scalars_read_fast_equal_tensorboards(default_run):
    for writer in ("train", "test"):
        series = same_as_tensorboard(default_run / writer)
        assert "loss" in series and len(series["loss"]) == 1001
