"""`tbpipe report` through each of its readers, side by side: wall time, CPU time, peak memory.

The report reads each run's final scalars from its cache (readback/report_cache.py), else
through TensorBoard's data server (readback/data_server.py), else with the Python reader
(readback/scalars.py). Each repetition runs, alternately and each in a fresh process:
- "python reader": what the report does with the Python reader alone (TensorBoard's stub
  loaded without TensorFlow, `scalars.load_scalar_runs`, the report's own rendering);
- "first report": `python -m pipeline report LOGDIR` with an empty cache dir (the data
  server reads what it can);
- "again": the same report a second time on that cache dir (an unchanged logdir).
CPU time is user + sys of the process and its children (the data server included): on an
idle machine it is what the wall time is; peak memory is the largest single process's
(ru_maxrss). Makes the logdir first unless one is given: `--create sweep` (100 jobs of the
default experiment, 1,000 steps each) or `--create long` (one run of 100,000 steps).
Run:  .venv/bin/python benchmarks/report_speed.py [--logdir DIR | --create sweep|long] [--repeat 3]
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
ROOT = Path(__file__).resolve().parents[1]

#: the report with the Python reader alone, as `readback/report.py` renders it
PYTHON_READER = (
    "import sys\n"
    "from pathlib import Path\n"
    "from pipeline.compat import read_events_without_tensorflow\n"
    "read_events_without_tensorflow()\n"
    "from pipeline.readback.report import render, scalar_rows\n"
    "from pipeline.readback.scalars import load_scalar_runs\n"
    "logdir = Path(sys.argv[1])\n"
    "print(render(logdir, scalar_rows(load_scalar_runs(logdir, ends_only=True)), None, 'table'))\n"
)


def make_logdir(where: Path, kind: str) -> Path:
    """`sweep`: 100 default jobs (1,000 steps); `long`: one default run of 100,000 steps."""
    settings = ["trainer.progress=false"]
    if kind == "sweep":
        logdir = where / "sweep100"
        args = ["-m", "data.noise_std=range(0,100)", *settings, f"hydra.sweep.dir={logdir}"]
    else:
        logdir = where / "long100k"
        args = ["trainer.steps=100000", *settings, f"hydra.run.dir={logdir}"]
    subprocess.run([TBPIPE, *args], check=True, capture_output=True)
    return logdir


def measured(command: list[str], env: dict) -> tuple[float, float, float]:
    """(wall s, CPU s, peak MB) of `command` in a new process, its children included."""
    script = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "wall = time.perf_counter() - t\n"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(wall, u.ru_utime + u.ru_stime, u.ru_maxrss / 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, *command], env=env, capture_output=True, text=True,
        check=True, cwd=tempfile.gettempdir(),
    ).stdout  # fmt: skip
    wall, cpu, peak = map(float, out.split())
    return wall, cpu, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    given = parser.add_mutually_exclusive_group()
    given.add_argument("--logdir", type=Path, help="a logdir to report (default: make one)")
    given.add_argument("--create", choices=["sweep", "long"], default="sweep")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        logdir = (args.logdir or make_logdir(Path(tmp), args.create)).resolve()
        report = [sys.executable, "-m", "pipeline", "report", str(logdir)]
        ways = {
            "python reader": [sys.executable, "-c", PYTHON_READER, str(logdir)],
            "first report (data server)": report,
            "again (cache)": report,
        }
        print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), logdir)
        loads, runs = [os.getloadavg()[0]], {way: [] for way in ways}
        for repeat in range(args.repeat):
            cache = {"TBPIPE_CACHE_DIR": str(Path(tmp) / f"cache{repeat}")}  # empty at first
            for way, command in ways.items():
                runs[way].append(measured(command, {**env, **cache}))
            loads.append(os.getloadavg()[0])
        for way, results in runs.items():
            walls, cpus, peaks = zip(*results, strict=True)
            print(
                f"{way} ({args.repeat} runs, medians): CPU {statistics.median(cpus):.2f} s,"
                f" wall {statistics.median(walls):.2f} s, peak memory"
                f" {statistics.median(peaks):.0f} MB (walls {', '.join(f'{w:.2f}' for w in walls)})"
            )
        shown = ", ".join(f"{load:.1f}" for load in loads)
        print(f"load average (1 min) before and after each round: {shown}, {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
