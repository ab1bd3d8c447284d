"""How long the `tbpipe` tab of TensorBoard takes to show a 1,000-run sweep.

    .venv/bin/python benchmarks/board_plugin_load.py [--jobs 1000] [--cache DIR]

The sweep is a real `tbpipe -m` sweep of tiny jobs (10 noise levels x 100 seeds,
`sinks=[scalars] trainer.steps=20`), built once and kept under DIR (default: a folder in
the system's temp dir) so later runs measure only the tab. Its user cache (where the sweep's
end writes the tab's digest, `TBPIPE_CACHE_DIR`) is DIR/user-cache; a sweep built before
the digest existed gets it the way a sweep's end writes it (`digest.remember`, timed).

What a user waits for, click on the tab -> data shown, measured three ways:
- cold: in a fresh process that has already imported what a running TensorBoard has
  (untimed), the plugin is made (its read-ahead off) and asked for what the page fetches
  when the tab is clicked (index.js, the table, every setting's curves) through its own
  routes; wall and CPU seconds from making the plugin to the last answer. Once with the
  digest the sweep's end wrote, once without (an empty cache: a sweep made by an older
  tbpipe, or copied elsewhere), each in its own process;
- live: a real `tensorboard --logdir SWEEP` on 127.0.0.1 (plugin read-ahead on, as users
  run it), the same requests over HTTP as soon as TensorBoard answers, then once more.
The browser's drawing of the page is not included. CPU seconds say what the wall time
would be on an idle core: give the load average (printed) beside any wall figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
NOISE = "0.01,0.02,0.05,0.1,0.2,0.3,0.5,1,2,5"  # 10 settings
#: what the page fetches when the tab is clicked, in its order
PAGE = ("index.js", "sweep", "curves")


def build_sweep(jobs: int, cache: Path, env: dict[str, str]) -> Path:
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
    subprocess.run(command, check=True, cwd=cache, stdout=subprocess.DEVNULL, env=env)
    return sweep


#: writes the digest as a sweep's end does; prints its wall and CPU seconds
REMEMBER = """
import json, sys, time
wall, cpu = time.perf_counter(), time.process_time()
from pipeline.board_plugin.digest import remember
remember(sys.argv[1])
print(json.dumps([time.perf_counter() - wall, time.process_time() - cpu]))
"""


def ensure_digest(sweep: Path, env: dict[str, str]) -> tuple[float, float] | None:
    """Write the sweep's digest if the cache has none: (wall, CPU) seconds it took."""
    from pipeline.readback.report_cache import cache_path

    os.environ["TBPIPE_CACHE_DIR"] = env["TBPIPE_CACHE_DIR"]
    if cache_path(sweep, kind="board").exists():
        return None
    return _seconds([sys.executable, "-c", REMEMBER, str(sweep)], env)


#: the tab's first reading in a fresh process: what TensorBoard has imported when it is up
#: (untimed), then the plugin made and the page's requests answered through its routes
COLD = """
import json, sys, time
import tensorboard.default, tensorboard.program  # a running TensorBoard has these
from tensorboard.plugins import base_plugin
from werkzeug.test import Client
wall, cpu = time.perf_counter(), time.process_time()
from pipeline.board_plugin.plugin import TbpipePlugin
TbpipePlugin.read_ahead = False
plugin = TbpipePlugin(base_plugin.TBContext(logdir=sys.argv[1]))
apps = plugin.get_plugin_apps()
seconds = {}
for name in sys.argv[2:]:
    answer = Client(apps[f"/{name}"]).get(f"/{name}")
    assert answer.status_code == 200, (name, answer.status_code)
    seconds[name] = [time.perf_counter() - wall, time.process_time() - cpu]
print(json.dumps(seconds))
"""


def cold(sweep: Path, env: dict[str, str]) -> dict[str, list[float]]:
    """Page request -> [wall, CPU] seconds from making the plugin to its answer."""
    return _seconds([sys.executable, "-c", COLD, str(sweep), *PAGE], env)


def _seconds(command: list[str], env: dict[str, str]):
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"{command[:3]} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, timeout: float = 120) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def live(sweep: Path, env: dict[str, str]) -> dict[str, float]:
    """Seconds a real TensorBoard takes to serve, then the click's requests as soon as it
    answers, then once more."""
    port = free_port()
    started = time.perf_counter()
    board = subprocess.Popen(
        [str(BIN / "tensorboard"), "--logdir", str(sweep), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1200):
            try:
                listing = json.loads(get(f"{url}/data/plugins_listing", 5))
                break
            except OSError:
                time.sleep(0.1)
        figures = {"serving": time.perf_counter() - started}
        assert "tbpipe" in listing, sorted(listing)
        for attempt in ("first", "again"):
            asked = time.perf_counter()
            get(f"{url}/data/plugin_entry.html?name=tbpipe")
            for name in PAGE:
                body = get(f"{url}/data/plugin/tbpipe/{name}")
            figures[attempt] = time.perf_counter() - asked
        figures["settings"] = len(json.loads(body)["curves"])
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
    env = {**os.environ, "TBPIPE_CACHE_DIR": str(args.cache / "user-cache")}
    sweep = build_sweep(args.jobs, args.cache, env)
    written = ensure_digest(sweep, env)
    load = [os.getloadavg()]
    with_digest = cold(sweep, env)
    empty = Path(tempfile.mkdtemp(prefix="tbpipe-no-digest-"))
    try:
        without = cold(sweep, {**env, "TBPIPE_CACHE_DIR": str(empty)})
    finally:
        shutil.rmtree(empty)
    shown = live(sweep, env)
    load.append(os.getloadavg())

    def page(figures: dict[str, list[float]]) -> str:
        wall, cpu = figures["curves"]
        return f"{wall:.2f} s wall, {cpu:.2f} s CPU (table after {figures['sweep'][0]:.2f} s)"

    if written is not None:
        print(f"digest written as a sweep's end writes it: {written[0]:.1f} s wall, "
              f"{written[1]:.1f} s CPU")  # fmt: skip
    print(
        f"{args.jobs} runs in {shown['settings']} settings; cold, the tab's data: with the "
        f"sweep's digest {page(with_digest)}; without it {page(without)}; live TensorBoard: "
        f"served after {shown['serving']:.1f} s, the click's requests {shown['first']:.2f} s, "
        f"again {shown['again']:.2f} s; load average "
        + " -> ".join(f"{a:.2f} {b:.2f} {c:.2f}" for a, b, c in load)
        + f"; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


if __name__ == "__main__":
    main()
