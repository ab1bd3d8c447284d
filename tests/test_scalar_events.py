"""A stacked job's scalar event files, built whole with numpy, are TensorFlow's own.

The story: "the launcher wrote my scalars without TensorFlow's summary op; TensorBoard must
not be able to tell". The same job's scalars are written by `tf.summary.scalar` on
TensorFlow's own file writer and by pipeline/sweeps/scalar_events.py; every record's Event
is compared byte for byte but for its wall time (the first, `brain.Event:2` event too),
both files are read through TensorBoard's reader, and the framing is checked against
each record's own CRC-32C.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.util import tensor_util

from pipeline.compat import masked_crc32c
from pipeline.runinfo import Records, framed
from pipeline.sweeps.scalar_events import write_scalar_files
from pipeline.sweeps.stacked_write import written_steps

#: steps whose varints take 0 (step 0) to 4 bytes, and a run's every-7th steps and last
STEPS = np.unique(
    np.concatenate([[0, 1, 127, 128, 16383, 16384, 2_097_152], written_steps(300, 7)])
)
#: the task's scalars, by writer, in its order (pipeline/tasks.py's names)
NAMES = ("train/loss", "test/loss", "train/k", "train/k/error")
#: keep every event (TensorBoard's default samples a tag's tensors down to 10)
EVERY = {event_accumulator.TENSORS: 0}
FILE_NAME = re.compile(r"events\.out\.tfevents\.(\d{10})\.[^/]+\.\d+\.\d+\.v2")


def job_values() -> dict[str, np.ndarray]:
    """Float32 columns with what a diverging run can write: NaN, infinities, -0, a subnormal."""
    rng = np.random.default_rng(29)
    values = {name: rng.standard_normal(len(STEPS)).astype(np.float32) for name in NAMES}
    values["train/loss"][:5] = [np.nan, np.inf, -np.inf, -0.0, np.float32(1e-45)]
    return values


def written_by_tensorflow(run_dir: Path, values: dict[str, np.ndarray]) -> None:
    """The job's scalars by `tf.summary.scalar` on TensorFlow's file writers, step by step."""
    import tensorflow as tf

    writers = {
        name: tf.summary.create_file_writer(str(run_dir / name)) for name in ("train", "test")
    }
    for row, step in enumerate(STEPS.tolist()):
        for name in NAMES:
            writer, _, tag = name.partition("/")
            with writers[writer].as_default(step=step):
                tf.summary.scalar(tag, values[name][row])
    for writer in writers.values():
        writer.close()


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> tuple[Path, Path, float, float]:
    """The same job written by TensorFlow and by scalar_events: both run dirs, and when the
    latter was written (from, to)."""
    where = tmp_path_factory.mktemp("scalar-events")
    values = job_values()
    written_by_tensorflow(where / "tensorflow", values)
    began = time.time()
    write_scalar_files(where / "numpy", {"train": "train", "test": "test"}, STEPS, values)
    return where / "tensorflow", where / "numpy", began, time.time()


def only_file(directory: Path) -> Path:
    (file,) = directory.iterdir()
    return file


def records(file: Path) -> list[bytes]:
    """The file's records' data, both CRCs checked (`runinfo.Records`), read to the end."""
    walk = Records(file.read_bytes())
    found = [data for _, _, data in walk]
    assert walk.problem is None, walk.problem
    return found


@pytest.mark.parametrize("writer", ["train", "test"])
def test_every_event_is_tensorflows_byte_for_byte_but_its_wall_time(both, writer):
    tensorflow_dir, numpy_dir, began, ended = both
    want_file, got_file = only_file(tensorflow_dir / writer), only_file(numpy_dir / writer)
    want, got = records(want_file), records(got_file)
    tags = sum(name.startswith(f"{writer}/") for name in NAMES)
    assert len(got) == len(want) == 1 + tags * len(STEPS)
    for number, (mine, theirs) in enumerate(zip(got, want, strict=True)):
        mine_event, their_event = Event.FromString(mine), Event.FromString(theirs)
        # the wall time is the Event's first field (a double): every other byte the same
        assert mine[0] == theirs[0] == 0x09 and mine[9:] == theirs[9:], number
        mine_event.ClearField("wall_time")
        their_event.ClearField("wall_time")
        assert mine_event.SerializeToString() == their_event.SerializeToString(), number
    # the first event: the file's version at the whole second the file's name carries
    first = Event.FromString(got[0])
    assert first.file_version == "brain.Event:2"
    assert first.source_metadata.writer == "tensorflow.core.util.events_writer"
    seconds = int(FILE_NAME.fullmatch(got_file.name).group(1))
    assert first.wall_time == seconds and int(began) <= seconds <= ended
    assert FILE_NAME.fullmatch(want_file.name), want_file.name  # named as TensorFlow names it
    assert all(began <= Event.FromString(data).wall_time <= ended for data in got[1:])


def test_tensorboard_reads_the_same_scalars_from_both(both):
    tensorflow_dir, numpy_dir, _, _ = both
    for writer in ("train", "test"):
        want, got = (
            event_accumulator.EventAccumulator(str(where / writer), size_guidance=EVERY).Reload()
            for where in (tensorflow_dir, numpy_dir)
        )
        tags = [name.partition("/")[2] for name in NAMES if name.startswith(f"{writer}/")]
        assert got.Tags()["tensors"] == want.Tags()["tensors"] and len(tags) > 0
        assert sorted(got.Tags()["tensors"]) == sorted(tags)
        for tag in tags:
            mine, theirs = got.Tensors(tag), want.Tensors(tag)
            assert [event.step for event in mine] == [event.step for event in theirs]
            assert [event.step for event in mine] == STEPS.tolist()
            mine_values = np.array([tensor_util.make_ndarray(e.tensor_proto) for e in mine])
            their_values = np.array([tensor_util.make_ndarray(e.tensor_proto) for e in theirs])
            assert mine_values.dtype == their_values.dtype == np.float32
            assert mine_values.tobytes() == their_values.tobytes(), (writer, tag)
            metadata = got.SummaryMetadata(tag)
            assert metadata == want.SummaryMetadata(tag)
            assert metadata.plugin_data.plugin_name == "scalars"
        # TensorBoard's raw loader reads every record (its own CRC checks) in the same order
        loaded = [
            list(RawEventFileLoader(str(only_file(where / writer))).Load())
            for where in (tensorflow_dir, numpy_dir)
        ]
        assert [data[9:] for data in loaded[1]] == [data[9:] for data in loaded[0]]


@pytest.mark.parametrize("varying", [(), (3,), (0, 7, 39), tuple(range(40))])
def test_framed_records_carry_each_records_own_checksums(varying):
    """`framed` computes each record's CRC from the first's and the bytes that differ: the
    same as the checksum of each record computed alone, wherever the bytes differ."""
    rng = np.random.default_rng(len(varying))
    payloads = np.tile(rng.integers(0, 256, 40, dtype=np.uint8), (50, 1))
    for column in varying:
        payloads[:, column] = rng.integers(0, 256, 50, dtype=np.uint8)
    built = framed(payloads)
    assert built.shape == (50, 56)
    for row, record in zip(payloads, built, strict=True):
        data = row.tobytes()
        length = len(data).to_bytes(8, "little")
        want = (
            length + masked_crc32c(length).to_bytes(4, "little")
            + data + masked_crc32c(data).to_bytes(4, "little")
        )  # fmt: skip
        assert record.tobytes() == want
    assert [data for _, _, data in Records(built.tobytes())] == [r.tobytes() for r in payloads]


def test_after_other_summaries_they_read_the_same(both, tmp_path):
    """Beside other sinks the scalars follow their Events in the same file (one a
    directory): its own first event, the other summaries kept first, the scalars as
    TensorFlow's."""
    from pipeline.runinfo import framed_record as framed_event
    from pipeline.sweeps.sink_events import text_event

    tensorflow_dir, _, _, _ = both
    other = text_event("config", "seed: 0", step=3)
    values = {name: column for name, column in job_values().items() if name.startswith("train/")}
    (file,) = write_scalar_files(
        tmp_path, {"train": "train", "test": "test"}, STEPS, values, {"train": framed_event(other)}
    )
    assert list((tmp_path / "train").iterdir()) == [file]
    after = records(file)
    assert after[1] == other and len(after) == 2 + 3 * len(STEPS)
    want = records(only_file(tensorflow_dir / "train"))[1:]
    assert [data[9:] for data in after[2:]] == [data[9:] for data in want]
    read = event_accumulator.EventAccumulator(str(tmp_path / "train"), size_guidance=EVERY)
    tags = read.Reload().Tags()["tensors"]
    assert sorted(tags) == ["config", "k", "k/error", "loss"]
    assert [event.step for event in read.Tensors("config")] == [3]
    assert [event.step for event in read.Tensors("k")] == STEPS.tolist()
    # a writer with other summaries and no scalars gets a file of its own
    (alone,) = write_scalar_files(
        tmp_path / "b", {"test": "test"}, STEPS, {}, {"test": framed_event(other)}
    )
    assert alone.parent == tmp_path / "b" / "test" and records(alone)[1:] == [other]
