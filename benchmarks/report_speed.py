"""`tbpipe report` on a 100-job sweep: wall time, CPU time and peak memory of the process.

Makes the sweep first unless one is given (`tbpipe -m data.noise_std=range(0,100)
trainer.steps=100`: 100 jobs, 300 TensorBoard runs, 45,900 events, 13 MB). Each report runs
in a fresh process; CPU time (user + sys) is what the wall time is on an idle machine, and
the peak resident memory comes from the kernel (ru_maxrss of the child).
`--pythonpath DIR` runs an older checkout's `pipeline` package instead (e.g. a `git archive`
of the commit before the change), to measure before and after on the same sweep;
`--before DIR` runs that checkout and this one side by side, alternating (before, after,
before, ...), so both see the same load. This checkout's report keeps what it read in a
cache (readback/report_cache.py): "after, first" runs with an empty cache dir, "after,
again" a second report on the same one (an unchanged sweep reported again). CPU time
counts the data server too (a child the report waits for); peak memory is the largest
single process's.
Run:  .venv/bin/python benchmarks/report_speed.py [--sweep DIR] [--repeat 3]
          [--pythonpath DIR | --before DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TBPIPE = str(Path(sys.executable).with_name("tbpipe"))


def make_sweep(where: Path) -> Path:
    sweep = where / "sweep100"
    subprocess.run(
        [TBPIPE, "-m", "data.noise_std=range(0,100)", "trainer.steps=100",
         "trainer.progress=false", f"hydra.sweep.dir={sweep}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return sweep


def one_report(sweep: Path, env: dict) -> tuple[float, float, float]:
    """(wall s, CPU s, peak MB) of `python -m pipeline report SWEEP` in a new process."""
    script = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "subprocess.run([sys.executable, '-m', 'pipeline', 'report', sys.argv[1]],"
        " check=True, stdout=subprocess.DEVNULL)\n"
        "wall = time.perf_counter() - t\n"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(wall, u.ru_utime + u.ru_stime, u.ru_maxrss / 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(sweep.resolve())], env=env, capture_output=True,
        text=True, check=True, cwd=tempfile.gettempdir(),  # not a checkout's pipeline/
    ).stdout  # fmt: skip
    wall, cpu, peak = map(float, out.split())
    return wall, cpu, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", type=Path, help="a sweep dir (default: make one)")
    parser.add_argument("--repeat", type=int, default=3)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--pythonpath", help="run this checkout's pipeline package instead")
    which.add_argument("--before", help="run this checkout's pipeline package, then this one")
    args = parser.parse_args()
    # label -> the environment its reports run in
    checkouts = {"after, first": {}, "after, again": {}}
    if args.pythonpath:
        checkouts = {"": {"PYTHONPATH": args.pythonpath}}
    elif args.before:
        checkouts = {"before": {"PYTHONPATH": args.before}, **checkouts}
    with tempfile.TemporaryDirectory() as tmp:
        sweep = args.sweep or make_sweep(Path(tmp))
        print(time.strftime("%H:%M UTC", time.gmtime()), f"load {os.getloadavg()}")
        runs = {label: [] for label in checkouts}
        for repeat in range(args.repeat):
            cache = {"TBPIPE_CACHE_DIR": str(Path(tmp) / f"cache{repeat}")}  # empty at first
            for label, env in checkouts.items():
                runs[label].append(one_report(sweep, {**os.environ, **cache, **env}))
        for label, measured in runs.items():
            walls, cpus, peaks = zip(*measured, strict=True)
            print(
                f"tbpipe report {sweep.name}{f' ({label})' if label else ''}"
                f" ({args.repeat} runs, medians):"
                f" wall {statistics.median(walls):.2f} s, CPU {statistics.median(cpus):.2f} s,"
                f" peak memory {statistics.median(peaks):.0f} MB"
                f" (walls {', '.join(f'{w:.2f}' for w in walls)})"
            )
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
