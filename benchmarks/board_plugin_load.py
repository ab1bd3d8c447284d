"""How long the `tbpipe` TensorBoard plugin takes to open a 1,000-run sweep.

    .venv/bin/python benchmarks/board_plugin_load.py [--jobs 1000] [--cache DIR]

The sweep is a real `tbpipe -m` sweep of tiny jobs (10 noise levels x 100 seeds,
`sinks=[scalars] trainer.steps=20`), built once and kept under DIR (default: a folder in
the system's temp dir) so later runs measure only the plugin. A real `tensorboard
--logdir SWEEP` is started on 127.0.0.1; the figure is the wall time of the requests the
plugin's page makes when it opens (the settings table, then every setting's curves),
asked as soon as TensorBoard answers (the plugin starts reading when TensorBoard starts),
then once more.
Run it on a quiet machine (`uptime`): the figures are wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
NOISE = "0.01,0.02,0.05,0.1,0.2,0.3,0.5,1,2,5"  # 10 settings


def build_sweep(jobs: int, cache: Path) -> Path:
    """The cached sweep of `jobs` jobs (10 noise levels x jobs/10 seeds), built if missing."""
    sweep = cache / f"sweep-{jobs}"
    if (sweep / "summary.csv").exists():
        return sweep
    cache.mkdir(parents=True, exist_ok=True)
    command = [
        str(BIN / "tbpipe"), "-m", f"data.noise_std={NOISE}", f"seed=range({jobs // 10})",
        "sinks=[scalars]", "trainer.steps=20", "trainer.progress=false",
        f"hydra.sweep.dir={sweep}",
    ]  # fmt: skip
    print(f"building {sweep} ...", file=sys.stderr, flush=True)
    subprocess.run(command, check=True, cwd=cache, stdout=subprocess.DEVNULL)
    return sweep


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, timeout: float = 120) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def measure(sweep: Path) -> dict[str, float]:
    """Seconds the page's requests take on a fresh TensorBoard (the table, then every
    setting's curves), asked as soon as TensorBoard answers, then once more."""
    port = free_port()
    started = time.perf_counter()
    board = subprocess.Popen(
        [str(BIN / "tensorboard"), "--logdir", str(sweep), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/data/plugin/tbpipe"
    try:
        for _ in range(1200):
            try:
                listing = json.loads(get(f"http://127.0.0.1:{port}/data/plugins_listing", 5))
                break
            except OSError:
                time.sleep(0.1)
        figures = {"serving": time.perf_counter() - started}
        assert "tbpipe" in listing, sorted(listing)
        for attempt in ("first", "again"):
            asked = time.perf_counter()
            table = json.loads(get(f"{base}/sweep"))
            figures[f"{attempt}_table"] = time.perf_counter() - asked
            curves = json.loads(get(f"{base}/curves"))
            figures[attempt] = time.perf_counter() - asked
        figures["runs"] = sum(s["jobs"] for s in table["settings"])
        figures["settings"] = len(curves["curves"])
        return figures
    finally:
        board.terminate()
        board.wait(timeout=30)


#: the plugin's own work for the page, cold, in a fresh process: wall and CPU seconds
IN_PROCESS = """
import json, sys, time
from pathlib import Path
wall, cpu = time.perf_counter(), time.process_time()
from pipeline.board_plugin.sweep_view import curves_view, read_jobs, sweep_view
rows = read_jobs(Path(sys.argv[1]))
table = json.dumps(sweep_view(rows))
curves = json.dumps(curves_view(rows), allow_nan=False)
print(json.dumps([time.perf_counter() - wall, time.process_time() - cpu]))
"""


def in_process(sweep: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of reading the sweep for the page, imports included: the CPU
    time says what the wall time would be on an idle core."""
    done = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, str(sweep)], capture_output=True, text=True, check=True
    )
    wall, cpu = json.loads(done.stdout.strip().splitlines()[-1])
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    default_cache = Path(tempfile.gettempdir()) / "tbpipe-board-plugin-bench"
    parser.add_argument("--cache", type=Path, default=default_cache)
    args = parser.parse_args()
    sweep = build_sweep(args.jobs, args.cache)
    wall, cpu = in_process(sweep)
    figures = measure(sweep)
    load = os.getloadavg()
    print(
        f"{figures['runs']} runs in {figures['settings']} settings; TensorBoard served after "
        f"{figures['serving']:.1f} s; then the page's data (table + curves): "
        f"{figures['first']:.2f} s (table {figures['first_table']:.2f} s), "
        f"again {figures['again']:.2f} s (table {figures['again_table']:.2f} s); "
        f"the plugin's reading alone, cold, in a fresh process: {wall:.2f} s wall, "
        f"{cpu:.2f} s CPU; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


if __name__ == "__main__":
    main()
