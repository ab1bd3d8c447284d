"""tbpipe against what a Keras user runs today: `model.fit` with the TensorBoard callback.

Both sides train the digits classifier of `+experiment=digits_classifier` (scikit-learn's
8x8 digits, 1,437 train / 360 test images; Flatten -> Dense(64, relu) -> Dense(10) logits,
`pipeline.models.keras_mlp(seed=0)`, so the same initial weights; Adam lr 0.01, epsilon
1e-7; sparse categorical cross-entropy from logits, accuracy) for the same whole epochs,
on the same mini-batches of 32 in the same order (each epoch a stateless shuffle seeded by
[seed, epoch], the last 1437 mod 32 images of its order left out, as `trainer.batch_size`
does). Measured in one run of this script:

- wall time of each program as a whole process, start to exit, interleaved (tbpipe, Keras,
  tbpipe, ...); medians and the run-by-run ratio;
- what each wrote for TensorBoard: the tags per dashboard (and how many points), read with
  TensorBoard's own reader;
- the final weights: tbpipe's (the same run trained once more in a child process through
  `pipeline.api`, its final metrics checked equal to the timed run's) against Keras's, with
  Adam and, as the clean check, with plain SGD.

    .venv/bin/python benchmarks/keras_fit.py --epochs 20 --repeats 5

The child modes (`keras`, `tbpipe-weights`) are what the script runs in its subprocesses.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

BIN = Path(sys.executable).parent
BATCH, SEED = 32, 0
LR = {"adam": 0.01, "sgd": 0.1}  # Adam: the experiment's; SGD: the clean weights check's
#: Keras's Adam given beta1, beta2 as the float32 values TF's kernel computes 1 - beta from
KERAS_OPTIMIZERS = ("adam", "adam-f32-betas", "sgd")


def keras_child(args: argparse.Namespace) -> None:
    """The plain Keras script: model.fit with keras.callbacks.TensorBoard(histogram_freq=1)."""
    started = time.perf_counter()
    import keras
    import numpy as np
    import tensorflow as tf

    from pipeline.data import DigitsData
    from pipeline.models import keras_mlp

    data = DigitsData(seed=SEED).generate()
    n = len(data.x_train)
    per_epoch = n // BATCH

    def epoch_rows(epoch):  # the same order as tbpipe's trainer.batch_size
        order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=[SEED, epoch])
        return tf.data.Dataset.from_tensor_slices(
            tf.reshape(order[: per_epoch * BATCH], [per_epoch, BATCH])
        )

    x, y = tf.constant(data.x_train), tf.constant(data.y_train)
    batches = tf.data.Dataset.range(args.epochs).flat_map(epoch_rows)
    batches = batches.map(lambda rows: (tf.gather(x, rows), tf.gather(y, rows))).prefetch(2)
    model = keras_mlp(units=[64], outputs=10, seed=SEED)
    if args.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=LR["sgd"])
    elif args.optimizer == "adam":
        optimizer = keras.optimizers.Adam(learning_rate=LR["adam"], epsilon=1e-7)
    else:  # Keras takes 1 - beta in float64, then rounds; TF's kernel in float32
        b1, b2 = (float(np.float32(beta)) for beta in (0.9, 0.999))
        optimizer = keras.optimizers.Adam(LR["adam"], beta_1=b1, beta_2=b2, epsilon=1e-7)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    fit_started = time.perf_counter()
    model.fit(
        batches,  # the iterator carries on across epochs: epoch e gets the e-th order
        epochs=args.epochs,
        steps_per_epoch=per_epoch,
        shuffle=False,  # the batches come in tbpipe's order
        validation_data=(data.x_test, data.y_test),
        callbacks=[keras.callbacks.TensorBoard(args.logdir, histogram_freq=1)],
        verbose=0,
    )
    fit_seconds = time.perf_counter() - fit_started
    np.savez(args.weights_out, *model.get_weights())
    seconds = {"fit_seconds": fit_seconds, "seconds": time.perf_counter() - started}
    print(json.dumps(seconds))


def tbpipe_weights_child(args: argparse.Namespace) -> None:
    """tbpipe's run once more, in this process through `pipeline.api`, keeping its model."""
    import numpy as np

    from pipeline import api, app

    built = []
    build = app.build

    def build_and_keep(cfg):
        built.append(build(cfg))
        return built[-1]

    app.build = build_and_keep  # only to reach the model once the run is over
    result = api.run_experiment(*tbpipe_overrides(args.steps, args.optimizer), run_dir=args.logdir)
    np.savez(args.weights_out, *built[0].loop.model.get_weights())
    print(json.dumps(result.metrics["final"]))


def tbpipe_overrides(steps: int, optimizer: str) -> list[str]:
    overrides = ["+experiment=digits_classifier", f"trainer.steps={steps}"]
    if optimizer == "sgd":
        overrides += ["optimizer=sgd", f"optimizer.learning_rate={LR['sgd']}"]
    return [*overrides, "trainer.progress=false"]


