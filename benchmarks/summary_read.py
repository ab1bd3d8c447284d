"""What a sweep's summary reads when the sweep ends, timed on an existing sweep dir.

    .venv/bin/python benchmarks/summary_read.py --sweep DIR [--before DIR] [--repeat 3] [--jobs N]

The SweepSummary callback (pipeline/sweeps/summary.py) runs in the launching process after
the last job: it reads every job's row (`readback.jobs.read_sweep`: .hydra/ and
metrics.json) and, for settings run with several seeds, every completed job's scalar
series, one job at a time (`sweeps.replicates.setting_statistics`; older checkouts:
`job_series` of every job, then `mean_and_band`). These grow with
the number of jobs; writing the mean runs and summary.png does not. Each repetition runs in
a fresh process (TensorFlow loaded first, as in a sweep's process); `--before DIR` runs an
older checkout's `pipeline` package (e.g. `git archive <commit> pipeline | tar -x -C DIR`)
alternately with this one, on the same sweep. Nothing is written to the sweep dir.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MEASURE = """
import json, sys, time
from pathlib import Path
from pipeline.tensorflow_quiet import import_tensorflow
import_tensorflow()
from pipeline.readback.jobs import read_sweep
sweep = Path(sys.argv[1])
started = time.perf_counter()
rows = read_sweep(sweep)
read = time.perf_counter() - started
rows = rows[: int(sys.argv[2])] if int(sys.argv[2]) else rows  # --jobs: the first N only
completed = [sweep / row["dir"] for row in rows if row.get("status") == "completed"]
started = time.perf_counter()
try:  # streamed: one job at a time (the reading and the sums together)
    from pipeline.sweeps.replicates import setting_statistics
    setting_statistics(completed).mean_and_band()
    scalars, band, series = time.perf_counter() - started, 0.0, completed
except ImportError:  # an older checkout: every job's series held, then averaged
    from pipeline.sweeps.replicates import job_series, mean_and_band
    series = [job_series(job) for job in completed]
    scalars = time.perf_counter() - started
    started = time.perf_counter()
    mean_and_band(series)
    band = time.perf_counter() - started
print(json.dumps({"jobs": len(rows), "series_of": len(series), "read_sweep_s": read,
                  "job_series_s": scalars, "mean_and_band_s": band}))
"""


def measure(sweep: Path, pythonpath: str | None, jobs: int) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    command = [sys.executable, "-c", MEASURE, str(sweep), str(jobs)]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True,
                         cwd=pythonpath or ROOT).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", type=Path, required=True)
    parser.add_argument("--before", help="an older checkout's root (holding pipeline/)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=0, help="job_series of the first N jobs only")
    args = parser.parse_args()
    trees = {"now": str(ROOT)} | ({"before": args.before} if args.before else {})
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    for _ in range(args.repeat):  # alternate, so a change in the machine's load hits both
        for name, tree in trees.items():
            runs[name].append(measure(args.sweep.resolve(), tree, args.jobs))
    report = {}
    for name, done in runs.items():
        report[name] = {"jobs": done[0]["jobs"], "series_of": done[0]["series_of"]} | {
            key: round(statistics.median(run[key] for run in done), 3)
            for key in ("read_sweep_s", "job_series_s", "mean_and_band_s")
        }
    report["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
