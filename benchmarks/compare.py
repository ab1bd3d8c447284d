"""Time tbpipe against the hand-written TF2 baseline, each as a whole process.

    .venv/bin/python benchmarks/compare.py --steps 1000 --repeats 5
    .venv/bin/python benchmarks/compare.py --steps 100000 --repeats 3 --loops compiled

Runs are interleaved (tbpipe, baseline, tbpipe, ...) so that a noisy machine hurts both
alike; ratios are paired run by run, then the median is taken. For each process it reports
wall time, training throughput (steps / the loop's own seconds, as each program reports it),
peak resident memory (from wait4) and the bytes of event files written.

    .venv/bin/python benchmarks/compare.py --steps 100000 --repeats 3 --loops compiled \
        --before /tmp/tbpipe-before     # e.g. `git archive <commit> | tar -x -C` there

`--before DIR` also runs the `pipeline` package of an older checkout (on PYTHONPATH), in
the same interleaved rounds: a change's before and after, side by side with the baseline.
The load average is printed before and after the runs.
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def run_process(command: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run to completion; return wall seconds, peak RSS in MiB and stdout."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    stdout = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"benchmark: {' '.join(command)} exited {process.returncode}")
    return wall, usage.ru_maxrss // 1024, stdout


def event_bytes(logdir: Path) -> int:
    return sum(p.stat().st_size for p in logdir.rglob("events.out.tfevents.*"))


def measure_tbpipe(logdir: Path, steps: int, extra: list[str], env) -> dict:
    command = [str(BIN / "tbpipe"), f"trainer.steps={steps}", "trainer.progress=false"]
    wall, rss, _ = run_process([*command, *extra, f"hydra.run.dir={logdir}"], env)
    metrics = json.loads((logdir / "metrics.json").read_text())
    return {"wall": wall, "rss_mib": rss, "bytes": event_bytes(logdir), **_rate(steps, metrics)}


def measure_baseline(logdir: Path, steps: int, loop: str, env) -> dict:
    script = HERE / "handwritten_tf2.py"
    command = [
        sys.executable,
        str(script),
        f"--logdir={logdir}",
        f"--steps={steps}",
        f"--loop={loop}",
    ]
    wall, rss, stdout = run_process(command, env)
    result = json.loads(stdout.strip().splitlines()[-1])
    return {"wall": wall, "rss_mib": rss, "bytes": event_bytes(logdir), **_rate(steps, result)}


def _rate(steps: int, result: dict) -> dict:
    return {
        "train_seconds": result["train_seconds"],
        "steps_per_s": steps / result["train_seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--loops", default="python,compiled", help="baseline loop styles")
    parser.add_argument("--tbpipe-args", default="", help="extra overrides for tbpipe")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--before", type=Path, help="also run this checkout's pipeline package")
    args = parser.parse_args()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    loops = [loop for loop in args.loops.split(",") if loop]
    results: dict[str, list[dict]] = {"tbpipe": [], **{f"baseline-{lp}": [] for lp in loops}}
    if args.before:
        results["tbpipe-before"] = []
        before_env = {**env, "PYTHONPATH": str(args.before.resolve())}
    print(f"load average before: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            root = Path(tmp) / str(repeat)
            extra = args.tbpipe_args.split()
            results["tbpipe"].append(measure_tbpipe(root / "tbpipe", args.steps, extra, env))
            if args.before:
                row = measure_tbpipe(root / "before", args.steps, extra, before_env)
                results["tbpipe-before"].append(row)
            for loop in loops:
                row = measure_baseline(root / loop, args.steps, loop, env)
                results[f"baseline-{loop}"].append(row)
            print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)
    print(f"load average after: {load()}")
    print_table(results, args.steps)
    if args.json:
        args.json.write_text(json.dumps({"steps": args.steps, "results": results}, indent=2))


def load() -> str:
    """The 1, 5 and 15 minute load averages (this machine's other work)."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def print_table(results: dict[str, list[dict]], steps: int) -> None:
    median = statistics.median
    print(f"\n{steps} steps, medians over {len(results['tbpipe'])} interleaved runs")
    header = f"{'wall s':>9}{'steps/s':>10}{'[min-max]':>16}{'peak MiB':>10}{'event KiB':>11}"
    print(f"{'program':<20}{header}")
    for name, rows in results.items():
        rates = [r["steps_per_s"] for r in rows]
        print(
            f"{name:<20}{median(r['wall'] for r in rows):>9.2f}"
            f"{median(rates):>10.0f}{f'[{min(rates):.0f}-{max(rates):.0f}]':>16}"
            f"{median(r['rss_mib'] for r in rows):>10.0f}"
            f"{median(r['bytes'] for r in rows) / 1024:>11.0f}"
        )
    ours = results["tbpipe"]
    for name, rows in results.items():
        if name == "tbpipe":
            continue
        rates = [a["steps_per_s"] / b["steps_per_s"] for a, b in zip(ours, rows, strict=True)]
        wall = median(a["wall"] / b["wall"] for a, b in zip(ours, rows, strict=True))
        rss = median(a["rss_mib"] / b["rss_mib"] for a, b in zip(ours, rows, strict=True))
        each = ", ".join(f"x{rate:.2f}" for rate in rates)
        print(
            f"tbpipe / {name}: wall x{wall:.2f}, throughput x{median(rates):.2f} "
            f"(run by run: {each}), peak memory x{rss:.2f}"
        )


if __name__ == "__main__":
    main()
