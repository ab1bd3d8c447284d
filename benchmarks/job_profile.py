"""Where a sweep job's time goes: each phase's median wall time and training-thread CPU.

    .venv/bin/python benchmarks/job_profile.py --jobs 40
    git worktree add /tmp/before 905c476   # tbpipe before issue 20's per-job work
    .venv/bin/python benchmarks/job_profile.py --jobs 40 --tree /tmp/before --tree .
    .venv/bin/python benchmarks/job_profile.py --jobs 40 trainer.chunk=1000   # overrides for all

Runs `tbpipe -m seed=range(N)` (default sinks, 1,000 steps, the basic launcher) in one
process per tree, with the functions below wrapped to time each call. A job's cost is the
median gap between consecutive job ends after the first ten (the first job pays the
TensorFlow import and the loop's trace); the mean gap is printed too, as it counts the
pauses (garbage collections) that fall on some jobs only. A phase's figures are medians
over its calls. The process's CPU time a job (every thread, mean) moves less with the
machine's load than wall times do: compare trees by it when the machine is busy.
"CPU" is the training thread's own (`time.thread_time`): work moved to another thread
(the fit plot's background) or into TensorFlow's threads (the loop) is not in it.
Trees run one after another, each in its own process; run on a quiet machine (`uptime`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

#: (module, attribute path, label): what is timed, where it exists in the tree
PHASES = [
    ("hydra.core.utils", "run_job", "job (Hydra's run_job)"),
    ("hydra._internal.config_loader_impl", "ConfigLoaderImpl.load_sweep_config",
     "Hydra composes a job's config"),
    ("pipeline.sweeps.job_configs", "ReusingConfigLoader.load_sweep_config",
     "tbpipe gives a job its config"),
    ("hydra.core.utils", "_save_config", "Hydra saves a .hydra/*.yaml"),
    ("hydra.core.hydra_config", "HydraConfig.set_config", "Hydra sets HydraConfig"),
    ("pipeline.app", "build", "build: seed, pieces, loop"),
    ("pipeline.app", "open_run", "open_run: metrics, run.json, writers"),
    ("pipeline.app", "train", "train (sinks' start to final record)"),
    ("pipeline.train", "CompiledLoop.__call__", "a compiled loop call (500 steps)"),
    ("pipeline.train", "CompiledLoop.record_now", "final record of the loop's sinks"),
    ("pipeline.train", "Trainer._record_in_python", "final record, eager (before)"),
    ("pipeline.sinks.images", "ImageSink.start", "image sink: start"),
    ("pipeline.sinks.images", "ImageSink.record", "image sink: the plot"),
    ("pipeline.sinks.histograms", "HistogramSink.record", "histograms, eager"),
    ("pipeline.sinks.graph", "GraphSink.start", "graph sink: start"),
    ("pipeline.sinks.text", "TextSink.start", "text sink: start"),
    ("pipeline.app", "finish", "finish: metrics.json"),
]  # fmt: skip

#: runs inside the sweep's process: wraps PHASES, runs tbpipe's main, prints JSON at exit
PROBE = r"""
import functools, importlib, importlib.util, json, os, statistics, sys, time
phases = json.loads(os.environ["JOB_PROFILE_PHASES"])
# tbpipe's configs are the package `pipeline.conf` (pyproject maps it to conf/): take the
# tree's own, not the installed checkout's
import pipeline
conf = os.path.join(os.environ["PYTHONPATH"], "conf")
spec = importlib.util.spec_from_file_location(
    "pipeline.conf", os.path.join(conf, "__init__.py"), submodule_search_locations=[conf])
