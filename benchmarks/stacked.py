r"""Wall time and memory of a noise x seed sweep under the basic and the stacked launcher.

    .venv/bin/python benchmarks/stacked.py --noise 0.01,0.1,1,2 --seeds 25 --steps 1000 \
        --sinks "[scalars]" --sinks default

`--model mlp` (with `--hidden N`, the width; the config's 1000 when not given) sweeps
`model=mlp` of that one width instead of the tutorial's linear model.

Each case runs the real console script (`tbpipe -m data.noise_std=... seed=range(N)`) as a
whole process in a fresh temporary directory, basic then stacked, and reads the process's
peak resident memory from the kernel (`os.wait4`); `--launchers stacked` runs one of them
(the memory of a sweep too long to run twice). The wall time is what a user waits
for: Python and TensorFlow start-up, every job, the sweep summary. Also printed: the same
jobs' time a job (wall time over jobs), the CPU seconds, and the load average before and
after, since the machine is shared (docs/PERFORMANCE.md gives figures with their load).

`--floor` measures instead, in this process once TensorFlow is loaded, what the scalar
events of the same jobs alone cost: every job's train/ and test/ event files written by the
stacked launcher's own writing (pipeline/sweeps/stacked_write.py's write_events), with
nothing else of a job: built whole with numpy (pipeline/sweeps/scalar_events.py) in files
of their own, as with `sinks=[scalars]` (beside other sinks they follow those sinks' Events,
built in Python too: pipeline/sweeps/sink_events.py).
`--preflight` times the same sweep's check before Hydra runs it (pipeline/check/preflight.py:
every job's config composed and checked, its dir computed), in this process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TBPIPE = str(Path(sys.executable).with_name("tbpipe"))


def sweep_command(
    launcher: str, noise: str, seeds: int, steps: int, sinks: str, where: Path,
    model: tuple[str, ...] = (),
):  # fmt: skip
    """The sweep: every noise level x seeds 0..N-1; `sinks=default` keeps the config's;
    `model`: overrides of the model (`model=mlp`, its width)."""
    return [
        TBPIPE, "-m", *model, f"data.noise_std={noise}", f"seed=range({seeds})",
        f"trainer.steps={steps}", "trainer.progress=false",
        *([] if sinks == "default" else [f"sinks={sinks}"]),
        f"hydra/launcher={launcher}", f"hydra.sweep.dir={where / 'sweep'}",
    ]  # fmt: skip


def run_sweep(command: list[str], workdir: Path) -> tuple[float, float, float]:
    """Seconds from start to exit, the process's CPU seconds (user and system: on a
    shared machine they vary less with the load than the wall time) and its peak
    resident memory (MiB)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {process.returncode}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def floor(jobs: int, steps: int) -> None:
    """The scalar events of `jobs` jobs of `steps` steps alone: k, k/error, loss on train,
    loss on test at every step (what `sinks=[scalars]` writes), in files built whole (the
    launcher's scalars-only path), timed after one warm-up job."""
    import numpy as np

    from pipeline.sweeps.stacked_write import Scalars, write_events
    from pipeline.tensorflow_quiet import import_tensorflow

    import_tensorflow()
    names = ("train/loss", "test/loss", "train/k", "train/k/error")
    written = np.arange(steps + 1, dtype=np.int64)
    values = {name: np.random.rand(steps + 1).astype(np.float32) for name in names}
    scalars = Scalars(written, values, 2.0, "train/k/error", 0.0)
    dirs = {"train": "train", "test": "test"}
    with tempfile.TemporaryDirectory(prefix="stacked-floor-") as workdir:
        write_events(Path(workdir) / "warm-up", dirs, scalars)
        before = os.getloadavg()[0]
        started, cpu = time.perf_counter(), time.process_time()
        for job in range(jobs):
            write_events(Path(workdir) / str(job), dirs, scalars)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    events = jobs * len(names) * (steps + 1)
    print(
        f"scalar events alone, built whole: {jobs} jobs, {events} events: {seconds:.2f} s wall, "
        f"{cpu:.2f} s CPU, {cpu / jobs * 1000:.2f} ms CPU a job, "
        f"{cpu / events * 1e6:.3f} us CPU an event (load {before:.1f}, "
        f"{os.getloadavg()[0]:.1f})"
    )


