"""`tbpipe report`: any TensorBoard logdir read back as numbers, damaged files named, not fatal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.readback import report
from pipeline.readback.histogram_guide import DISTRIBUTION_PERCENTILES, read_histogram
from pipeline.readback.runs import find_runs
from pipeline.tensorflow_quiet import import_tensorflow
from tests.test_report_reader import both_readers, served_runs


def _report_json(capsys, *args: str) -> dict:
    assert report.main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def normal_weights(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A logdir with one run: 10,000 N(0, 1) weights at step 0, all zero ("dead") at step 1."""
    tf = import_tensorflow()
    logdir = tmp_path_factory.mktemp("normal")
    weights = np.random.default_rng(0).standard_normal(10_000)
    writer = tf.summary.create_file_writer(str(logdir / "weights"))
    with writer.as_default():
        tf.summary.histogram("w", weights, step=0)
        tf.summary.histogram("w", np.zeros(100), step=1)
        tf.summary.scalar("loss", 0.5, step=0)
        tf.summary.scalar("loss", 0.25, step=1)
    writer.close()
    return logdir, weights


def test_normal_weights_read_as_the_tutorial_says(normal_weights, capsys):
    logdir, weights = normal_weights
    document = _report_json(capsys, str(logdir), "--histograms")
    assert document["runs"] == [{"run": "weights", "step": 1, "scalars": {"loss": 0.25}}]
    first, last = document["histograms"]
    assert (first["tag"], first["step"], last["step"]) == ("w", 0, 1)
    # the tutorial: 38.3% of N(0, 1) weights lie in (-0.5, 0.5), 86.6% in (-1.5, 1.5)
    assert abs(first["within_half"] - 0.383) < 0.01
    assert abs(first["within_one_and_half"] - 0.866) < 0.01
    # from 30 buckets, the shares match the raw sample's own (37.5% and 87.0% for seed 0)
    assert abs(first["within_half"] - np.mean(abs(weights) < 0.5)) < 0.003
    assert abs(first["within_one_and_half"] - np.mean(abs(weights) < 1.5)) < 0.003
    assert first["count"] == 10_000
    assert abs(first["mean"] - weights.mean()) < 0.02
    assert abs(first["std"] - weights.std()) < 0.03
    # the DISTRIBUTIONS view's bands sit near the N(0, 1) quantiles -1.5 ... 1.5
    inner = {p: first["percentiles"][f"{p:g}"] for p in DISTRIBUTION_PERCENTILES[1:-1]}
    expected = dict(
        zip(DISTRIBUTION_PERCENTILES[1:-1], [-1.5, -1, -0.5, 0, 0.5, 1, 1.5], strict=True)
    )
    for p, value in inner.items():
        assert abs(value - expected[p]) < 0.1, (p, value)
    assert first["percentiles"]["0"] == pytest.approx(weights.min(), abs=1e-6)
    assert first["percentiles"]["100"] == pytest.approx(weights.max(), abs=1e-6)
    # the threshold counts: N(0, 1) has ~0.08% of values within 1e-3 of zero; zeros are all dead
    assert first["dead"] < 0.005
    assert last["dead"] == 1.0 and last["dead_threshold"] == 1e-3


def test_dead_share_follows_the_threshold():
    buckets = np.array([[-1.0, 0.0, 50.0], [0.0, 1.0, 50.0]])  # uniform on (-1, 1)
    assert read_histogram(buckets, dead_threshold=0.1).dead == pytest.approx(0.1)
    assert read_histogram(buckets, dead_threshold=0.5).dead == pytest.approx(0.5)
    # ReLU-like: half the values exactly 0, in one wide bucket with small positive ones
    relu = np.array([[0.0, 0.5, 60.0], [0.5, 1.0, 40.0]])
    reading = read_histogram(relu, dead_threshold=1e-3)
    assert reading.dead == pytest.approx(60 * 1e-3 / 0.5 / 100)  # interpolated: reads low
    assert reading.dead_at_most == pytest.approx(0.6)  # the bound says it may be 60%


