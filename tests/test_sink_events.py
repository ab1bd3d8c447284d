"""A stacked job's graph, text, histogram, image and HParams Events, built in Python, are
TensorFlow's own.

The story: "the launcher wrote my job's other summaries without TensorFlow's writers;
TensorBoard must not be able to tell". Each kind is written once by the sink's own code on
TensorFlow's file writer and once by pipeline/sweeps/sink_events.py; the Events are
compared byte for byte but for their wall time (and, for the HParams session, the times
it carries), and the histograms a job's steps give bucketed together are compared bit for
bit with each step's own. tests/test_stacked.py compares whole sweeps with the basic
launcher's through TensorBoard's reader.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.graph_pb2 import GraphDef
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.plugins.hparams import summary as hp_v1
from tensorboard.plugins.hparams import summary_v2 as hp

from pipeline.runinfo import Records, framed_record
from pipeline.sinks.histogram_buckets import (
    many_histogram_buckets,
    rows_histogram_buckets,
    write_histogram,
)
from pipeline.sinks.images import write_png
from pipeline.sweeps import sink_events
from pipeline.sweeps.scalar_events import new_event_file
from pipeline.sweeps.stacked_sinks import written_graph


def tensorflows(directory: Path, write) -> list[bytes]:
    """The Events (after the file's first) that `write()` leaves through TensorFlow's writer."""
    writer = tf.summary.create_file_writer(str(directory))
    with writer.as_default(step=0), tf.summary.record_if(True):
        write()
    writer.close()
    (file,) = directory.iterdir()
    return [data for *_, data in Records(file.read_bytes())][1:]


def without_wall_time(events: list[bytes]) -> list[bytes]:
    """Each Event's bytes after its wall time (its first field, a double: 9 bytes)."""
    assert all(event[0] == 0x09 for event in events)
    return [event[9:] for event in events]


def test_text_and_image_events_are_tensorflows(tmp_path):
    png = io.BytesIO()
    Image.new("RGB", (7, 5), "teal").save(png, format="PNG")
    png = png.getvalue()

    def write():
        tf.summary.text("config", "    seed: 0\n    ünïcode: ✓")
        tf.summary.text("command", "")
        write_png("plots/fit", png)

    want = tensorflows(tmp_path / "tf", write)
    got = [
        sink_events.text_event("config", "    seed: 0\n    ünïcode: ✓"),
        sink_events.text_event("command", ""),
        sink_events.image_event("plots/fit", 7, 5, png, 0),
    ]
    assert without_wall_time(got) == without_wall_time(want)


def test_histogram_events_are_tensorflows(tmp_path):
    steps = [0, 10, 127, 128, 20000]  # step varints of 0 to 3 bytes
    rng = np.random.default_rng(29)
    buckets = rng.standard_normal((len(steps), 2, 30, 3))
    buckets[0, 0, 0] = [np.nan, np.inf, -0.0]

    def write():
        for row, step in enumerate(steps):
            for index, tag in enumerate(["residuals", "outputs/prediction"]):
                write_histogram(tag, tf.constant(buckets[row, index]), step=step)

    want = tensorflows(tmp_path / "tf", write)
    built = sink_events.histogram_events(["residuals", "outputs/prediction"], steps, buckets)
    got = [event for _, event in built]
    assert without_wall_time(got) == without_wall_time(want)
    assert [index for index, _ in sink_events.histogram_events(["a", "b"], steps, buckets)] == [
        0, 1
    ] * len(steps)  # fmt: skip


def session_times_masked(event: bytes) -> bytes:
    """An HParams Event with its wall time and the session's start and end times zeroed."""
    parsed = Event.FromString(event)
    parsed.wall_time = 0
    for value in parsed.summary.value:
        data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
        data.session_start_info.start_time_secs = 0
        data.session_end_info.end_time_secs = 0
        value.metadata.plugin_data.content = data.SerializeToString()
    return parsed.SerializeToString()


def test_hparams_session_events_are_tensorflows(tmp_path):
    settings = {"data.noise_std": 0.1, "seed": 3, "model": "LinearModel", "flag": True}
    end = hp_v1.session_end_pb(1, end_time_secs=12.0)

    def write():
        hp.hparams(settings, trial_id="0_noise_std-0.1_seed-3", start_time_secs=11.0)
        tf.summary.experimental.write_raw_pb(end.SerializeToString(), step=0)

    want = tensorflows(tmp_path / "tf", write)
    start = hp.hparams_pb(settings, trial_id="0_noise_std-0.1_seed-3", start_time_secs=11.0)
    got = [sink_events.summary_event(start), sink_events.summary_event(end)]
    assert without_wall_time(got) == without_wall_time(want)
    assert list(map(session_times_masked, got)) == list(map(session_times_masked, want))


def test_the_graph_event_holds_the_graph_tensorflow_writes(tmp_path):
    step = tf.function(lambda x: tf.reduce_mean(tf.square(x * 2.0)))
    graph = step.get_concrete_function(tf.TensorSpec([None, 1], tf.float32)).graph
    (want,) = tensorflows(tmp_path / "tf", lambda: tf.summary.graph(graph))
    got = sink_events.graph_event(written_graph(graph))
    parsed_want, parsed_got = Event.FromString(want), Event.FromString(got)
    assert parsed_got.step == parsed_want.step == 0
    # the same nodes (TensorFlow's C++ writes a map's entries in an order of its own)
    assert GraphDef.FromString(parsed_got.graph_def) == GraphDef.FromString(parsed_want.graph_def)
    assert len(got) == len(want)


def test_events_are_framed_in_an_event_file_tensorflows_reader_reads(tmp_path):
    events = [sink_events.text_event("config", "a"), sink_events.text_event("config", "b")]
    file = new_event_file(tmp_path / "run", b"".join(map(framed_record, events)))
    walk = Records(file.read_bytes())  # both CRCs of every record checked
    found = [data for *_, data in walk]
    assert walk.problem is None and found[1:] == events
    assert Event.FromString(found[0]).file_version == "brain.Event:2"
    read = [Event.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(file))]
    assert [v.tag for e in read[1:] for v in e.summary.value] == ["config", "config"]