pipeline.conf = sys.modules["pipeline.conf"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pipeline.conf)
calls = {}
ends = []
cpu_ends = []  # the process's CPU time (every thread) as each job ends
def wrap(owner, name, label):
    original = getattr(owner, name)
    @functools.wraps(original)
    def timed(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            done = time.perf_counter()
            calls.setdefault(label, []).append((done - wall, time.thread_time() - cpu))
            if label.startswith("job "):
                ends.append(done)
                cpu_ends.append(time.process_time())
    setattr(owner, name, timed)
for module, path, label in phases:
    try:
        owner = importlib.import_module(module)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        getattr(owner, name)
    except (ImportError, AttributeError):
        continue  # not in this tree
    wrap(owner, name, label)
import hydra.core.utils
import hydra._internal.core_plugins.basic_launcher as basic_launcher
basic_launcher.run_job = hydra.core.utils.run_job  # the launcher's own name for it
import pipeline.__main__ as main
def report(code):
    gaps = [b - a for a, b in zip(ends[10:], ends[11:])]
    cpu_gaps = [b - a for a, b in zip(cpu_ends[10:], cpu_ends[11:])]
    out = {"per_job_ms": 1000 * statistics.median(gaps),
           "mean_job_ms": 1000 * statistics.mean(gaps),
           "cpu_job_ms": 1000 * statistics.mean(cpu_gaps), "jobs": len(ends), "phases": {}}
    for module, path, label in phases:
        if label in calls:
            walls, cpus = zip(*calls[label][1:] or calls[label])  # the first job aside
            out["phases"][label] = {
                "calls_per_job": round(len(calls[label]) / max(len(ends), 1), 2),
                "wall_ms": round(1000 * statistics.median(walls), 1),
                "cpu_ms": round(1000 * statistics.median(cpus), 1),
            }
    print("JOB_PROFILE " + json.dumps(out), flush=True)
    os._exit(code)
main.exit_without_teardown = report
sys.argv = ["tbpipe", *sys.argv[1:]]
main.main()
"""


def profile(tree: Path, jobs: int, overrides: list[str] = ()) -> dict:
    """Run the sweep with tbpipe from `tree` (plus `overrides`); return the probe's figures."""
    work = Path(tempfile.mkdtemp(prefix="job-profile-"))
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "JOB_PROFILE_PHASES": json.dumps(PHASES),
    }
    command = [
        sys.executable, "-c", PROBE, "-m", f"seed=range({jobs})", "trainer.progress=false",
        f"hydra.sweep.dir={work / 'sweep'}", *overrides,
    ]  # fmt: skip
    done = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("JOB_PROFILE ")]
    if not lines:
        raise SystemExit(f"job_profile: no figures from {tree}:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("JOB_PROFILE "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--tree", type=Path, action="append", help="a tbpipe checkout (repeat)")
    parser.add_argument("overrides", nargs="*", help="for every job, e.g. trainer.chunk=1000")
    args = parser.parse_args()
    trees = args.tree or [Path(__file__).resolve().parents[1]]
    results = {str(tree): profile(tree.resolve(), args.jobs, args.overrides) for tree in trees}
    labels = [label for _, _, label in PHASES]
    header = f"{'phase (median per call)':44s}" + "".join(
        f"{Path(tree).resolve().name[:24]:>28s}" for tree in results
    )
    print(header)
    print(f"{'':44s}" + "".join(f"{'calls/job  wall ms  cpu ms':>28s}" for _ in results))
    for label in labels:
        row = f"{label:44s}"
        for result in results.values():
            p = result["phases"].get(label)
            cells = (p["calls_per_job"], p["wall_ms"], p["cpu_ms"]) if p else ("-", "", "")
            row += f"{cells[0]:>13} {cells[1]:>8} {cells[2]:>7}"
        print(row)
    print(f"{'per job (median gap between job ends)':44s}" + "".join(
        f"{r['per_job_ms']:>25.1f} ms" for r in results.values()
    ))  # fmt: skip
    print(f"{'per job (mean gap: garbage collections too)':44s}" + "".join(
        f"{r['mean_job_ms']:>25.1f} ms" for r in results.values()
    ))  # fmt: skip
    print(f"{'per job, CPU of the process (all threads)':44s}" + "".join(
        f"{r['cpu_job_ms']:>25.1f} ms" for r in results.values()
    ))  # fmt: skip
    print(json.dumps(results))


if __name__ == "__main__":
    main()