def test_table_and_csv_list_every_run(normal_weights, capsys):
    logdir, _ = normal_weights
    assert report.main([str(logdir)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["run", "step", "loss"]
    assert table[2].split() == ["weights", "1", "0.25"]
    assert report.main([str(logdir), "--csv", "--histograms"]) == 0
    csv_text = capsys.readouterr().out
    assert csv_text.startswith("run,step,loss\nweights,1,0.25\n\nrun,tag,step,count,mean,std")


def test_truncated_and_malformed_event_files_give_a_warning_naming_the_file(
    normal_weights, tmp_path, capsys
):
    logdir, _ = normal_weights
    damaged = tmp_path / "logs"
    shutil.copytree(logdir / "weights", damaged / "truncated")
    shutil.copytree(logdir / "weights", damaged / "whole")
    (event_file,) = (damaged / "truncated").iterdir()
    event_file.write_bytes(event_file.read_bytes()[:-20])  # cut the last record short
    shutil.copytree(logdir / "weights", damaged / "flipped")
    (flipped,) = (damaged / "flipped").iterdir()
    data = bytearray(flipped.read_bytes())
    data[-5] ^= 1  # one bit of the last record's data: it still parses, its CRC fails
    flipped.write_bytes(bytes(data))
    garbage = damaged / "garbage" / "events.out.tfevents.1.host"
    garbage.parent.mkdir()
    garbage.write_bytes(b"this is not an event file\n" * 4)

    assert report.main([str(damaged), "--json"]) == 0
    captured = capsys.readouterr()
    warnings = captured.err.splitlines()
    assert len(warnings) == 3, captured.err
    assert str(flipped) in warnings[0] and "checksum" in warnings[0]
    assert str(garbage) in warnings[1] and "malformed" in warnings[1]
    assert str(event_file) in warnings[2] and "truncated" in warnings[2]
    rows = {row["run"]: row for row in json.loads(captured.out)["runs"]}
    assert rows["whole"]["scalars"] == {"loss": 0.25}
    assert rows["truncated"]["step"] is not None  # what TensorBoard can still read, it shows


def test_keras_callback_logdir(tmp_path, capsys):
    import_tensorflow()
    import keras

    x = np.linspace(-1, 1, 32, dtype="float32").reshape(-1, 1)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    callback = keras.callbacks.TensorBoard(log_dir=str(tmp_path), histogram_freq=1)
    model.fit(x, 2 * x, validation_data=(x, 2 * x), epochs=2, verbose=0, callbacks=[callback])

    document = _report_json(capsys, str(tmp_path), "--histograms")
    rows = {row["run"]: row for row in document["runs"]}
    assert set(rows) == {"train", "validation"}
    assert rows["train"]["step"] == 1  # Keras counts epochs from 0
    for row in rows.values():
        assert np.isfinite(row["scalars"]["epoch_loss"])
    kernels = [r for r in document["histograms"] if r["tag"].endswith("kernel/histogram")]
    assert [r["step"] for r in kernels] == [0, 1] and kernels[0]["count"] == 1
    both_readers(tmp_path)  # without --histograms, TensorBoard's data server reads the same
    assert served_runs(tmp_path) == {"train", "validation"}


def test_tf1_filewriter_logdir(tmp_path, capsys):
    """TF1 stored scalars as simple_value and histograms as HistogramProto; both are read."""
    tf = import_tensorflow()
    with tf.Graph().as_default():
        loss = tf.compat.v1.placeholder(tf.float32, [])
        weights = tf.compat.v1.placeholder(tf.float32, [None])
        summaries = tf.compat.v1.summary.merge(
            [
                tf.compat.v1.summary.scalar("loss", loss),
                tf.compat.v1.summary.histogram("w", weights),
            ]
        )
        writer = tf.compat.v1.summary.FileWriter(str(tmp_path / "tf1"))
        with tf.compat.v1.Session() as session:
            for step, value in enumerate([1.0, 0.5, 0.125]):
                summary = session.run(summaries, {loss: value, weights: np.arange(10.0) * value})
                writer.add_summary(summary, step)
        writer.close()

    document = _report_json(capsys, str(tmp_path), "--histograms")
    assert document["runs"] == [{"run": "tf1", "step": 2, "scalars": {"loss": 0.125}}]
    first, last = document["histograms"]
    assert (first["tag"], first["count"], last["step"]) == ("w", 10, 2)
    assert first["percentiles"]["100"] == pytest.approx(9.0)
    assert both_readers(tmp_path)[1] == [] and served_runs(tmp_path) == {"tf1"}


def test_bad_input_is_one_line(tmp_path, capsys):
    assert report.main([str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert report.main([str(tmp_path)]) == 1  # a folder with no event files
    assert "no event files" in capsys.readouterr().err
    assert report.main([str(tmp_path), "--dead-threshold", "-1"]) == 2
    assert "--dead-threshold" in capsys.readouterr().err
    assert find_runs(tmp_path) == []
