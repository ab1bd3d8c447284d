"""Where a step of the compiled loop spends its time, with and without summaries.

    .venv/bin/python benchmarks/profile_loop.py --steps 5000

1. Ablation: the default experiment's loop is timed (chunks of `--steps`, best of
   `--repeats`, after one warm-up chunk) with no in-loop sinks, scalars only, histograms
   only and both, in one process, so the differences are what each sink costs a step.
2. Profile: one chunk with the default sinks runs under TensorFlow's profiler
   (`tf.profiler.experimental`); the XPlane it writes is read with TensorFlow's own
   protobuf and the time of the TF compute thread is split into the summary-writing
   kernels (WriteSummary: serialising an event and queueing it for the file) and the rest.
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")  # tbpipe's default (trainer.inter_op_threads)

from hydra import compose  # noqa: E402

from pipeline import app  # noqa: E402
from pipeline import train as training  # noqa: E402
from pipeline.check.compose import tbpipe_configs  # noqa: E402
from pipeline.tensorflow_quiet import import_tensorflow  # noqa: E402

VARIANTS = {
    "no sinks in the loop": ["sinks=[graph,images,text]"],
    "scalars every step": ["sinks=[scalars]"],
    "histograms every 10 steps": ["sinks=[histograms]"],
    "scalars + histograms (default)": [],
}


def loop_of(overrides: list[str]):
    """Run a short experiment and keep its compiled loop and experiment for timing."""
    kept = {}
    original = training.CompiledLoop.__call__

    def keep(self, experiment, start, stop, batches=None, batch=()):
        kept.update(loop=self, experiment=experiment)
        return original(self, experiment, start, stop, batches, batch)

    training.CompiledLoop.__call__ = keep
    try:
        with tbpipe_configs():
            short = ["trainer.steps=10", "trainer.progress=false"]
            cfg = compose("config", overrides=[*overrides, *short])
        app.run(cfg, tempfile.mkdtemp())
    finally:
        training.CompiledLoop.__call__ = original
    return kept["loop"], kept["experiment"]


def with_fresh_writers(experiment):
    """The experiment with new open writers (the run's own were closed when it ended)."""
    import dataclasses

    from pipeline.writers import open_writers

    return dataclasses.replace(experiment, writers=open_writers(Path(tempfile.mkdtemp())))


def time_chunks(overrides: list[str], steps: int, repeats: int) -> float:
    """Best microseconds a step over `repeats` chunks of `steps` steps."""
    loop, experiment = loop_of(overrides)
    experiment = with_fresh_writers(experiment)
    loop(experiment, 0, steps, None)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        loop(experiment, 0, steps, None)
        best = min(best, time.perf_counter() - started)
    for writer in experiment.writers.values():
        writer.close()
    return best / steps * 1e6


def profile(steps: int) -> dict[str, float]:
    """Microseconds a step on TF's compute thread: summary kernels, other ops, in all."""
    tf = import_tensorflow()
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    loop, experiment = loop_of([])
    experiment = with_fresh_writers(experiment)
    loop(experiment, 0, steps, None)
    logdir = tempfile.mkdtemp()
    options = tf.profiler.experimental.ProfilerOptions(host_tracer_level=2)
    tf.profiler.experimental.start(logdir, options=options)
    started = time.perf_counter()
    loop(experiment, 0, steps, None)
    wall = time.perf_counter() - started
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    space.ParseFromString(next(Path(logdir).rglob("*.xplane.pb")).read_bytes())
    totals: collections.Counter = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if name == "ExecutorState::Process":
                    totals["executor (all ops, in all)"] += event.duration_ps
                elif name.endswith(":WriteSummary"):
                    totals["WriteSummary kernels"] += event.duration_ps
    out = {name: ps / 1e6 / steps for name, ps in totals.items()}
    out["wall, profiled"] = wall / steps * 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"chunks of {args.steps} steps, best of {args.repeats}, microseconds a step")
    for name, overrides in VARIANTS.items():
        print(f"  {name:32s} {time_chunks(overrides, args.steps, args.repeats):7.1f}")
    print(f"profile of one chunk of {args.steps} steps with the default sinks, us a step")
    for name, value in profile(args.steps).items():
        print(f"  {name:32s} {value:7.1f}")


if __name__ == "__main__":
    main()
