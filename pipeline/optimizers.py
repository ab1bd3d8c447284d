"""Optimizers built on TensorFlow's own fused update kernels (tf.raw_ops.ResourceApply*).

We do not use Keras optimizers: Keras 3 adds seconds of import time and wraps
variables in its own types; the raw kernels are the ones TF's optimizers always ran,
and their ops land under one `update` scope in the GRAPHS view.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf


class SGD(tf.Module):
    """Plain gradient descent: w <- w - learning_rate * grad."""

    reusable_across_jobs = True  # its state is in its variables, copied per job

    def __init__(self, learning_rate: float = 0.02):
        super().__init__(name="sgd")
        self.learning_rate = float(learning_rate)

    def build(self, variables: Sequence[tf.Variable]) -> None:
        """SGD keeps no state."""

    def apply(self, grads: Sequence[tf.Tensor], variables: Sequence[tf.Variable]) -> None:
        with tf.name_scope("update"):
            for grad, var in zip(grads, variables, strict=True):
                tf.raw_ops.ResourceApplyGradientDescent(
                    var=var.handle, alpha=tf.constant(self.learning_rate, var.dtype), delta=grad
                )


class Adam(tf.Module):
    """Adam with bias correction, TensorFlow's ResourceApplyAdam kernel."""

    reusable_across_jobs = True  # its state is in its variables, copied per job

    def __init__(
        self,
        learning_rate: float = 0.05,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-7,
    ):
        super().__init__(name="adam")
        self.learning_rate = float(learning_rate)
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)
        self._slots: list[tuple[tf.Variable, tf.Variable]] = []
        self.iterations: tf.Variable | None = None

    def build(self, variables: Sequence[tf.Variable]) -> None:
        """Create the moment slots; must run before the update is traced."""
        with self.name_scope:
            self.iterations = tf.Variable(0, dtype=tf.int64, name="iterations", trainable=False)
            self._slots = [
                (
                    tf.Variable(tf.zeros_like(v), trainable=False, name="m"),
                    tf.Variable(tf.zeros_like(v), trainable=False, name="v"),
                )
                for v in variables
            ]

    def apply(self, grads: Sequence[tf.Tensor], variables: Sequence[tf.Variable]) -> None:
        with tf.name_scope("update"):
            t = tf.cast(self.iterations + 1, tf.float32)
            beta1_power, beta2_power = self.beta1**t, self.beta2**t
            for grad, var, (m, v) in zip(grads, variables, self._slots, strict=True):
                tf.raw_ops.ResourceApplyAdam(
                    var=var.handle,
                    m=m.handle,
                    v=v.handle,
                    beta1_power=beta1_power,
                    beta2_power=beta2_power,
                    lr=self.learning_rate,
                    beta1=self.beta1,
                    beta2=self.beta2,
                    epsilon=self.epsilon,
                    grad=grad,
                )
            self.iterations.assign_add(1)
