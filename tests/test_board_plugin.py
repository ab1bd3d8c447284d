"""The `tbpipe` tab in the user's own TensorBoard, read as a browser renders it.

A real 3 noise x 3 seed sweep in which one noise level diverges (its learning rate follows
the noise, `optimizer.learning_rate=${data.noise_std}`: 30 is far past what plain gradient
descent survives) is served by a real `tensorboard --logdir` on 127.0.0.1. TensorBoard
must list the plugin; headless Chromium renders the plugin's page (`--dump-dom`), and the
page must name each setting with its n and means (as the jobs' metrics.json say), show a
legend entry per setting, and list every diverged job with its reason.

Without Chromium these tests skip, saying so; CI (.ci/run) installs it and sets
TBPIPE_BROWSER_REQUIRED, so there a missing browser fails them instead.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from pipeline.board_plugin import sweep_view
from pipeline.board_plugin.digest import SweepDigest, remember
from pipeline.readback.report_cache import cache_path
from pipeline.readback.scalars import read_scalars
from tests.conftest import run_tbpipe

pytestmark = pytest.mark.slow

NOISE = ("0.1", "0.5", "30")  # 30: learning rate 30 diverges within ~15 steps, every seed
SEEDS = ("0", "1", "2")
TENSORBOARD = str(Path(sys.executable).with_name("tensorboard"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = bool(os.environ.get("TBPIPE_BROWSER_REQUIRED"))


@pytest.fixture(scope="module")
def browser() -> str:
    if CHROMIUM is None:
        if REQUIRED:
            pytest.fail("TBPIPE_BROWSER_REQUIRED is set but no chromium is on PATH")
        pytest.skip("no chromium on PATH: `apt-get install chromium` (CI installs it)")
    return CHROMIUM


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("board-plugin")
    run_tbpipe(
        "-m", f"data.noise_std={','.join(NOISE)}", f"seed={','.join(SEEDS)}",
        "optimizer.learning_rate=${data.noise_std}", "trainer.steps=30",
        "trainer.progress=false", f"hydra.sweep.dir={work / 'sweep'}",
        cwd=work, timeout=900,
    )  # fmt: skip
    return work / "sweep"


@pytest.fixture(scope="module")
def board(sweep):
    """A real TensorBoard on a free loopback port; its stderr must hold no traceback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [TENSORBOARD, "--logdir", str(sweep), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log, stderr=log,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                get(f"{url}/data/plugins_listing")
                break
            except OSError:
                assert server.poll() is None, "tensorboard exited"
                time.sleep(0.5)
        yield url
        server.terminate()
        server.wait(timeout=60)
        log.seek(0)
        said = log.read().decode(errors="replace")
    assert "Traceback" not in said, said


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read()


class Element:
    def __init__(self, tag: str, attrs: dict[str, str]):
        self.tag, self.attrs, self.children, self.parts = tag, attrs, [], []

    @property
    def text(self) -> str:
        return "".join(p if isinstance(p, str) else p.text for p in self.parts)

    def find_all(self, tag: str, **attrs: str) -> list[Element]:
        found = []
        for child in self.children:
            classes = child.attrs.get("class", "").split()
            wanted = all(
                (value in classes) if key == "class_" else child.attrs.get(key) == value
                for key, value in attrs.items()
            )
            if child.tag == tag and wanted:
                found.append(child)
            found.extend(child.find_all(tag, **attrs))
        return found


class Tree(HTMLParser):
    """The rendered DOM as a tree of Elements (enough to read tables, lists and text)."""

    VOID = {"br", "img", "input", "meta", "link", "hr", "base", "option"}

    def __init__(self, html: str):
        super().__init__()
        self.root = Element("root", {})
        self.stack = [self.root]
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        node = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        self.stack[-1].parts.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_endtag(self, tag):
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data):
        self.stack[-1].parts.append(data)


def rendered(browser: str, url: str) -> Element:
    """The page as headless Chromium leaves it once its scripts ran."""
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={profile}", "--virtual-time-budget=30000",
             "--dump-dom", url],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return Tree(result.stdout).root


def page(board: str, section: str = "settings") -> str:
    return f"{board}/data/plugin_entry.html?name=tbpipe#section={section}"


@pytest.fixture(scope="module")
def dom(browser, board) -> Callable[[str], Element]:
    """The tab's page at `section` as Chromium renders it, rendered once a section: the
    tests below only read it."""
    pages: dict[str, Element] = {}

    def section_page(section: str = "settings") -> Element:
        if section not in pages:
            pages[section] = rendered(browser, page(board, section))
        return pages[section]

    return section_page


