"""`trainer.batch_size`: mini-batches from tf.data instead of every point each step."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import api
from pipeline.readback.runs import load_run
from pipeline.tensorflow_quiet import import_tensorflow
from pipeline.train import minibatches


def draw(batches, count: int) -> list[np.ndarray]:
    """The x values of the next `count` batches."""
    return [next(batches)[0].numpy().ravel() for _ in range(count)]


def test_each_epoch_is_a_new_order_of_the_points_and_the_seed_fixes_the_orders():
    tf = import_tensorflow()
    x = tf.constant(np.arange(10, dtype=np.float32)[:, None])
    batches = minibatches(x, 2 * x, batch_size=3, seed=0)  # 3 batches an epoch, 1 point out
    x_batch, y_batch = next(minibatches(x, 2 * x, batch_size=3, seed=0))
    assert x_batch.shape == (3, 1) and np.array_equal(y_batch.numpy(), 2 * x_batch.numpy())
    first, second = draw(batches, 3), draw(batches, 3)
    for epoch in (first, second):
        points = np.concatenate(epoch)
        assert len(set(points.tolist())) == 9 and set(points.tolist()) <= set(range(10))
    assert not np.array_equal(np.concatenate(first), np.concatenate(second))
    again = minibatches(x, 2 * x, batch_size=3, seed=0)
    assert np.array_equal(np.concatenate(draw(again, 6)), np.concatenate(first + second))
    other = minibatches(x, 2 * x, batch_size=3, seed=1)
    assert not np.array_equal(np.concatenate(draw(other, 3)), np.concatenate(first))


def series(run_dir, writer: str, tag: str) -> np.ndarray:
    return np.array([value for _, value in load_run(run_dir / writer).scalars(tag)])


def test_one_batch_of_all_the_points_is_full_batch_descent(tmp_path):
    # scalars only: the series compared below are all this test reads
    full = api.run_experiment("trainer.steps=100", "sinks=[scalars]", run_dir=tmp_path / "full")
    args = ("trainer.steps=100", "sinks=[scalars]", "trainer.batch_size=200")
    whole = api.run_experiment(*args, run_dir=tmp_path / "whole")
    # the same points in another order: the same steps up to float rounding
    assert whole.metrics["k"] == pytest.approx(full.metrics["k"], abs=1e-5)
    for writer, tag in (("train", "k"), ("train", "loss"), ("test", "loss")):
        got, want = series(whole.run_dir, writer, tag), series(full.run_dir, writer, tag)
        assert len(got) == 101 and np.allclose(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.slow  # trains 300 steps twice: in `make test`, not `make test-fast`
def test_mini_batches_converge_reproducibly_and_the_train_side_sees_the_batch(tmp_path):
    args = ("trainer.steps=300", "trainer.batch_size=16", "optimizer.learning_rate=0.2")
    run = api.run_experiment(*args, run_dir=tmp_path / "run")
    again = api.run_experiment(*args, run_dir=tmp_path / "again")
    assert abs(run.metrics["k"] - 2.0) < 0.05
    for writer, tag in (("train", "k"), ("train", "loss"), ("test", "loss")):
        assert np.array_equal(series(run.run_dir, writer, tag), series(again.run_dir, writer, tag))
    train, test = load_run(run.run_dir / "train"), load_run(run.run_dir / "test")
    counts = {step: values[:, 2].sum() for step, values in train.histograms("residuals")}
    assert counts[10] == 16 and counts[300] == 200  # in the loop: the batch; at the end: all
    assert {values[:, 2].sum() for _, values in test.histograms("residuals")} == {100}
    loss = series(run.run_dir, "train", "loss")
    assert loss[-1] == pytest.approx(run.metrics["train_loss"])  # final record: every point


@pytest.mark.slow  # two runs, one in 18 chunks: in `make test`, not `make test-fast`
def test_where_chunks_end_does_not_change_which_batches_the_steps_see(tmp_path):
    args = ("trainer.steps=120", "trainer.batch_size=8")
    whole = api.run_experiment(*args, run_dir=tmp_path / "whole").run_dir
    chunked = ("trainer.chunk=7", "sinks.images.every=50")  # Python visits every 7 steps or so
    pieces = api.run_experiment(*args, *chunked, run_dir=tmp_path / "pieces").run_dir
    for writer, tag in (("train", "k"), ("train", "loss"), ("test", "loss")):
        assert np.array_equal(series(whole, writer, tag), series(pieces, writer, tag))
