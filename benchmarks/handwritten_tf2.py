"""The baseline: the default tbpipe experiment written by hand in plain TensorFlow 2.

Same work as `tbpipe` with its defaults: y = 2x + N(0, 0.1^2), 200 train / 100 test points,
full-batch gradient descent (lr 0.5) on y = k*x, and the same summaries: scalars k, k_error
and loss (train) and loss (test) every step; histograms of k, the predictions and the
residuals (train and test) every 10 steps; one image of the fit at the end; the graph of
one step; the config as text; HParams. Two loop styles:

  --loop python     a tf.function step called from a Python for-loop (the usual TF2 script)
  --loop compiled   the whole loop inside one tf.function

It prints one JSON line: steps, train_seconds (the loop alone) and total_seconds.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

T0 = time.perf_counter()

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorboard.plugins.hparams import api as hp  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", required=True)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--loop", choices=["python", "compiled"], default="compiled")
    parser.add_argument("--noise-std", type=float, default=0.1)
    args = parser.parse_args()

    tf.random.set_seed(0)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(0)
    x_train = rng.uniform(-1, 1, (200, 1))
    x_test = rng.uniform(-1, 1, (100, 1))
    y_train = 2.0 * x_train + args.noise_std * rng.standard_normal(x_train.shape)
    y_test = 2.0 * x_test + args.noise_std * rng.standard_normal(x_test.shape)
    x_train, x_test, y_train, y_test = (
        tf.constant(a, tf.float32) for a in (x_train, x_test, y_train, y_test)
    )

    train_writer = tf.summary.create_file_writer(f"{args.logdir}/train")
    test_writer = tf.summary.create_file_writer(f"{args.logdir}/test")
    k = tf.Variable(0.0, name="k")
    lr = 0.5

    def loss_fn(x, y):
        with tf.name_scope("loss"):
            return tf.reduce_mean(tf.square(k * x - y))

    def one_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(x, y)
        grad = tape.gradient(loss, k)
        with tf.name_scope("update"):
            k.assign_sub(lr * grad)
        return loss

    def record(step, train_loss):
        test_loss = loss_fn(x_test, y_test)
        with train_writer.as_default(step=step):
            tf.summary.scalar("k", k)
            tf.summary.scalar("k_error", tf.abs(k - 2.0))
            tf.summary.scalar("loss", train_loss)
            with tf.summary.record_if(step % 10 == 0):
                tf.summary.histogram("linear/k", k)
                tf.summary.histogram("activations/prediction", k * x_train)
                tf.summary.histogram("residuals", y_train - k * x_train)
        with test_writer.as_default(step=step):
            tf.summary.scalar("loss", test_loss)
            with tf.summary.record_if(step % 10 == 0):
                tf.summary.histogram("residuals", y_test - k * x_test)

    def train_step(step):
        with tf.GradientTape() as tape:
            loss = loss_fn(x_train, y_train)
        grad = tape.gradient(loss, k)
        record(step, loss)
        k.assign_sub(lr * grad)

    # graph of one step, config text, hparams: once, before training
    spec = tf.TensorSpec([None, 1], tf.float32)
    graph = tf.function(one_step).get_concrete_function(spec, spec).graph
    with train_writer.as_default(step=0):
        tf.summary.graph(graph)
        tf.summary.text("config", json.dumps(vars(args)))
        hp.hparams({"noise_std": args.noise_std, "learning_rate": lr, "steps": args.steps})

    started = time.perf_counter()
    if args.loop == "python":
        step_fn = tf.function(train_step)
        for step in range(args.steps):
            step_fn(tf.constant(step, tf.int64))
    else:

        @tf.function
        def whole_loop(steps):
            for step in tf.range(steps, dtype=tf.int64):
                train_step(step)

        whole_loop(tf.constant(args.steps, tf.int64))
    final = tf.constant(args.steps, tf.int64)
    with tf.summary.record_if(True):
        record(final, loss_fn(x_train, y_train))
    train_seconds = time.perf_counter() - started

    # one image of the fit at the end
    fig, ax = plt.subplots(figsize=(5, 3.75), dpi=80)
    ax.scatter(x_train.numpy(), y_train.numpy(), s=8)
    ax.scatter(x_test.numpy(), y_test.numpy(), s=8, marker="x")
    line = np.linspace(-1, 1, 101)
    ax.plot(line, float(k.numpy()) * line, color="black")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    with train_writer.as_default(step=args.steps):
        tf.summary.image("fit", tf.image.decode_png(buffer.getvalue(), channels=4)[None])
    train_writer.close()
    test_writer.close()
    Path(args.logdir).mkdir(parents=True, exist_ok=True)
    print(
        json.dumps(
            {
                "k": float(k.numpy()),
                "steps": args.steps,
                "train_seconds": train_seconds,
                "total_seconds": time.perf_counter() - T0,
            }
        )
    )


if __name__ == "__main__":
    main()
