"""How long `tbpipe status` takes on a 100-job sweep dir: the command, and its reading alone.

    .venv/bin/python benchmarks/status_time.py --repeats 5                  # makes the sweep
    .venv/bin/python benchmarks/status_time.py --sweep-dir DIR --repeats 5  # an existing one

Without --sweep-dir it first runs a real 100-job sweep (10 steps a job, scalars only) in a
temporary dir. Then it times `tbpipe status DIR --json` as a whole process (what a user
waits for: Python start-up and imports included) and `status_of(DIR)` in this process
(the reading of multirun.yaml and every job's metrics.json), and says whether TensorFlow
was imported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TBPIPE = str(Path(sys.executable).with_name("tbpipe"))


def make_sweep(where: Path, jobs: int) -> Path:
    sweep_dir = where / "sweep"
    subprocess.run(
        [TBPIPE, "-m", f"data.noise_std=range(0.01,{0.01 * (jobs + 0.5)},0.01)",
         "trainer.steps=10", "trainer.progress=false", "sinks=[scalars]",
         f"hydra.sweep.dir={sweep_dir}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return sweep_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep-dir", type=Path)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sweep_dir = args.sweep_dir or make_sweep(Path(tmp), args.jobs)
        walls = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            done = subprocess.run([TBPIPE, "status", str(sweep_dir), "--json"],
                                  capture_output=True, text=True)  # fmt: skip
            walls.append(time.perf_counter() - started)
        rows = json.loads(done.stdout)
        from pipeline.readback.status import status_of

        reads = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            status_of(sweep_dir)
            reads.append(time.perf_counter() - started)
    states = sorted({row["state"] for row in rows})
    print(f"{len(rows)} jobs ({', '.join(states)}), {args.repeats} repeats")
    print(f"  tbpipe status --json (whole process): median {statistics.median(walls):.3f} s, "
          f"max {max(walls):.3f} s")  # fmt: skip
    print(f"  status_of() in process: median {statistics.median(reads) * 1000:.1f} ms")
    print(f"  TensorFlow imported: {'tensorflow' in sys.modules}")


if __name__ == "__main__":
    main()
