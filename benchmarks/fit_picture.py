r"""The per-job cost of the fit picture (plots/fit) in a sweep, matplotlib alone.

    .venv/bin/python benchmarks/fit_picture.py --noise 0.01,0.1,1,2 --seeds 25

Draws, in this process, the fit picture of every job of a noise x seed sweep as the image
sink draws a job's last one under either launcher (pipeline/sinks/images.py): the job's
points put into the last job's figure (`FitPlot.drawn` with its `spare`), its background
drawn, then the fit, the titles and the legend, encoded as a palette PNG. Timed after two
warm-up pictures (matplotlib's import and first drawing are paid once a process). No
TensorFlow: the fit line is the truth's slope plus a little, as a converged run's.
Prints the wall and CPU milliseconds a picture and the load average before and after,
since the machine is shared (docs/PERFORMANCE.md gives figures with their load).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time

import numpy as np

from pipeline.data import LinearData, data_extent
from pipeline.sinks.fit_plot import FitPlot


def picture(noise: float, seed: int, spare: FitPlot | None) -> tuple[FitPlot, bytes]:
    """One job's last fit picture, drawn as the image sink draws it; the plot, for the next."""
    data = LinearData(noise_std=noise, seed=seed).generate()
    plot = FitPlot.drawn(data, f"noise_std={noise},seed={seed}", spare)
    lo, hi = data_extent(data)
    line_x = np.linspace(lo, hi, 101, dtype=np.float32)[:, None]
    k = data.k_true + 0.01
    return plot, plot.png(line_x, k * line_x, step=1000, k=k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", default="0.01,0.1,1,2", help="the noise levels swept")
    parser.add_argument("--seeds", type=int, default=25, help="seeds per noise level")
    args = parser.parse_args()
    jobs = [(float(noise), seed) for noise in args.noise.split(",") for seed in range(args.seeds)]
    spare, _ = picture(0.5, 1000, None)
    spare, _ = picture(0.5, 1001, spare)
    digest = hashlib.sha256()
    before = os.getloadavg()[0]
    started, cpu = time.perf_counter(), time.process_time()
    for noise, seed in jobs:
        spare, png = picture(noise, seed, spare)
        digest.update(png)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"fit picture of {len(jobs)} jobs: {seconds / len(jobs) * 1000:.1f} ms wall, "
        f"{cpu / len(jobs) * 1000:.1f} ms CPU a picture, {len(png):,} bytes the last "
        f"(sha256 of all {digest.hexdigest()[:12]}; load {before:.1f}, {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
