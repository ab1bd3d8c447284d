"""One 8-setting tbpipe noise sweep against 8 separate runs of the hand-written script.

    .venv/bin/python benchmarks/sweep_vs_scripts.py --repeats 3

The sweep imports TensorFlow once for all jobs (Hydra's basic launcher); the scripts pay
the import eight times. Both do the default experiment's work per setting (1,000 steps,
every summary). Sweep and scripts alternate; medians and paired ratios are printed.
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

HERE = Path(__file__).resolve().parent
NOISE = ["0.01", "0.05", "0.1", "0.2", "0.5", "1", "2", "5"]


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    tbpipe = str(Path(sys.executable).with_name("tbpipe"))
    sweeps, scripts = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            root = Path(tmp) / str(repeat)
            sweep = [tbpipe, "-m", f"data.noise_std={','.join(NOISE)}"]
            sweep += [f"trainer.steps={args.steps}", "trainer.progress=false"]
            sweeps.append(timed([*sweep, f"hydra.sweep.dir={root}/sweep"], env))
            started = time.perf_counter()
            for noise in NOISE:
                script = [sys.executable, str(HERE / "handwritten_tf2.py"), "--loop=python"]
                script += [f"--steps={args.steps}", f"--noise-std={noise}"]
                subprocess.run(
                    [*script, f"--logdir={root}/scripts/{noise}"],
                    check=True,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            scripts.append(time.perf_counter() - started)
            print(f"repeat {repeat + 1}: sweep {sweeps[-1]:.1f} s, scripts {scripts[-1]:.1f} s")
    ratio = statistics.median(b / a for a, b in zip(sweeps, scripts, strict=True))
    print(
        f"8-setting sweep {statistics.median(sweeps):.1f} s, 8 scripts "
        f"{statistics.median(scripts):.1f} s (medians); the sweep is x{ratio:.2f} faster"
    )


if __name__ == "__main__":
    main()
