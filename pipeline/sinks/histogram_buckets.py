"""Histogram summaries that TensorBoard reads exactly like `tf.summary.histogram`'s.

TensorBoard's own `tf.summary.histogram` buckets the data with two nested `tf.cond`s and a
one-hot matrix; inside a compiled training loop that costs ~0.3 ms a histogram, ten times
the rest of a step. Here the same [left, right, count] buckets come without branches, and
the several histograms a sink records at once (weights, outputs, residuals) are bucketed
together: one concatenation, per-histogram minimum and maximum as segment reductions, and
one count over all of them. Inside the loop a histogram costs a few ops instead of ~25.

Same plugin metadata, same tensor layout and the same numbers as TensorBoard's (checked
bucket by bucket in tests/test_histogram_buckets.py), edge cases included: all values
equal puts every edge at that value and the whole count in the last bucket; a NaN makes
the edges NaN (the minimum and maximum are NaN, as `tf.reduce_min` says) and is counted in
the first bucket; data that cannot be counted on its own range (infinite, NaN) is counted
on [0, 1), as `tf.histogram_fixed_width` would be asked to.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from tensorboard.plugins.histogram import metadata

_METADATA = metadata.create_summary_metadata(display_name=None, description=None)


def histogram_buckets(data: tf.Tensor, bucket_count: int = 30) -> tf.Tensor:
    """A (bucket_count, 3) float64 tensor of [left edge, right edge, count]."""
    return many_histogram_buckets([data], bucket_count)[0]


def many_histogram_buckets(datas: Sequence[tf.Tensor], bucket_count: int = 30) -> tf.Tensor:
    """An (N, bucket_count, 3) float64 tensor: the buckets of each of N non-empty tensors,
    each on its own range."""
    n = len(datas)
    values = tf.concat([tf.reshape(tf.cast(data, tf.float64), [-1]) for data in datas], 0)
    static = [data.shape.num_elements() for data in datas]
    if None in static:  # a size known only when it runs
        sizes = tf.stack([tf.size(data) for data in datas])
        segment = tf.repeat(tf.range(n), sizes)
        ones = tf.ones_like(values)
        all_in_last = tf.pad(tf.cast(sizes, tf.float64)[:, None], [[0, 0], [bucket_count - 1, 0]])
    else:
        segment = tf.constant(np.repeat(np.arange(n, dtype=np.int32), static))
        ones = tf.constant(np.ones(sum(static)))
        all_in_last = np.zeros((n, bucket_count))
        all_in_last[:, -1] = static
        all_in_last = tf.constant(all_in_last)
    is_nan = tf.math.is_nan(values)
    # segment reductions skip a NaN where tf.reduce_min returns it: put it back
    any_nan = tf.math.segment_max(tf.cast(is_nan, tf.float64), segment) > 0
    nan = tf.constant(np.full(n, np.nan))
    low = tf.where(any_nan, nan, tf.math.segment_min(values, segment))
    high = tf.where(any_nan, nan, tf.math.segment_max(values, segment))
    span = high - low
    single_value = tf.equal(low, high)
    # tf.histogram_fixed_width rejects an empty or non-finite range (one value, or a weight
    # on its way to diverging): it is asked for [0, 1) then. For a single value the counts
    # are replaced below; for inf/NaN data the edges show what happened.
    usable = tf.logical_and(tf.math.is_finite(span), tf.logical_not(single_value))
    kernel_low = tf.where(usable, low, tf.zeros_like(low))
    kernel_step = tf.where(usable, span, tf.ones_like(span)) / bucket_count
    at_low, at_step = tf.gather(kernel_low, segment), tf.gather(kernel_step, segment)
    countable = tf.where(is_nan, at_low, values)  # the kernel is never given a NaN
    # tf.histogram_fixed_width's own arithmetic (histogram_op.cc), value by value
    index = tf.minimum((tf.maximum(countable, at_low) - at_low) / at_step, bucket_count - 1.0)
    index = tf.cast(index, tf.int32) + segment * bucket_count
    counts = tf.math.unsorted_segment_sum(ones, index, n * bucket_count)
    counts = tf.reshape(counts, [n, bucket_count])
    counts = tf.where(single_value[:, None], all_in_last, counts)
    # tf.linspace(low, high, bucket_count + 1)'s arithmetic, its last edge exactly `high`
    inner = np.arange(1, bucket_count, dtype=np.float64)[None, :]
    middle = low[:, None] + (span / bucket_count)[:, None] * inner
    edges = tf.concat([low[:, None], middle, high[:, None]], 1)
    return tf.stack([edges[:, :-1], edges[:, 1:], counts], axis=2)


def histogram(name: str, data: tf.Tensor, step=None, buckets: int = 30) -> tf.Tensor:
    """Write a histogram of `data` to the default writer (a no-op for empty data)."""
    if data.shape.num_elements() == 0:
        return tf.constant(False)
    return write_histogram(name, lambda: histogram_buckets(data, buckets), step)


def write_histogram(name: str, buckets, step=None) -> tf.Tensor:
    """Write buckets (from `many_histogram_buckets`, or a function making them) under `name`."""
    return tf.summary.write(tag=name, tensor=buckets, step=step, metadata=_METADATA)
