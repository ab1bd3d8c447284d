r"""Wall time of an 8-job noise sweep under Hydra's basic launcher vs the parallel ones.

    .venv/bin/python benchmarks/sweep_launchers.py --reps 3 --case trainer.steps=1000 \
        --case "model=mlp trainer.steps=20000" \
        --json docs/img/sweep_launchers.json --png docs/img/sweep_launchers.png
    .venv/bin/python benchmarks/sweep_launchers.py --reps 2 \
        --launchers basic,joblib,submitit_local,slurm,ray \
        --json docs/img/sweep_engines.json --png docs/img/sweep_engines.png

(`slurm` needs a running Slurm: `make slurm`, as root; `ray` needs tbpipe[ray].) Each
launcher gets the settings that suit this machine's cores (LAUNCHER_SETTINGS).

Each repetition runs the real console script (`tbpipe -m ...`) in a fresh temporary
directory, launchers alternating so a busy moment on the machine hits both; the median
per launcher and the speed-up (basic / joblib) are printed as a Markdown table for
docs/PERFORMANCE.md. The wall time includes what a user waits for: Python and TensorFlow
start-up in every process, training, and the sweep summary at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TBPIPE = str(Path(sys.executable).with_name("tbpipe"))
NOISE = "0.01,0.05,0.1,0.2,0.5,1,2,5"  # 8 jobs


#: what each launcher needs to use this machine's cores, jobs sharing them fairly
LAUNCHER_SETTINGS = {
    # one core per Slurm job (the preset asks 2): as many jobs at once as cores
    "slurm": ["hydra.launcher.cpus_per_task=1"],
    # a local Ray cluster of this machine's cores
    "ray": [f"+hydra.launcher.ray.init.num_cpus={os.cpu_count()}"],
}


def sweep_command(launcher: str, case: str, sweep_dir: Path) -> list[str]:
    """The 8-job sweep: the noise_sweep experiment's sinks, one job per noise level;
    `case` adds overrides to every job (e.g. `model=mlp trainer.steps=20000`)."""
    return [
        TBPIPE,
        "-m",
        f"data.noise_std={NOISE}",
        "sinks=[scalars,images,hparams]",  # what conf/experiment/noise_sweep.yaml writes
        *case.split(),
        "trainer.progress=false",
        f"hydra/launcher={launcher}",
        *LAUNCHER_SETTINGS.get(launcher, []),
        f"hydra.sweep.dir={sweep_dir}",
    ]


def time_sweep(launcher: str, case: str) -> float:
    """Seconds from starting `tbpipe -m` to its exit (all 8 jobs and the summary)."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{launcher}-") as workdir:
        command = sweep_command(launcher, case, Path(workdir) / "sweep")
        start = time.perf_counter()
        subprocess.run(command, cwd=workdir, check=True, capture_output=True)
        return time.perf_counter() - start


def markdown(times: dict[str, list[float]], case: str) -> str:
    """One table per case: median, every repetition, speed-up (basic / launcher)."""
    basic = statistics.median(times["basic"])
    lines = [
        f"8-job noise sweep, `{case}`, {os.cpu_count()} CPUs, "
        f"{len(times['basic'])} repetitions each",
        "",
        "| launcher | median wall time (s) | all runs (s) | speed-up vs basic |",
        "|---|---|---|---|",
    ]
    for launcher, seconds in times.items():
        median = statistics.median(seconds)
        runs = ", ".join(f"{s:.1f}" for s in seconds)
        lines.append(f"| {launcher} | {median:.1f} | {runs} | {basic / median:.2f}x |")
    return "\n".join(lines)


def plot(results: dict[str, dict[str, list[float]]], path: Path) -> None:
    """Median wall time per launcher (bars) and every repetition (dots), one group per
    case, with the speed-up over basic written above each group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=100)
    colors = ["#999999", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"]
    width = 0.8 / max(len(times) for times in results.values())
    for group, times in enumerate(results.values()):
        medians = {name: statistics.median(seconds) for name, seconds in times.items()}
        for i, (name, seconds) in enumerate(times.items()):
            x = group + (i - (len(times) - 1) / 2) * width
            label = name if group == 0 else None  # one legend entry per launcher
            ax.bar(x, medians[name], width * 0.9, color=colors[i % len(colors)], label=label)
            ax.plot([x] * len(seconds), seconds, "k.", alpha=0.6)
        speedups = ", ".join(
            f"{name} {medians['basic'] / m:.2f}x" for name, m in medians.items() if name != "basic"
        )
        ax.annotate(
            speedups, (group, max(max(s) for s in times.values())), ha="center", va="bottom"
        )
    ax.set_xticks(range(len(results)), [case.replace(" ", "\n") for case in results])
    ax.set_ylabel("wall time of the sweep (s)")
    ax.set_title("8-job noise sweep on 2 shared CPUs (speed-up = basic / launcher)", fontsize=9)
    ax.margins(y=0.15)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions per launcher")
    parser.add_argument(
        "--case",
        action="append",
        help="overrides for every job, one sweep per --case (default: trainer.steps=1000)",
    )
    parser.add_argument("--launchers", default="basic,joblib", help="comma-separated")
    parser.add_argument("--json", type=Path, help="write the times here (and read: --replot)")
    parser.add_argument("--replot", action="store_true", help="only draw --png from --json")
    parser.add_argument("--png", type=Path, help="write a bar chart of the medians here")
    args = parser.parse_args(argv)
    print(f"load average at the start: {os.getloadavg()}", flush=True)
    if args.replot:
        results = json.loads(args.json.read_text())
    else:
        results = {}
        for case in args.case or ["trainer.steps=1000"]:
            times: dict[str, list[float]] = {name: [] for name in args.launchers.split(",")}
            for rep in range(args.reps):
                for launcher in times:  # alternate, so a busy moment hits both
                    seconds = time_sweep(launcher, case)
                    times[launcher].append(seconds)
                    print(f"{case} rep {rep + 1}: {launcher} {seconds:.1f} s", flush=True)
            results[case] = times
            print(f"load average after {case}: {os.getloadavg()}", flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    print(f"load average when done: {os.getloadavg()}")
    for case, times in results.items():
        print(markdown(times, case), "\n")
    if args.png:
        plot(results, args.png)
        print(f"figure: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
