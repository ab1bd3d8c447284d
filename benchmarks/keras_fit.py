"""tbpipe against what a Keras user runs today: `model.fit` with the TensorBoard callback.

Both sides train the digits classifier of `+experiment=digits_classifier` (scikit-learn's
8x8 digits, 1,437 train / 360 test images; Flatten -> Dense(64, relu) -> Dense(10) logits,
`pipeline.models.keras_mlp(seed=0)`, so the same initial weights; Adam lr 0.01, epsilon
1e-7; sparse categorical cross-entropy from logits, accuracy) for the same whole epochs,
on the same mini-batches of 32 in the same order (each epoch a stateless shuffle seeded by
[seed, epoch], the last 1437 mod 32 images of its order left out, as `trainer.batch_size`
does). Measured in one run of this script:

- wall time of each program as a whole process, start to exit, interleaved (tbpipe, Keras,
  tbpipe, ...); medians and the run-by-run ratio; and each process's CPU time (user +
  system), which other work on a shared machine disturbs much less than wall time;
- what each wrote for TensorBoard: the tags per dashboard (and how many points), read with
  TensorBoard's own reader;
- the final weights: tbpipe's (the same run trained once more in a child process through
  `pipeline.api`, its final metrics checked equal to the timed run's) against Keras's, with
  Adam as configured, Adam given its betas as float32 values (what TensorFlow's kernel
  computes 1 - beta from) and, as the clean check, plain SGD.

    .venv/bin/python benchmarks/keras_fit.py --epochs 20 --repeats 9

The child modes (`keras`, `tbpipe-weights`) are what the script runs in its subprocesses.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
    print(json.dumps({"fit_seconds": fit_seconds}))


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
    """Run a whole process; its wall seconds (start to exit) and its last stdout line.
    Its CPU seconds (user + system, all its threads) go to `last_cpu`."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}  # both sides alike: no C++ log lines
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    last_cpu[0] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return wall, (done.stdout.strip().splitlines() or [""])[-1]


#: the CPU seconds of the last process `run` ran (on a shared machine, wall time waits for
#: the other work; CPU time much less so)
last_cpu = [0.0]


def keras_command(epochs: int, logdir: Path, weights: Path, optimizer: str) -> list[str]:
    me = [sys.executable, __file__, "keras", f"--epochs={epochs}", f"--optimizer={optimizer}"]
    return [*me, f"--logdir={logdir}", f"--weights-out={weights}"]


def dashboards(logdir: Path) -> dict[str, dict[str, list[str]]]:
    """Per writer folder, per dashboard (plugin), each tag with its number of points."""
    from pipeline.tensorflow_quiet import import_tensorflow

    import_tensorflow()  # TensorBoard's reader imports TensorFlow: without its chatter
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


def time_both(epochs: int, repeats: int, tmp: Path) -> dict[str, list[dict]]:
    """Interleaved whole-process runs; each one's wall seconds and its training loop's."""
    steps = epochs * (1437 // BATCH)
    rows: dict[str, list[dict]] = {"tbpipe": [], "model.fit": []}
    for repeat in range(repeats):
        logdir = tmp / f"tbpipe{repeat}"
        command = [str(BIN / "tbpipe"), *tbpipe_overrides(steps, "adam")]
        wall, _ = run([*command, f"hydra.run.dir={logdir}"])
        loop = json.loads((logdir / "metrics.json").read_text())["train_seconds"]
        rows["tbpipe"].append({"wall": wall, "cpu": last_cpu[0], "loop": loop, "logdir": logdir})
        logdir = tmp / f"keras{repeat}"
        wall, out = run(keras_command(epochs, logdir, tmp / "keras_adam.npz", "adam"))
        fit = json.loads(out)["fit_seconds"]
        rows["model.fit"].append({"wall": wall, "cpu": last_cpu[0], "loop": fit})
        rows["model.fit"][-1]["logdir"] = logdir
        walls = ", ".join(f"{name} {runs[-1]['wall']:.2f} s" for name, runs in rows.items())
        print(f"repeat {repeat + 1}/{repeats}: {walls}", file=sys.stderr)
    return rows


def print_times(rows: dict[str, list[dict]]) -> None:
    median = statistics.median
    print(f"\nmedians of {len(rows['tbpipe'])} interleaved runs (s): wall [min-max], loop, CPU")
    for name, runs in rows.items():
        walls = [r["wall"] for r in runs]
        print(
            f"  {name:<10}{median(walls):>7.2f} [{min(walls):.2f}-{max(walls):.2f}]"
            f"{median(r['loop'] for r in runs):>8.2f}{median(r['cpu'] for r in runs):>8.2f}"
        )
    ratios = [k["wall"] / t["wall"] for t, k in zip(rows["tbpipe"], rows["model.fit"], strict=True)]
    each = ", ".join(f"x{r:.2f}" for r in ratios)
    print(f"  model.fit / tbpipe wall: x{median(ratios):.2f} (run by run: {each})")
    cpu = [k["cpu"] / t["cpu"] for t, k in zip(rows["tbpipe"], rows["model.fit"], strict=True)]
    print(f"  model.fit / tbpipe CPU: x{median(cpu):.2f}")


def print_weights(epochs: int, tmp: Path, timed_run: Path) -> None:
    """tbpipe's final weights against Keras's: Adam (the timed runs), Adam given float32
    betas, SGD. tbpipe's Adam run must end with the timed run's final metrics."""
    steps = epochs * (1437 // BATCH)
    print("\nfinal weights, tbpipe against model.fit (same initial weights and batches):")
    for optimizer in ("adam", "sgd"):
        child = [sys.executable, __file__, "tbpipe-weights", f"--steps={steps}"]
        child += [f"--optimizer={optimizer}", f"--logdir={tmp / f'w_{optimizer}'}"]
        _, final = run([*child, f"--weights-out={tmp / f'tbpipe_{optimizer}.npz'}"])
        timed = json.loads((timed_run / "metrics.json").read_text())["final"]
        if optimizer == "adam" and json.loads(final) != timed:
            raise SystemExit("the in-process run's final metrics differ from the timed run's")
    for optimizer in KERAS_OPTIMIZERS:
        theirs = tmp / f"keras_{optimizer}.npz"
        if optimizer != "adam":  # Keras's Adam weights are the last timed run's
            run(keras_command(epochs, tmp / f"keras_{optimizer}", theirs, optimizer))
        ours = tmp / f"tbpipe_{optimizer.split('-')[0]}.npz"
        print(f"  {optimizer:<15}{json.dumps(compare_weights(ours, theirs))}")


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
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    steps = args.epochs * (1437 // BATCH)
    print(f"{now}; {args.epochs} epochs = {steps} steps; load average before: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        rows = time_both(args.epochs, args.repeats, Path(tmp))
        print(f"load average after: {load()}")
        print_times(rows)
        for name, runs in rows.items():
            print(f"\n{name} dashboards (tag (points)):")
            for folder, kinds in dashboards(runs[-1]["logdir"]).items():
                for kind, tags in kinds.items():
                    print(f"  {folder:<11}{kind:<18}{', '.join(tags)}")
        print_weights(args.epochs, Path(tmp), rows["tbpipe"][-1]["logdir"])


def load() -> str:
    """The 1, 5 and 15 minute load averages (this machine's other work)."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


CHILDREN = {"keras": keras_child, "tbpipe-weights": tbpipe_weights_child}

if __name__ == "__main__":
    main()
