"""Sweeps of many jobs in one process: per-job cost, memory over jobs, up-front checks.

    .venv/bin/python benchmarks/sweep_scale.py per-job --jobs 60           # basic vs tbpipe sweeper
    .venv/bin/python benchmarks/sweep_scale.py memory --jobs 1000 --steps 50 [--baseline]
    .venv/bin/python benchmarks/sweep_scale.py check --jobs 10000          # a bad value at the end
    .venv/bin/python benchmarks/sweep_scale.py first-job --jobs 100000     # time to the first job

Every figure comes from the real console script: `benchmarks/memory_probe.py` is a Hydra
callback that records, as each job ends, the process's resident memory and the seconds
since the sweep started. Per-job cost is the median gap between consecutive job ends
after the first ten (the first job pays the TensorFlow import and the loop's trace).
Run it on a quiet machine (`uptime`): the figures are wall times.
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

ROOT = Path(__file__).resolve().parents[1]
TBPIPE = str(Path(sys.executable).with_name("tbpipe"))


def sweep(
    jobs: int,
    extra: list[str],
    sweeper: str = "tbpipe",
    timeout: float = 7200,
    keep: Path | None = None,
) -> tuple[list, float]:
    """Run `tbpipe -m seed=range(jobs)` with the memory probe; return the (job, MiB, s)
    rows and the seconds to the sweep's end (the summary runs after the last job)."""
    work = Path(tempfile.mkdtemp(prefix="sweep-scale-", dir=keep))
    probe = work / "probe.txt"
    command = [
        TBPIPE, "-m", f"seed=range({jobs})", "trainer.progress=false", *extra,
        f"hydra/sweeper={sweeper}", f"hydra.sweep.dir={work / 'sweep'}",
        "+hydra.callbacks.memory._target_=benchmarks.memory_probe.MemoryProbe",
        f"+hydra.callbacks.memory.path={probe}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, cwd=work, timeout=timeout,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    wall = time.perf_counter() - started
    rows = [line.split() for line in probe.read_text().splitlines()]
    if keep is not None:
        print(f"sweep kept in {work / 'sweep'}", file=sys.stderr)
    ends = [(float(mib), float(seconds)) for job, mib, seconds in rows if job == "end"]
    jobs = [(int(job), float(mib), float(seconds)) for job, mib, seconds in rows if job != "end"]
    return jobs, (ends[0][1] if ends else wall)


def per_job_seconds(rows: list) -> float:
    ends = [seconds for _, _, seconds in rows]
    return statistics.median(b - a for a, b in zip(ends[10:], ends[11:], strict=False))


def per_job(args: argparse.Namespace) -> dict:
    """Default sinks, 1,000 steps: Hydra's basic sweeper against tbpipe's, side by side."""
    out = {}
    for sweeper in ("basic", "tbpipe"):
        rows, _ = sweep(args.jobs, [f"trainer.steps={args.steps}"], sweeper)
        out[sweeper] = {
            "first_job_end_s": rows[0][2],
            "per_job_s": round(per_job_seconds(rows), 4),
            "total_s": rows[-1][2],
        }
    return out


def memory(args: argparse.Namespace) -> dict:
    """Resident memory at job 100 (or a tenth) and at the last job, total and per-job time,
    and the sweep summary's time after the last job. `--baseline` runs the same sweep again
    with Hydra's own handling of job results (tbpipe's ForgetJobConfigs callback removed)."""
    extra = [f"trainer.steps={args.steps}", *args.sinks.split()]
    out = {"command": f"tbpipe -m seed=range({args.jobs}) trainer.progress=false {' '.join(extra)}"}
    cases = {"tbpipe": extra}
    if args.baseline:
        cases["without ForgetJobConfigs"] = [*extra, "~hydra.callbacks.forget_configs"]
    for name, overrides in cases.items():
        rows, end = sweep(args.jobs, overrides, keep=args.keep)
        early = rows[min(100, len(rows) // 10) - 1]  # job 100 is the 100th job (number 99)
        last = rows[-1]
        out[name] = {
            "jobs": len(rows),
            "mib_at_job": {early[0] + 1: early[1], last[0] + 1: last[1]},
            "growth_percent": round(100 * (last[1] / early[1] - 1), 2),
            "mib_per_job_after_job_100": round((last[1] - early[1]) / (last[0] - early[0]), 4),
            "per_job_s": round(per_job_seconds(rows), 4),
            "last_job_end_s": round(last[2], 1),
            "summary_after_last_job_s": round(end - last[2], 1),
            "total_s": round(end, 1),
        }
    out["load_average"] = os.getloadavg()
    return out


def check(args: argparse.Namespace) -> dict:
    """A bad value swept last: how long until the one-line refusal."""
    command = [TBPIPE, "-m", "data.noise_std=0.1,-1", f"seed=range({args.jobs})"]  # -1 last
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=tempfile.mkdtemp())
    return {
        "jobs": 2 * args.jobs,
        "seconds": round(time.perf_counter() - started, 3),
        "exit": done.returncode,
        "stderr": done.stderr.strip(),
    }


def first_job(args: argparse.Namespace) -> dict:
    """Seconds from the command to the end of the first job of a huge sweep (then stop)."""
    work = Path(tempfile.mkdtemp(prefix="first-job-"))
    probe = work / "probe.txt"
    command = [
        TBPIPE, "-m", f"seed=range({args.jobs})", "trainer.steps=10", "sinks=[scalars]",
        "trainer.progress=false", f"hydra.sweep.dir={work / 'sweep'}",
        "+hydra.callbacks.memory._target_=benchmarks.memory_probe.MemoryProbe",
        f"+hydra.callbacks.memory.path={probe}",
    ]  # fmt: skip
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, env=env, cwd=work, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        while not (probe.exists() and probe.read_text().strip()):
            if process.poll() is not None or time.perf_counter() - started > 600:
                return {"jobs": args.jobs, "error": f"no job ended (exit {process.poll()})"}
            time.sleep(0.05)
        return {"jobs": args.jobs, "first_job_end_s": round(time.perf_counter() - started, 2)}
    finally:
        process.terminate()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["per-job", "memory", "check", "first-job"])
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument(
        "--sinks",
        default="sinks=[scalars]",
        help="memory: the sinks override ('' for the default sinks)",
    )
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="memory: also run without tbpipe's ForgetJobConfigs callback",
    )
    parser.add_argument("--keep", type=Path, help="memory: keep the sweep under this dir")
    args = parser.parse_args()
    run = {"per-job": per_job, "memory": memory, "check": check, "first-job": first_job}
    print(json.dumps(run[args.what](args), indent=2))


if __name__ == "__main__":
    main()
