"""A histogram summary that TensorBoard reads exactly like `tf.summary.histogram`'s.

TensorBoard's own `tf.summary.histogram` buckets the data with two nested `tf.cond`s and a
one-hot matrix; inside a compiled training loop that costs ~0.3 ms a histogram, ten times
the rest of a step. Here the same [left, right, count] buckets come from one
`tf.histogram_fixed_width` kernel and `tf.where`, with no branches. Same plugin metadata,
same tensor layout, same edge cases (all values equal: every edge at that value and the
whole count in the last bucket).
"""

from __future__ import annotations

import tensorflow as tf
from tensorboard.plugins.histogram import metadata

_METADATA = metadata.create_summary_metadata(display_name=None, description=None)


def histogram_buckets(data: tf.Tensor, bucket_count: int = 30) -> tf.Tensor:
    """A (bucket_count, 3) float64 tensor of [left edge, right edge, count]."""
    values = tf.cast(tf.reshape(data, [-1]), tf.float64)
    low, high = tf.reduce_min(values), tf.reduce_max(values)
    single_value = tf.equal(low, high)
    # The kernel rejects an empty or non-finite range (one value, or a weight on its way to
    # diverging): give it [0, 1) then. For a single value the counts are replaced below;
    # for inf/NaN data the edges show what happened.
    usable = tf.logical_and(tf.math.is_finite(high - low), tf.logical_not(single_value))
    kernel_range = tf.where(usable, tf.stack([low, high]), tf.constant([0.0, 1.0], tf.float64))
    countable = tf.where(tf.math.is_nan(values), kernel_range[0], values)  # kernel rejects NaN
    counts = tf.histogram_fixed_width(countable, kernel_range, nbins=bucket_count)
    all_in_last = tf.one_hot(bucket_count - 1, bucket_count, dtype=tf.int32) * tf.size(values)
    counts = tf.cast(tf.where(single_value, all_in_last, counts), tf.float64)
    edges = tf.linspace(low, high, bucket_count + 1)
    edges = tf.concat([edges[:-1], [high]], 0)  # the last edge is exactly the maximum
    return tf.stack([edges[:-1], edges[1:], counts], axis=1)


def histogram(name: str, data: tf.Tensor, step=None, buckets: int = 30) -> tf.Tensor:
    """Write a histogram of `data` to the default writer (a no-op for empty data)."""
    if data.shape.num_elements() == 0:
        return tf.constant(False)
    return tf.summary.write(
        tag=name,
        tensor=lambda: histogram_buckets(data, buckets),
        step=step,
        metadata=_METADATA,
    )
