"""A sweep's seed-mean runs: their events built at once are the events protobuf builds.

The story: "the mean over seeds of each setting is in TensorBoard, with its band, exactly as
before the summary got faster". The summary builds a mean run's event file at once with
numpy (pipeline/sweeps/mean_events.py) instead of one protobuf message a step through
TensorBoard's event writer. Here each event of such a file, read back with TensorBoard's
own loader, is compared byte for byte (but for its wall time) with the event protobuf
builds from the same points (the mean run as written before), on tags of different steps
(some only at some steps), steps of every varint width from 0 on, and values float32
cannot hold exactly, infinite or NaN; and the file reads back through TensorBoard's reader
as the same tags, steps and values.
"""

from __future__ import annotations

import math

import numpy as np
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.backend.event_processing.plugin_event_accumulator import (
    TENSORS,
    EventAccumulator,
)
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.util import tensor_util

from pipeline.runinfo import framed
from pipeline.sweeps.mean_events import SPREAD, _scalar_value, write_mean_events
from pipeline.sweeps.replicates import final_values

#: tags of a mean run: `k` at every step (0, 1, 2, then wide ones), `loss` at fewer
STEPS = [0, 1, 2, 127, 128, 300, 16383, 16384, 2**21, 2**35]
BY_TAG = {
    "k": [(s, 1.0 + 0.1 * i, 0.9 + 0.1 * i, 1.1 + 0.1 * i) for i, s in enumerate(STEPS)],
    "k/error": [(s, 1 / 3 * i, -math.inf, math.nan) for i, s in enumerate(STEPS[::3])],
    "loss": [(s, 1e-40, 3.4e39, -0.0) for s in STEPS[1:4]],
}


def protobuf_events(by_tag: dict) -> list[event_pb2.Event]:
    """One Event a step holding each tag's mean and band there, built value by value."""
    at_step: dict[int, list] = {}
    for tag, points in by_tag.items():
        names = (tag, f"{SPREAD}/{tag}/mean", f"{SPREAD}/{tag}/lower", f"{SPREAD}/{tag}/upper")
        for step, mean, lower, upper in points:
            for name, value in zip(names, (mean, mean, lower, upper), strict=True):
                proto = summary_pb2.Summary.Value.FromString(_scalar_value(name))
                proto.tensor.float_val.append(value)
                at_step.setdefault(step, []).append(proto)
    events = []
    for step in sorted(at_step):
        event = event_pb2.Event(wall_time=1.0, step=step)
        event.summary.value.extend(at_step[step])
        events.append(event)
    return events


def test_a_mean_runs_events_are_those_protobuf_builds(tmp_path):
    path = write_mean_events(tmp_path / "mean" / "train", BY_TAG)
    assert path.parent == tmp_path / "mean" / "train" and "tfevents" in path.name
    first, *records = event_file_loader.RawEventFileLoader(str(path)).Load()
    opening = event_pb2.Event.FromString(first)
    assert opening.file_version == "brain.Event:2" and not opening.HasField("summary")
    assert opening.source_metadata.writer == "tensorboard.summary.writer.event_file_writer"
    want = protobuf_events(BY_TAG)
    assert len(records) == len(want) == len(set(STEPS))
    events = [event_pb2.Event.FromString(record) for record in records]
    wall_times = {event.wall_time for event in events}
    assert len(wall_times) == 1 and wall_times.pop() > 0
    for record, event, expected in zip(records, events, want, strict=True):
        assert event == event_pb2.Event(wall_time=event.wall_time, step=expected.step,
                                        summary=expected.summary)  # fmt: skip
        wall_time = event_pb2.Event(wall_time=event.wall_time).SerializeToString()
        assert record == wall_time + expected.SerializeToString()[len(wall_time) :]
    framing = framed(np.frombuffer(first, dtype=np.uint8)[None]).tobytes()
    for record in records:  # each framed as runinfo.framed frames it, its checksums too
        framing += framed(np.frombuffer(record, dtype=np.uint8)[None]).tobytes()
    assert path.read_bytes() == framing


def test_a_mean_run_reads_back_as_its_points(tmp_path):
    run = tmp_path / "mean" / "test"
    write_mean_events(run, BY_TAG)
    reader = EventAccumulator(str(run), size_guidance={TENSORS: 0})
    reader.Reload()
    finals = final_values(BY_TAG)
    for tag, points in BY_TAG.items():
        names = (tag, f"{SPREAD}/{tag}/mean", f"{SPREAD}/{tag}/lower", f"{SPREAD}/{tag}/upper")
        for position, name in enumerate(names):
            read = reader.Tensors(name)
            assert [event.step for event in read] == [point[0] for point in points]
            got = [tensor_util.make_ndarray(event.tensor_proto) for event in read]
            with np.errstate(over="ignore"):  # values past float32's range: inf, as written
                want = np.float32([point[1:][max(position - 1, 0)] for point in points])
            assert np.array_equal(np.float32(got), want, equal_nan=True), name
            step, value = finals[name]
            assert step == read[-1].step and repr(value) == repr(float(got[-1]))
