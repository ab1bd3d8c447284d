"""How long the `tbpipe` TensorBoard plugin takes to open a 1,000-run sweep.

    .venv/bin/python benchmarks/board_plugin_load.py [--jobs 1000] [--cache DIR]

The sweep is a real `tbpipe -m` sweep of tiny jobs (10 noise levels x 100 seeds,
`sinks=[scalars] trainer.steps=20`), built once and kept under DIR (default: a folder in
the system's temp dir) so later runs measure only the plugin. A real `tensorboard
--logdir SWEEP` is started on 127.0.0.1; the figure is the wall time of the requests the
plugin's page makes when it opens (the settings table with its chart data, then the
config diff), the first time they are asked (nothing cached), then once more.
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
    """Seconds the page's requests take on a fresh TensorBoard: first and second time."""
    port = free_port()
    board = subprocess.Popen(
        [str(BIN / "tensorboard"), "--logdir", str(sweep), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                listing = json.loads(get(f"{base}/data/plugins_listing", timeout=5))
                break
            except OSError:
                time.sleep(0.1)
        assert "tbpipe" in listing, sorted(listing)
        figures = {}
        for attempt in ("first", "again"):
            started = time.perf_counter()
            sweep_view = json.loads(get(f"{base}/data/plugin/tbpipe/sweep"))
            get(f"{base}/data/plugin/tbpipe/config_diff")
            figures[attempt] = time.perf_counter() - started
        figures["runs"] = sum(s["jobs"] for s in sweep_view["settings"])
        figures["settings"] = len(sweep_view["settings"])
        return figures
    finally:
        board.terminate()
        board.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    default_cache = Path(tempfile.gettempdir()) / "tbpipe-board-plugin-bench"
    parser.add_argument("--cache", type=Path, default=default_cache)
    args = parser.parse_args()
    sweep = build_sweep(args.jobs, args.cache)
    figures = measure(sweep)
    load = os.getloadavg()
    print(
        f"{figures['runs']} runs in {figures['settings']} settings: page data "
        f"{figures['first']:.2f} s on a fresh TensorBoard, {figures['again']:.2f} s again "
        f"(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})"
    )


if __name__ == "__main__":
    main()
