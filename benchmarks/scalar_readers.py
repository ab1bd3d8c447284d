"""The two Python readers of scalars side by side on the same runs: TensorBoard's
EventAccumulator (`readback.runs.load_run(path, {SCALARS})`) against tbpipe's one-pass
reader (`readback.scalars.read_scalars`), which the seeds' mean runs and `tbpipe report`
use. CPU time of this process (`time.process_time`), alternating, best of `--repeat`;
the series read are compared, so both give the same numbers. Then, over every event file
of LOGDIR, the two ways to tell whether a file ends on a whole record (what the report asks
before it takes the data server's answer): a search back from the end
(`runinfo.ends_on_a_whole_record`) against a walk over every record (`runinfo.Records`).
Run:  .venv/bin/python benchmarks/scalar_readers.py LOGDIR [--runs 30] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", type=Path)
    parser.add_argument("--runs", type=int, default=30, help="read the first N runs")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from pipeline.compat import read_events_without_tensorflow

    read_events_without_tensorflow()
    from pipeline.readback.runs import SCALARS, find_runs, load_run
    from pipeline.readback.scalars import read_scalars
    from pipeline.runinfo import ends_on_a_whole_record

    found = [path for _, path in find_runs(args.logdir)][: args.runs]
    events = sum(f.stat().st_size for p in found for f in p.glob("*tfevents*"))
    readers = {
        "EventAccumulator (runs.load_run)": lambda p: load_run(p, {SCALARS}).series.get(SCALARS),
        "one pass (scalars.read_scalars)": lambda p: (
            read_scalars(p).as_run_data().series.get(SCALARS)
        ),
    }
    best = dict.fromkeys(readers, float("inf"))
    results = {}
    load = os.getloadavg()[0]
    for _ in range(args.repeat):
        for name, read in readers.items():
            start = time.process_time()
            results[name] = [read(path) for path in found]
            best[name] = min(best[name], time.process_time() - start)
    first, second = results.values()
    same = all(
        {t: [(s, float(v)) for s, v in pts] for t, pts in (a or {}).items()}
        == {t: [(s, float(v)) for s, v in pts] for t, pts in (b or {}).items()}
        for a, b in zip(first, second, strict=True)
    )
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    size = f"{events / 2**20:.1f} MB of event files"
    print(f"{when}: {len(found)} runs, {size}, load {load:.1f} -> {os.getloadavg()[0]:.1f}")
    for name, seconds in best.items():
        print(f"{name}: {seconds:.2f} s CPU (best of {args.repeat})")
    print("same series:", same)
    files = sorted(args.logdir.rglob("*tfevents*"))
    ends = {
        "search back from the end (runinfo.ends_on_a_whole_record)": ends_on_a_whole_record,
        "walk every record (runinfo.Records)": walked_whole,
    }
    answers = []
    for name, whole in ends.items():
        start = time.process_time()
        answers.append([whole(file) for file in files])
        print(f"{name}, {len(files)} files: {time.process_time() - start:.2f} s CPU")
    print("same answers:", answers[0] == answers[1])
    return 0 if same and answers[0] == answers[1] else 1


def walked_whole(file: Path) -> bool:
    """Whether `file` ends on a whole record, by walking all of its records' headers."""
    from pipeline.runinfo import Records

    records = Records(file.read_bytes(), checked=False)
    for _ in records:
        pass
    return records.problem is None


if __name__ == "__main__":
    sys.exit(main())
