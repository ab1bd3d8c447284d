"""Histogram summaries that TensorBoard reads exactly like `tf.summary.histogram`'s.

TensorBoard's own `tf.summary.histogram` buckets the data with two nested `tf.cond`s and a
one-hot matrix; inside a compiled training loop that costs several times the rest of a step
(docs/PERFORMANCE.md, "Where a step's time goes"). Here the same [left, right, count]
buckets come without branches, and the several histograms a sink records at once (weights,
outputs, residuals) are bucketed together: one concatenation, per-histogram minimum and
maximum as segment reductions, and one count over all of them. Inside the loop a histogram
costs a few ops instead of dozens (a large tensor, e.g. an MLP's hidden outputs, is still
counted on its own by `tf.histogram_fixed_width`: there the passes over its values are the
cost).

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


#: a tensor larger than this is bucketed on its own: every extra pass over a million
#: values that bucketing together takes (gathers, a concatenated copy) costs more than
#: the ops it saves
ALONE_ABOVE = 4096


def histogram_buckets(data: tf.Tensor, bucket_count: int = 30) -> tf.Tensor:
    """A (bucket_count, 3) float64 tensor of [left edge, right edge, count]."""
    return many_histogram_buckets([data], bucket_count)[0]


def many_histogram_buckets(datas: Sequence[tf.Tensor], bucket_count: int = 30) -> list[tf.Tensor]:
    """The (bucket_count, 3) buckets of each of these non-empty tensors, each on its own
    range: small ones bucketed together, large ones (and those of unknown size) alone."""
    sizes = [data.shape.num_elements() for data in datas]
    small = [i for i, size in enumerate(sizes) if size is not None and size < ALONE_ABOVE]
    buckets = _together([datas[i] for i in small], bucket_count) if small else None
    together = iter(tf.unstack(buckets, num=len(small)) if small else [])
    return [next(together) if i in small else _alone(d, bucket_count) for i, d in enumerate(datas)]


def rows_histogram_buckets(rows: Sequence[tf.Tensor], bucket_count: int = 30) -> tf.Tensor:
    """(R, len(rows), bucket_count, 3): the buckets of each row (first axis, R long) of each
    of these tensors, the same numbers as `many_histogram_buckets` gives each row; rows
    of known size below `ALONE_ABOVE` bucketed together in one set of ops (e.g. a
    histogram's data at every step of a run, bucketed after the run)."""
    count = int(rows[0].shape[0])
    sizes = [row.shape[1:].num_elements() for row in rows]
    if all(size is not None and size < ALONE_ABOVE for size in sizes):
        flat = [tf.reshape(tf.cast(row, tf.float64), [-1]) for row in rows]
        every = [size for size in sizes for _ in range(count)]  # histogram by histogram
        buckets = _bucketed(tf.concat(flat, 0), every, bucket_count)
        buckets = tf.reshape(buckets, [len(rows), count, bucket_count, 3])
        return tf.transpose(buckets, [1, 0, 2, 3])
    each = [many_histogram_buckets(list(tf.unstack(row, num=count)), bucket_count) for row in rows]
    return tf.stack([tf.stack(list(step)) for step in zip(*each, strict=True)])


def _together(datas: Sequence[tf.Tensor], bucket_count: int) -> tf.Tensor:
    """(N, bucket_count, 3) buckets of N tensors of known sizes, in one set of ops."""
    sizes = [int(data.shape.num_elements()) for data in datas]
    values = tf.concat([tf.reshape(tf.cast(data, tf.float64), [-1]) for data in datas], 0)
    return _bucketed(values, sizes, bucket_count)


def _bucketed(values: tf.Tensor, sizes: Sequence[int], bucket_count: int) -> tf.Tensor:
    """(N, bucket_count, 3) buckets of N histograms' float64 `values`, concatenated, the
    i-th `sizes[i]` long."""
    n = len(sizes)
    segment = tf.constant(np.repeat(np.arange(n, dtype=np.int32), sizes))
    is_nan = tf.math.is_nan(values)
    # segment reductions skip a NaN where tf.reduce_min returns it: put it back
    any_nan = tf.math.segment_max(tf.cast(is_nan, tf.float64), segment) > 0
    nan = tf.constant(np.full(n, np.nan))
    low = tf.where(any_nan, nan, tf.math.segment_min(values, segment))
    high = tf.where(any_nan, nan, tf.math.segment_max(values, segment))
    span, single_value, usable = _range(low, high)
    kernel_low = tf.where(usable, low, tf.zeros_like(low))
    kernel_step = tf.where(usable, span, tf.ones_like(span)) / bucket_count
    at_low, at_step = tf.gather(kernel_low, segment), tf.gather(kernel_step, segment)
    countable = tf.where(is_nan, at_low, values)  # the kernel is never given a NaN
    # tf.histogram_fixed_width's own arithmetic (histogram_op.cc), value by value
    index = tf.minimum((tf.maximum(countable, at_low) - at_low) / at_step, bucket_count - 1.0)
    index = tf.cast(index, tf.int32) + segment * bucket_count
    ones = tf.constant(np.ones(sum(sizes)))
    counts = tf.math.unsorted_segment_sum(ones, index, n * bucket_count)
    counts = tf.reshape(counts, [n, bucket_count])
    all_in_last = np.zeros((n, bucket_count))
    all_in_last[:, -1] = sizes
    counts = tf.where(single_value[:, None], tf.constant(all_in_last), counts)
    return tf.stack([*_edges(low, high, span, bucket_count), counts], axis=2)


def _alone(data: tf.Tensor, bucket_count: int) -> tf.Tensor:
    """(bucket_count, 3) buckets of one tensor, counted by tf.histogram_fixed_width."""
    values = tf.reshape(tf.cast(data, tf.float64), [-1])
    low, high = tf.reduce_min(values)[None], tf.reduce_max(values)[None]
    span, single_value, usable = _range(low, high)
    kernel_range = tf.where(usable, tf.concat([low, high], 0), tf.constant([0.0, 1.0], tf.float64))
    countable = tf.where(tf.math.is_nan(values), kernel_range[0], values)  # kernel rejects NaN
    counts = tf.histogram_fixed_width(countable, kernel_range, nbins=bucket_count)
    all_in_last = tf.one_hot(bucket_count - 1, bucket_count, dtype=tf.int32) * tf.size(values)
    counts = tf.cast(tf.where(single_value, all_in_last, counts), tf.float64)
    left, right = _edges(low, high, span, bucket_count)
    return tf.stack([left[0], right[0], counts], axis=1)


def _range(low: tf.Tensor, high: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Span, whether all values are equal, and whether tf.histogram_fixed_width can count
    on [low, high]: it rejects an empty or non-finite range (one value, or a weight on its
    way to diverging), so it is asked for [0, 1) then. For a single value the counts are
    replaced by the whole count in the last bucket; for inf/NaN data the edges show what
    happened."""
    span = high - low
    single_value = tf.equal(low, high)
    return span, single_value, tf.logical_and(tf.math.is_finite(span), tf.logical_not(single_value))


def _edges(low, high, span, bucket_count: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Left and right bucket edges, (N, bucket_count) each: tf.linspace(low, high,
    bucket_count + 1)'s arithmetic, its last edge exactly `high`, computed so that Grappler
    has no constant division to rewrite (inside a function its own came out 1 ulp off)."""
    inner = np.arange(1, bucket_count, dtype=np.float64)[None, :]
    middle = low[:, None] + (span / bucket_count)[:, None] * inner
    return tf.concat([low[:, None], middle], 1), tf.concat([middle, high[:, None]], 1)


def histogram(name: str, data: tf.Tensor, step=None, buckets: int = 30) -> tf.Tensor:
    """Write a histogram of `data` to the default writer (a no-op for empty data)."""
    if data.shape.num_elements() == 0:
        return tf.constant(False)
    return write_histogram(name, lambda: histogram_buckets(data, buckets), step)


def write_histogram(name: str, buckets, step=None) -> tf.Tensor:
    """Write buckets (from `many_histogram_buckets`, or a function making them) under `name`."""
    return tf.summary.write(tag=name, tensor=buckets, step=step, metadata=_METADATA)