def metrics_of(sweep: Path) -> dict[str, list[dict]]:
    """noise level -> the metrics.json of each of its jobs, read from the job dirs."""
    jobs: dict[str, list[dict]] = {noise: [] for noise in NOISE}
    for path in sorted(sweep.glob("*/metrics.json")):
        overrides = (path.parent / ".hydra" / "overrides.yaml").read_text().split()
        noise = next(o for o in overrides if o.startswith("data.noise_std=")).split("=")[1]
        jobs[noise].append({**json.loads(path.read_text()), "dir": path.parent.name})
    return jobs


def test_tensorboard_lists_the_tbpipe_plugin(board):
    listing = json.loads(get(f"{board}/data/plugins_listing"))
    assert listing["tbpipe"]["enabled"]
    # its name, with the room that keeps it whole where the INACTIVE menu covers the last tab
    assert listing["tbpipe"]["tab_name"] == "tbpipe" + "\u00a0" * 8
    assert listing["tbpipe"]["loading_mechanism"] == {
        "type": "IFRAME",
        "module_path": "/data/plugin/tbpipe/index.js",
    }


def test_each_setting_is_one_row_with_its_n_and_means(dom, sweep):
    rows = dom().find_all("tr", class_="setting-row")
    assert [row.attrs["data-label"] for row in rows] == [f"data.noise_std={n}" for n in NOISE]
    jobs = metrics_of(sweep)
    for row, noise in zip(rows, NOISE, strict=True):
        cells = {td.attrs["data-column"]: td for td in row.find_all("td")}
        completed = [m for m in jobs[noise] if m["status"] == "completed"]
        diverged = [m for m in jobs[noise] if m["status"] == "diverged"]
        assert cells["n"].text == str(len(completed))
        assert cells["diverged"].text == str(len(diverged))
        for span in row.find_all("span", class_="mean"):
            metric = span.attrs["data-metric"]
            if not completed:
                assert span.text == "–"
                continue
            mean = sum(m[metric] for m in completed) / len(completed)
            assert float(span.text) == pytest.approx(mean, rel=1e-3), (noise, metric)
    assert [len([m for m in jobs[n] if m["status"] == "completed"]) for n in NOISE] == [3, 3, 0]


def test_every_setting_has_a_legend_entry_and_a_line(dom):
    shown = dom()
    entries = [e.text for e in shown.find_all("span", class_="entry")]
    assert entries == ["data.noise_std=0.1 (n=3)", "data.noise_std=0.5 (n=3)",
                       "data.noise_std=30 (n=0)"]  # fmt: skip
    charts = {chart.attrs["data-tag"]: chart for chart in shown.find_all("div", class_="chart")}
    assert {"train/k", "train/loss", "test/loss"} <= set(charts)
    lines = [line.attrs["data-setting"] for line in charts["train/k"].find_all("polyline")]
    assert lines == ["data.noise_std=0.1", "data.noise_std=0.5"]  # the diverged: left out


def test_the_diverged_jobs_are_listed_with_their_reason(dom, sweep):
    listed = {
        item.text.split()[1]: item.find_all("span", class_="reason")[0].text
        for item in dom().find_all("li", class_="failure")
    }
    diverged = {m["dir"]: m["reason"] for m in metrics_of(sweep)["30"]}
    assert listed == diverged
    assert all("NaN or Inf" in reason for reason in listed.values())


def test_the_config_diff_names_the_swept_keys(dom):
    keys = [row.find_all("td")[0].text for row in dom("diff").find_all("table", class_="across")[0]
            .find_all("tr")[1:]]  # fmt: skip
    assert keys == ["data.noise_std", "seed"]


def test_the_distribution_guide_gives_edges_and_shares(dom):
    guide = dom("distributions")
    edges = guide.find_all("table", class_="edges")[0].find_all("tr")[1:]
    assert [row.find_all("td")[0].text for row in edges] == [
        "0%", "6.68%", "15.87%", "30.85%", "50%", "69.15%", "84.13%", "93.32%", "100%"
    ]  # fmt: skip
    shares = {
        row.find_all("td")[0].text: [td.text for td in row.find_all("td")[1:]]
        for row in guide.find_all("table", class_="shares")[0].find_all("tr")[1:]
    }
    assert shares["within mean ± 0.5 std"][1] == "38.3%"
    assert shares["within mean ± 1.5 std"][1] == "86.6%"
    assert shares["within mean ± 0.5 std"][0].endswith("%")