@pytest.mark.parametrize("size", [200, 5000])  # bucketed together, and each on its own
def test_a_jobs_steps_bucketed_together_equal_each_steps_own(size):
    rng = np.random.default_rng(size)
    rows = [
        tf.constant(rng.standard_normal((4, size, 1)).astype(np.float32)),
        tf.constant(rng.standard_normal((4, 3)) * 1e30),
    ]
    rows[0] = tf.tensor_scatter_nd_update(rows[0], [[1, 0, 0]], [np.nan])  # a NaN edge
    rows[1] = tf.tensor_scatter_nd_update(rows[1], [[2, 0], [2, 1], [2, 2]], [5.0, 5.0, 5.0])
    together = rows_histogram_buckets(rows, 30).numpy()
    assert together.shape == (4, 2, 30, 3)
    for step in range(4):
        each = many_histogram_buckets([rows[0][step], rows[1][step]], 30)
        for index, buckets in enumerate(each):
            np.testing.assert_array_equal(together[step, index], buckets.numpy())


@pytest.mark.parametrize(
    "overrides",
    [
        ["data.noise_std=0.1", "seed=3"],
        ["model=linear", "sinks=[scalars]", "optimizer.learning_rate=0.5", "+experiment=x"],
        ["sinks.0=x", "data.points.1=2", "data=linear", "trainer.batch_size=null", "hydra.a=1"],
    ],
)
def test_a_jobs_settings_read_from_the_parts_kept_equal_the_whole_configs(overrides):
    from omegaconf import OmegaConf

    from pipeline.sinks.settings import hparams_of
    from pipeline.sweeps.stacked_sinks import settings_config

    shown = {
        "data": {"_target_": "pipeline.data.LinearData", "noise_std": 0.1, "points": [1, 2]},
        "model": {"_target_": "pipeline.models.LinearModel", "k_init": 0.0},
        "optimizer": {"_target_": "keras.optimizers.SGD", "learning_rate": 0.02},
        "trainer": {"steps": 20, "batch_size": None, "progress": False},
        "sinks": {"scalars": {"_target_": "pipeline.sinks.scalars.ScalarSink", "every": 1}},
        "seed": 3,
    }
    want = hparams_of(OmegaConf.create(shown), overrides)
    got = hparams_of(settings_config(shown, overrides), overrides)
    assert list(got.items()) == list(want.items())