def run(command: list[str]) -> tuple[float, str]:
    """Run a whole process; its wall seconds (start to exit) and its last stdout line."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return wall, (done.stdout.strip().splitlines() or [""])[-1]


def keras_command(epochs: int, logdir: Path, weights: Path, optimizer: str) -> list[str]:
    me = [sys.executable, __file__, "keras", f"--epochs={epochs}", f"--optimizer={optimizer}"]
    return [*me, f"--logdir={logdir}", f"--weights-out={weights}"]


def dashboards(logdir: Path) -> dict[str, dict[str, list[str]]]:
    """Per writer folder, per dashboard (plugin), each tag with its number of points."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    found = {}
    for folder in sorted({path.parent for path in logdir.rglob("*tfevents*")}):
        reader = ea.EventAccumulator(str(folder), size_guidance={ea.TENSORS: 0})
        reader.Reload()
        kinds = defaultdict(list)
        for tag in reader.Tags()["tensors"]:
            plugin = reader.SummaryMetadata(tag).plugin_data.plugin_name
            kinds[plugin].append(f"{tag} ({len(reader.Tensors(tag))})")
        if reader.Tags()["graph"]:
            kinds["graph"].append("op graph")
        found[str(folder.relative_to(logdir))] = dict(kinds)
    return found


def compare_weights(ours: Path, theirs: Path) -> dict[str, float]:
    import numpy as np

    a, b = np.load(ours), np.load(theirs)
    pairs = [(a[name], b[name]) for name in a.files]
    diff = max(float(np.max(np.abs(x - y))) for x, y in pairs)
    scale = max(float(np.max(np.abs(y))) for _, y in pairs)
    return {"max_abs_diff": diff, "max_abs_weight": scale, "relative": diff / scale}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", *CHILDREN])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--optimizer", choices=KERAS_OPTIMIZERS, default="adam")
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--logdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--weights-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode != "bench":
        return CHILDREN[args.mode](args)
    steps = args.epochs * (1437 // BATCH)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{now}; {args.epochs} epochs = {steps} steps; load average before: {load()}")
    walls: dict[str, list[float]] = {"tbpipe": [], "keras": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for repeat in range(args.repeats):
            tb_dir, keras_dir = tmp / f"tbpipe{repeat}", tmp / f"keras{repeat}"
            command = [str(BIN / "tbpipe"), *tbpipe_overrides(steps, "adam")]
            walls["tbpipe"].append(run([*command, f"hydra.run.dir={tb_dir}"])[0])
            wall, _ = run(keras_command(args.epochs, keras_dir, tmp / "keras_adam.npz", "adam"))
            walls["keras"].append(wall)
            print(
                f"repeat {repeat + 1}/{args.repeats}: tbpipe {walls['tbpipe'][-1]:.2f} s, "
                f"keras {wall:.2f} s",
                file=sys.stderr,
            )
        print(f"load average after: {load()}")
        tb, kr = walls["tbpipe"], walls["keras"]
        ratios = [k / t for t, k in zip(tb, kr, strict=True)]
        print(
            f"\nwall s, medians of {args.repeats} interleaved runs: tbpipe "
            f"{statistics.median(tb):.2f} [{min(tb):.2f}-{max(tb):.2f}], model.fit "
            f"{statistics.median(kr):.2f} [{min(kr):.2f}-{max(kr):.2f}]"
        )
        print(
            f"model.fit / tbpipe: x{statistics.median(ratios):.2f} (run by run: "
            f"{', '.join(f'x{r:.2f}' for r in ratios)})"
        )
        for name, logdir in (("tbpipe", tb_dir), ("model.fit", keras_dir)):
            print(f"\n{name} dashboards:")
            for folder, kinds in dashboards(logdir).items():
                for kind, tags in kinds.items():
                    print(f"  {folder:<11}{kind:<12}{', '.join(tags)}")
        timed_final = json.loads((tb_dir / "metrics.json").read_text())["final"]
        print("\nfinal weights, tbpipe against model.fit (same initial weights and batches):")
        for optimizer in ("adam", "sgd"):
            child = [sys.executable, __file__, "tbpipe-weights", f"--steps={steps}"]
            child += [f"--optimizer={optimizer}", f"--logdir={tmp / f'w_{optimizer}'}"]
            _, final = run([*child, f"--weights-out={tmp / f'tbpipe_{optimizer}.npz'}"])
            if optimizer == "adam" and json.loads(final) != timed_final:
                raise SystemExit("the in-process run's final metrics differ from the timed run's")
        for keras_optimizer in KERAS_OPTIMIZERS:
            theirs = tmp / f"keras_{keras_optimizer}.npz"
            if keras_optimizer != "adam":  # Keras's Adam run is the last timed one
                logdir = tmp / f"keras_{keras_optimizer}"
                run(keras_command(args.epochs, logdir, theirs, keras_optimizer))
            ours = tmp / f"tbpipe_{keras_optimizer.split('-')[0]}.npz"
            print(f"  {keras_optimizer}: {json.dumps(compare_weights(ours, theirs))}")


def load() -> str:
    """The 1, 5 and 15 minute load averages (this machine's other work)."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


CHILDREN = {"keras": keras_child, "tbpipe-weights": tbpipe_weights_child}

if __name__ == "__main__":
    main()