def forget_parsed() -> None:
    """Empty the process's cache of parsed overrides."""
    from pipeline import compat

    compat.parsed_override.cache_clear()


def preflight(noise: str, seeds: int, steps: int, sinks: str, model: tuple[str, ...]) -> None:
    """The preflight of the same sweep (`tbpipe -m ...` checked before Hydra runs it), in
    this process, timed on its second call (the first imports and registers what it uses;
    the cache of parsed overrides is emptied between them)."""
    from pipeline.check.preflight import check_command_line

    with tempfile.TemporaryDirectory(prefix="stacked-preflight-") as workdir:
        argv = sweep_command("stacked", noise, seeds, steps, sinks, Path(workdir), model)[1:]
        check_command_line(argv)
        forget_parsed()  # the timed call parses every job's overrides, as a sweep does
        before = os.getloadavg()[0]
        started, cpu = time.perf_counter(), time.process_time()
        check_command_line(argv)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    jobs = len(noise.split(",")) * seeds
    print(
        f"preflight of {jobs} jobs: {seconds:.2f} s wall, {cpu:.2f} s CPU, "
        f"{cpu / jobs * 1000:.1f} ms CPU a job (load {before:.1f}, {os.getloadavg()[0]:.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", default="0.01,0.1,1,2", help="the noise levels swept")
    parser.add_argument("--seeds", type=int, default=25, help="seeds per noise level")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--sinks", action="append", help='"[scalars]", "default" (repeat for both)')
    parser.add_argument("--model", default="linear", choices=["linear", "mlp"])
    parser.add_argument("--hidden", type=int, help="the MLP's width (default: the config's)")
    parser.add_argument("--floor", action="store_true", help="the scalar events alone")
    parser.add_argument("--preflight", action="store_true", help="the sweep's preflight alone")
    parser.add_argument(
        "--launchers", default="basic,stacked", help="which to run (stacked alone: its memory)"
    )
    args = parser.parse_args()
    jobs = len(args.noise.split(",")) * args.seeds
    model = () if args.model == "linear" else ("model=mlp",)
    if args.model == "mlp" and args.hidden is not None:
        model += (f"model.hidden={args.hidden}",)
    if args.floor:
        return floor(jobs, args.steps)
    if args.preflight:
        return preflight(
            args.noise, args.seeds, args.steps, (args.sinks or ["[scalars]"])[0], model
        )
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs")
    shown = " ".join(model) or "model=linear"
    print(f"{jobs} jobs x {args.steps} steps ({shown}, noise {args.noise} x {args.seeds} seeds)\n")
    print("| sinks | launcher | wall (s) | a job (s) | CPU (s) | peak memory (MiB) | load |")
    print("|---|---|---|---|---|---|---|")
    for sinks in args.sinks or ["[scalars]"]:
        times = {}
        for launcher in args.launchers.split(","):
            with tempfile.TemporaryDirectory(prefix=f"stacked-bench-{launcher}-") as workdir:
                command = sweep_command(
                    launcher, args.noise, args.seeds, args.steps, sinks, Path(workdir), model
                )
                before = os.getloadavg()[0]
                seconds, cpu, memory = run_sweep(command, Path(workdir))
                after = os.getloadavg()[0]
            times[launcher] = seconds, cpu
            print(
                f"| {sinks} | {launcher} | {seconds:.1f} | {seconds / jobs:.3f} | {cpu:.1f} | "
                f"{memory:.0f} | {before:.1f}, {after:.1f} |",
                flush=True,
            )
        if {"basic", "stacked"} <= times.keys():
            (wall, cpu), (stacked_wall, stacked_cpu) = times["basic"], times["stacked"]
            print(
                f"| {sinks} | speed-up | {wall / stacked_wall:.2f}x | | "
                f"{cpu / stacked_cpu:.2f}x | | |"
            )


if __name__ == "__main__":
    main()