def test_images_are_side_by_side_by_setting(board, dom):
    rows = dom("images").find_all("div", class_="images-row")
    assert [len(row.find_all("img")) for row in rows][:2] == [3, 3]
    source = rows[0].find_all("img")[0].attrs["src"]
    assert get(f"{board}/data/plugin/tbpipe/{source.removeprefix('./')}").startswith(b"\x89PNG")


# ---- the tab's digest: kept in the user's cache, true to the jobs' files --------------------


def views(sweep: Path) -> str:
    """The tab's table and curves for `sweep`, read as the plugin reads them, as JSON."""
    kept = SweepDigest(sweep)
    return json.dumps([kept.table(), kept.curves()], allow_nan=False)


def fresh_views(sweep: Path, empty: Path, monkeypatch) -> str:
    """The same, read from the jobs' files alone (a cache holding no digest)."""
    with monkeypatch.context() as patch:
        patch.setenv("TBPIPE_CACHE_DIR", str(empty))
        return views(sweep)


def test_the_sweep_leaves_a_digest_the_tab_reads_without_event_files(sweep, tmp_path, monkeypatch):
    assert cache_path(sweep, kind="board").is_file()  # written as the sweep ended
    afresh = fresh_views(sweep, tmp_path, monkeypatch)

    def no_event_file(path):
        raise AssertionError(f"{path} read although the digest holds its curves")

    monkeypatch.setattr(sweep_view, "read_scalars", no_event_file)
    assert views(sweep) == afresh
    table = json.loads(afresh)[0]
    assert [(s["label"], s["n"], s["diverged"]) for s in table["settings"]] == [
        ("data.noise_std=0.1", 3, 0), ("data.noise_std=0.5", 3, 0), ("data.noise_std=30", 0, 3)
    ]  # fmt: skip


def test_a_job_removed_or_rewritten_is_read_again(sweep, tmp_path, monkeypatch):
    """A user deletes a job and replaces another's train events: the tab sees both."""
    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy)
    remember(copy)
    before = json.loads(views(copy))
    jobs = {noise: [j["dir"] for j in metrics_of(copy)[noise]] for noise in NOISE}
    shutil.rmtree(copy / jobs["0.1"][0])
    for event_file in (copy / jobs["0.5"][0] / "train").iterdir():
        event_file.unlink()
    for event_file in (copy / jobs["0.1"][1] / "train").iterdir():
        shutil.copy(event_file, copy / jobs["0.5"][0] / "train")
    after = views(copy)
    assert after == fresh_views(copy, tmp_path / "empty", monkeypatch)
    table, curves = json.loads(after)
    assert [s["n"] for s in table["settings"]] == [2, 3, 0]
    k_before = before[1]["curves"]["data.noise_std=0.5"]["train/k"]["mean"]
    assert curves["curves"]["data.noise_std=0.5"]["train/k"]["mean"] != k_before


def test_a_digest_edited_by_hand_is_not_used(sweep, tmp_path, monkeypatch):
    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy)
    remember(copy)
    digest = cache_path(copy, kind="board")
    text = digest.read_text()
    assert '"n": 3' in text
    digest.write_text(text.replace('"n": 3', '"n": 4'))
    assert views(copy) == fresh_views(copy, tmp_path / "empty", monkeypatch)
    assert '"n": 4' not in digest.read_text()  # written anew from the jobs' files


def test_the_curves_are_the_mean_and_bands_of_every_completed_run(sweep):
    """Summed one run at a time, they are what numpy gives over all the runs held at once."""
    rows = sweep_view.read_jobs(sweep)
    for setting, done in sweep_view.completed_by_setting(rows).items():
        shown = sweep_view.curves([row["path"] for row in done])
        for tag, drawn in shown.items():
            writer, name = tag.split("/", 1)
            held = [
                dict(read_scalars(row["path"] / writer).series[name]) for row in done
            ]  # every run has every step here: no run diverged in a completed setting
            values = np.array([[run[step] for step in drawn["step"]] for run in held])
            std = values.std(axis=0, ddof=1)
            assert drawn["n"] == [len(held)] * len(drawn["step"])
            assert drawn["mean"] == pytest.approx(values.mean(axis=0).tolist(), rel=1e-9)
            assert drawn["std_high"] == pytest.approx((values.mean(axis=0) + std).tolist())
            assert drawn["min"] == values.min(axis=0).tolist()
            assert drawn["max"] == values.max(axis=0).tolist(), (setting, tag)
