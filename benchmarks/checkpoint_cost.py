"""What checkpoints cost a run: `trainer.checkpoint_every` at its default against none.

    .venv/bin/python benchmarks/checkpoint_cost.py --repeats 5              # the default run
    .venv/bin/python benchmarks/checkpoint_cost.py --steps 100000 --repeats 3

Each repeat runs `tbpipe` as a whole process twice, interleaved (checkpoints on, then
off), so a noisy machine hurts both alike. Reported: the median wall time of each, the
median time spent inside checkpoint saves (metrics.json `checkpoint_seconds`, measured
around `CheckpointManager.save`; the writers' flush before it is work they do anyway every
`writer.max_queue` events) and that time as a share of the
run's wall time, the figure that does not drown in the machine's noise.
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


def one_run(steps: int, every: str, where: Path) -> tuple[float, dict]:
    run_dir = where / f"run-{every}-{time.monotonic_ns()}"
    started = time.perf_counter()
    subprocess.run(
        [TBPIPE, f"trainer.steps={steps}", f"trainer.checkpoint_every={every}",
         "trainer.progress=false", f"hydra.run.dir={run_dir}"],
        check=True, capture_output=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    return wall, json.loads((run_dir / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--every", default="500", help="checkpoint_every to measure")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    walls: dict[str, list[float]] = {args.every: [], "null": []}
    saving, shares, rates = [], [], {args.every: [], "null": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for every in (args.every, "null"):
                wall, metrics = one_run(args.steps, every, Path(tmp))
                walls[every].append(wall)
                rates[every].append(args.steps / metrics["train_seconds"])
                if every != "null":
                    saving.append(metrics["checkpoint_seconds"])
                    shares.append(metrics["checkpoint_seconds"] / wall)
    saves = max(0, (args.steps - 1) // int(args.every))
    print(f"steps {args.steps}, checkpoint_every {args.every} ({saves} saves a run), "
          f"{args.repeats} repeats")  # fmt: skip
    for every, values in walls.items():
        print(f"  checkpoint_every={every:>6}: wall median {statistics.median(values):.2f} s, "
              f"training {statistics.median(rates[every]):,.0f} steps/s")  # fmt: skip
    print(f"  time in checkpoint saves: median {statistics.median(saving) * 1000:.1f} ms "
          f"= {statistics.median(shares) * 100:.2f} % of the run's wall time "
          f"(max {max(shares) * 100:.2f} %)")  # fmt: skip


if __name__ == "__main__":
    main()
