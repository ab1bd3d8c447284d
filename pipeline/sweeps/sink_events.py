"""A stacked job's graph, text, histogram, image and HParams Events, built as TensorFlow's
summary writer serialises them.

Beside its scalars (pipeline/sweeps/scalar_events.py) a stacked job's other sinks write a
few Events each, whose contents the launcher knows once the group is trained: the step's
graph, texts, the histograms' buckets, the fit's PNG, the HParams session. TensorFlow's
writers would cost a writer opened and closed per directory and an op call per summary;
here each Event is a protobuf message serialised in Python, as the writer's C++ kernels
build it (`WriteSummary`: a string tensor's values as `string_val`, any other tensor's as
`tensor_content`; `WriteRawProtoSummary`: the Summary as given; `WriteGraphSummary`: the
GraphDef's bytes). Equal to TensorFlow's bytes but for the wall time
(tests/test_sink_events.py), framed as TFRecords, in files named as TensorFlow names them
(`scalar_events.new_event_file`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import numpy as np

#: a tensor's dtype as TensorFlow's types.proto numbers it
DT_DOUBLE, DT_STRING = 2, 7


def graph_event(graph_def: bytes, step: int = 0) -> bytes:
    """The Event `tf.summary.graph` writes: the GraphDef's serialised bytes."""
    from tensorboard.compat.proto import event_pb2

    return event_pb2.Event(
        wall_time=time.time(), step=step, graph_def=graph_def
    ).SerializeToString()


def summary_event(summary, step: int = 0) -> bytes:
    """The Event `tf.summary.experimental.write_raw_pb` writes of a Summary message (either
    TensorBoard's or TensorFlow's class): its bytes parsed into the Event, as the kernel's."""
    from tensorboard.compat.proto import event_pb2

    event = event_pb2.Event(wall_time=time.time(), step=step)
    event.summary.ParseFromString(summary.SerializeToString())
    return event.SerializeToString()


def text_event(tag: str, text: str, step: int = 0) -> bytes:
    """The Event `tf.summary.text(tag, text, step)` writes: a 0-d string tensor."""
    from tensorboard.plugins.text import metadata

    return _string_event(
        tag, [text.encode()], (), metadata.create_summary_metadata(None, None), step
    )


def image_event(tag: str, width: int, height: int, png: bytes, step: int) -> bytes:
    """The Event `pipeline.sinks.images.write_png` writes: [width, height, PNG] strings."""
    from tensorboard.plugins.image import metadata

    values = [str(width).encode(), str(height).encode(), png]
    return _string_event(tag, values, (3,), metadata.create_summary_metadata(None, None), step)


def _string_event(tag: str, values: list[bytes], shape: tuple, metadata, step: int) -> bytes:
    from tensorboard.compat.proto import event_pb2

    event = event_pb2.Event(wall_time=time.time(), step=step)
    value = event.summary.value.add(tag=tag)
    value.tensor.dtype = DT_STRING
    value.tensor.tensor_shape.SetInParent()  # a 0-d tensor's shape is written, empty
    for size in shape:
        value.tensor.tensor_shape.dim.add(size=size)
    value.tensor.string_val.extend(values)
    value.metadata.CopyFrom(metadata)
    return event.SerializeToString()


def histogram_events(
    tags: Sequence[str], steps: Sequence[int], buckets: np.ndarray
) -> Iterable[tuple[int, bytes]]:
    """(which of `tags`, its Event) for each histogram of each step, step by step, as
    `write_histogram` writes them: `buckets` is (steps, tags, bucket_count, 3) float64."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.histogram import metadata

    events = []
    for tag in tags:
        event = event_pb2.Event(wall_time=1.0)
        value = event.summary.value.add(tag=tag)
        value.tensor.dtype = DT_DOUBLE
        for size in buckets.shape[2:]:
            value.tensor.tensor_shape.dim.add(size=size)
        value.metadata.CopyFrom(metadata.create_summary_metadata(None, None))
        events.append((event, value.tensor))
    buckets = np.ascontiguousarray(buckets, dtype="<f8")
    for row, step in enumerate(steps):
        for index, (event, tensor) in enumerate(events):
            event.wall_time, event.step = time.time(), int(step)
            tensor.tensor_content = buckets[row, index].tobytes()
            yield index, event.SerializeToString()
