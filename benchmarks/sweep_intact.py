"""After a big sweep: is every job's output whole? Read back with TensorBoard's reader.

    .venv/bin/python benchmarks/sweep_intact.py SWEEP_DIR [--full-every 50]

For every job: metrics.json says completed; every event file's records are whole
(length and data CRCs, each an Event: `runs.check_event_files`); the scalars of train/
and test/ run from step 0 to trainer.steps and the final k equals metrics.json's; the job
root holds its HParams session (start and end, status). Every `--full-every`-th job (and
the last) is also read whole with TensorBoard's EventAccumulator (`runs.load_run`):
scalars, histograms, images, text, the graph. At the sweep root: summary.csv with a row a
job, summary_by_setting.csv or summary.png, the HParams experiment, the mean runs and
their margin-chart layout when seeds vary. Prints what it checked and every problem.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

from pipeline.readback.runs import (
    HISTOGRAMS,
    HPARAMS,
    IMAGES,
    SCALARS,
    TEXT,
    check_event_files,
    load_run,
)
from pipeline.readback.scalars import read_scalars
from pipeline.runinfo import COMPLETED


def check_job(job: Path, full: bool) -> list[str]:
    problems = []
    metrics = json.loads((job / "metrics.json").read_text())
    if metrics.get("status") != COMPLETED:
        problems.append(f"{job.name}: status {metrics.get('status')}")
    files = sorted(job.rglob("*tfevents*"))
    problems += [f"{path}: {why}" for path, why in check_event_files(files).items()]
    steps = list(range(int(metrics["steps"]) + 1))
    read = {writer: read_scalars(job / writer).series for writer in ("train", "test")}
    for writer, tag in (("train", "k"), ("train", "loss"), ("test", "loss")):
        series = read[writer].get(tag, [])
        if [step for step, _ in series] != steps:
            problems.append(f"{job.name}/{writer}: {tag} has {len(series)} steps")
    k = read["train"]["k"][-1][1]
    if abs(k - metrics["k"]) > 1e-6 * max(1.0, abs(k)):
        problems.append(f"{job.name}: final k {k} != metrics.json {metrics['k']}")
    root = load_run(job, {HPARAMS})
    session = set(root.tags(HPARAMS))
    if not {"_hparams_/session_start_info", "_hparams_/session_end_info"} <= session:
        problems.append(f"{job.name}: HParams session tags {sorted(session)}")
    if full:  # TensorBoard's EventAccumulator over everything the job wrote
        train, test = load_run(job / "train"), load_run(job / "test")
        for name, run, plugins in (("train", train, (SCALARS, HISTOGRAMS, IMAGES, TEXT)),
                                   ("test", test, (SCALARS, HISTOGRAMS))):  # fmt: skip
            missing = [plugin for plugin in plugins if not run.tags(plugin)]
            if missing:
                problems.append(f"{job.name}/{name}: nothing of {missing}")
        if train.graph is None:
            problems.append(f"{job.name}/train: no graph")
    return problems


def check_root(sweep: Path, jobs: int) -> list[str]:
    problems = []
    with open(sweep / "summary.csv") as stream:
        rows = list(csv.DictReader(stream))
    if len(rows) != jobs or {row["status"] for row in rows} != {COMPLETED}:
        states = sorted({row["status"] for row in rows})
        problems.append(f"summary.csv: {len(rows)} rows, states {states}")
    if not (sweep / "summary.png").stat().st_size:
        problems.append("summary.png is empty")
    root = load_run(sweep, {HPARAMS, IMAGES})
    if "_hparams_/experiment" not in root.tags(HPARAMS):
        problems.append(f"sweep root: HParams tags {root.tags(HPARAMS)}")
    if (sweep / "summary_by_setting.csv").exists():
        for mean in sorted((sweep / "mean").glob("*/*")):
            series = read_scalars(mean).series
            if not series.get("loss"):
                problems.append(f"{mean}: no mean loss")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--full-every", type=int, default=50)
    args = parser.parse_args()
    started = time.perf_counter()
    jobs = sorted(p.parent.parent for p in args.sweep.glob("*/.hydra/overrides.yaml"))
    jobs.sort(key=lambda job: int(job.name.split("_", 1)[0]))
    problems = []
    for number, job in enumerate(jobs):
        full = number % args.full_every == 0 or number == len(jobs) - 1
        problems += check_job(job, full)
    problems += check_root(args.sweep, len(jobs))
    print(json.dumps({
        "jobs": len(jobs),
        "read_whole_with_the_accumulator": len(range(0, len(jobs), args.full_every)) + 1,
        "problems": problems,
        "seconds": round(time.perf_counter() - started, 1),
    }, indent=2))  # fmt: skip
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
