"""How long a user waits to hear that an override is wrong: `tbpipe <bad override>` against a
plain TensorFlow script that imports TensorFlow first and only then looks at its arguments.

Each command runs several times in a fresh process; the median wall time and CPU time
(user + sys, what the wall time is on an idle machine) are reported. Exits 1 if a bad
override costs tbpipe a second of CPU or leaves a file behind.
Run:  .venv/bin/python benchmarks/config_error_latency.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TBPIPE = str(Path(sys.executable).with_name("tbpipe"))

BAD_OVERRIDES = [
    "model=mlpp",  # misspelled group option (Hydra composition error)
    "trainer.stepz=5",  # unknown key
    "trainer.steps=abc",  # wrong type (structured config)
    "data.noise_std=-1",  # out of range (schema check)
    "optimizer.learning_rate=nan",  # not finite
    "hydra.run.dir=/etc/hostname",  # output dir is a file
]

#: what many training scripts do: import TensorFlow at the top, check arguments afterwards
PLAIN_TF_SCRIPT = """
import sys
import tensorflow as tf  # noqa: F401
key, _, value = sys.argv[1].partition("=")
if float(value) < 0:
    sys.exit(f"{key}={value}: must be >= 0")
"""


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def median_seconds(command: list[str], repeat: int, cwd: str) -> tuple[float, float, int, str]:
    """Median wall time and CPU time (user + sys; what an idle machine's wall time would be)
    of `command` over `repeat` fresh processes, its exit code and its last stderr line."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        started, cpu = time.perf_counter(), children_cpu()
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
        walls.append(time.perf_counter() - started)
        cpus.append(children_cpu() - cpu)
    last = result.stderr.strip().splitlines()[-1]
    return statistics.median(walls), statistics.median(cpus), result.returncode, last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per command (median)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as cwd:  # nothing may be written; check that too
        rows = [
            (f"tbpipe {o}", *median_seconds([TBPIPE, o], args.repeat, cwd)) for o in BAD_OVERRIDES
        ]
        script = Path(cwd) / "plain_tf.py"
        script.write_text(PLAIN_TF_SCRIPT)
        plain = [sys.executable, str(script), "data.noise_std=-1"]
        rows.append(("plain TF script data.noise_std=-1", *median_seconds(plain, args.repeat, cwd)))
        left = [p.name for p in Path(cwd).iterdir() if p.name != "plain_tf.py"]
    width = max(len(name) for name, *_ in rows)
    print(f"{'command':<{width}}  wall s  cpu s  exit  message (medians of {args.repeat} runs)")
    for name, wall, cpu, code, message in rows:
        print(f"{name:<{width}}  {wall:6.3f}  {cpu:5.2f}  {code:4d}  {message[:80]}")
    print(f"files left in the working directory by tbpipe: {left or 'none'}")
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    # CPU time is what the wait would be on an idle machine; wall time grows with the load
    slowest = max(cpu for name, _, cpu, *_ in rows if name.startswith("tbpipe"))
    return 0 if slowest < 1.0 and not left else 1


if __name__ == "__main__":
    sys.exit(main())
