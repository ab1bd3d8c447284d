"""Our branch-free histogram buckets equal TensorBoard's own, edge cases included."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.tensorflow_quiet import import_tensorflow

tf = import_tensorflow()

from pipeline.compat import tensorboard_histogram_buckets as tensorboard_buckets  # noqa: E402
from pipeline.readback.runs import HISTOGRAMS, load_run  # noqa: E402
from pipeline.sinks.histogram_buckets import (  # noqa: E402
    histogram,
    histogram_buckets,
    many_histogram_buckets,
)

RNG = np.random.default_rng(7)
CASES = {
    "normal 10k": RNG.standard_normal(10_000),
    "hidden 200x32": np.maximum(RNG.standard_normal((200, 32)), 0).astype(np.float32),
    "one value": np.array([3.0]),
    "all equal": np.full(7, 2.5),
    "two values": np.array([0.0, 1.0]),
    "float32 uniform": RNG.uniform(-1, 1, 200).astype(np.float32),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("buckets", [1, 7, 30])
def test_buckets_match_tensorboard(name, buckets):
    data = tf.constant(CASES[name])
    ours = histogram_buckets(data, buckets).numpy()
    theirs = tensorboard_buckets(data, buckets).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


def test_tensorboard_reads_it_as_a_histogram(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default(step=3):
        histogram("weights", tf.constant(CASES["normal 10k"]))
    writer.close()
    run = load_run(tmp_path)
    assert run.tags(HISTOGRAMS) == ["weights"]
    ((step, buckets),) = run.histograms("weights")
    assert step == 3 and buckets.shape == (30, 3) and buckets[:, 2].sum() == 10_000


@pytest.mark.parametrize("values", [[1.0, float("inf"), float("nan")], [-4.3e19], [1e308, -1e308]])
def test_non_finite_or_huge_data_does_not_stop_the_run(values):
    buckets = histogram_buckets(tf.constant(values, tf.float64), 5).numpy()
    assert buckets.shape == (5, 3) and buckets[:, 2].sum() == len(values)


ODD = {"nan": [1.0, float("nan"), 3.0], "inf": [1.0, float("inf")], "huge": [1e308, -1e308]}


def one_by_one(datas, buckets):
    """The reference: each tensor bucketed on its own, as the sinks did before."""
    return [histogram_buckets(data, buckets).numpy() for data in datas]


@pytest.mark.parametrize("buckets", [1, 7, 30])
def test_histograms_bucketed_together_equal_each_alone_and_tensorboards(buckets):
    datas = [tf.constant(CASES[name]) for name in sorted(CASES)]
    datas += [tf.constant(values, tf.float64) for values in ODD.values()]
    together = [each.numpy() for each in many_histogram_buckets(datas, buckets)]
    assert all(each.shape == (buckets, 3) for each in together)
    for ours, alone in zip(together, one_by_one(datas, buckets), strict=True):
        np.testing.assert_array_equal(ours, alone)
    for ours, data in zip(together[: len(CASES)], datas[: len(CASES)], strict=True):
        np.testing.assert_array_equal(ours, tensorboard_buckets(data, buckets).numpy())


def test_sizes_known_only_when_run_give_the_same_buckets():
    datas = [tf.constant(CASES["normal 10k"]), tf.constant(ODD["nan"], tf.float64)]
    unknown = tf.TensorSpec([None], tf.float64)
    together = tf.function(lambda a, b: many_histogram_buckets([a, b], 30), autograph=False)
    got = [each.numpy() for each in together.get_concrete_function(unknown, unknown)(*datas)]
    for ours, alone in zip(got, one_by_one(datas, 30), strict=True):
        np.testing.assert_array_equal(ours, alone)


def test_in_a_compiled_function_the_edges_are_tensorboards_to_the_bit():
    """Grappler rewrote tf.linspace's division inside a function (edges 1 ulp off)."""
    data = tf.constant(RNG.standard_normal(200).astype(np.float32))
    compiled = tf.function(lambda d: many_histogram_buckets([d], 30)[0], autograph=False)
    np.testing.assert_array_equal(compiled(data).numpy(), tensorboard_buckets(data, 30).numpy())
