"""What a user sees on opening TensorBoard: asked of a live TensorBoard on 127.0.0.1.

One sweep over noise, learning rate and seeds, with a learning rate that diverges, run
through the console script with every default sink (the suite's shared `grid_sweep`,
conftest.py: only read here); `tbpipe board` then serves it and the tests
ask TensorBoard's own HTTP API (and, where Chromium is installed, the page it renders)
what the landing view opens on, how the runs are named, whether any run is empty, what
CUSTOM SCALARS draws of the seeds and what the HPARAMS tab compares; Ctrl-C ends it.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import TBPIPE, environment_kept

pytestmark = pytest.mark.slow  # a sweep and a server in subprocesses

NOISE, RATES, SEEDS = ("0.1", "1"), ("0.5", "1000"), ("0", "1", "2")  # 1000 diverges
#: the job folders the sweep must give: its number and what differs, nothing constant
JOBS = [
    f"{num:02d}_noise_std-{noise}_learning_rate-{rate}_seed-{seed}"
    for num, (noise, rate, seed) in enumerate(
        (n, r, s) for n in NOISE for r in RATES for s in SEEDS
    )
]
WRITERS = {f"{job}/{writer}" for job in JOBS for writer in ("train", "test")}
#: each setting's mean over its seeds, for the settings whose jobs did not diverge
MEANS = {
    f"mean/noise_std-{noise}_learning_rate-0.5/{writer}"
    for noise in NOISE
    for writer in ("train", "test")
}
#: the plugins whose data a user can see in a tab (HParams bookkeeping alone is not)
VISIBLE = ("scalars", "histograms", "images", "text")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def board(grid_sweep, tmp_path_factory):
    """The shared sweep, served by `tbpipe board`: yields (sweep dir, base URL)."""
    sweep_dir, _, _ = grid_sweep
    workdir = tmp_path_factory.mktemp("landing")
    server = subprocess.Popen(
        [TBPIPE, "board", str(sweep_dir)],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = server.stdout.readline().split()[1]
        assert url.startswith("http://127.0.0.1:"), url
        expected = 1 + 3 * len(JOBS) + len(MEANS)  # the root, per job its root, train, test
        deadline = time.monotonic() + 90
        while len(get(url, "data/runs")) < expected and time.monotonic() < deadline:
            time.sleep(0.5)  # TensorBoard loads the logdir in the background
        time.sleep(1)
        yield sweep_dir, url
        server.send_signal(signal.SIGINT)  # Ctrl-C: `tbpipe board` ends cleanly
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)


def get(url: str, path: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def natural_key(tag: str) -> list:
    """TensorBoard's tag order (its frontend's `compareTagNames`): digit runs compare as
    numbers, and `/` and digits sort before other characters."""
    return [
        (0, int(part)) if part.isdigit() else (0, -1) if part == "/" else (1, part)
        for part in re.findall(r"\d+|/|[^\d/]", tag)
    ]


def landing_groups(tags: set[str]) -> list[tuple[str, list[str]]]:
    """TIME SERIES' groups as its frontend makes them: tags in natural order, grouped by
    the part before the first `/` (a tag without one is its own group)."""
    groups: dict[str, list[str]] = {}
    for tag in sorted(tags, key=natural_key):
        groups.setdefault(tag.split("/", 1)[0], []).append(tag)
    return list(groups.items())


def test_sweep_runs_are_named_by_the_settings_that_differ(board):
    _, url = board
    runs = set(get(url, "data/runs"))
    assert runs == {".", *JOBS, *WRITERS, *MEANS}


def test_every_run_tensorboard_lists_holds_something_a_tab_shows(board):
    _, url = board
    shown = {
        run
        for plugin in VISIBLE
        for run, tags in get(url, f"data/plugin/{plugin}/tags").items()
        if tags
    }
    shown |= set(get(url, "data/plugin/graphs/info"))
    assert set(get(url, "data/runs")) <= shown, set(get(url, "data/runs")) - shown
    # the sweep root holds the summary figure, a panel a card; each job root its settings
    summary = get(url, "data/plugin/images/tags")["."]
    assert sorted(summary) == ["plots/sweep_summary/k", "plots/sweep_summary/k_spread"], summary
    texts = get(url, "data/plugin/text/tags")
    assert all("settings" in texts[job] for job in JOBS)


def test_time_series_opens_on_the_lesson(board):
    """TIME SERIES opens its first two groups: `k` (k, k/error) and `loss` (train and
    test on one chart); the histograms and images come after, in their own groups."""
    _, url = board
    listing = get(url, "data/plugin/timeseries/tags")
    scalars = listing["scalars"]["runTagInfo"]
    tags = {tag for tags in scalars.values() for tag in tags}
    tags |= {tag for tags in listing["histograms"]["runTagInfo"].values() for tag in tags}
    tags |= set(listing["images"]["tagRunSampledInfo"])
    groups = landing_groups(tags)
    assert groups[:2] == [("k", ["k", "k/error"]), ("loss", ["loss"])]
    # the seeds' spread (the mean runs' bands) last
    assert [name for name, _ in groups[2:]] == ["outputs", "plots", "residuals", "spread"]
    # one `loss` chart holds both writers of every job, and of each setting's mean
    loss_runs = {run for run, run_tags in scalars.items() if "loss" in run_tags}
    assert loss_runs == WRITERS | MEANS
    # no histogram repeats a scalar: the linear model's one weight is not histogrammed
    assert not any(tag.startswith("parameters/") for tag in tags)


@pytest.mark.skipif(CHROMIUM is None, reason="needs headless Chromium (apt-get install chromium)")
def test_the_rendered_time_series_page_opens_on_the_lesson(board):
    """The page TensorBoard renders in a browser: group headings in order, and the cards
    of the groups it opens."""
    _, url = board
    profile = tempfile.mkdtemp(prefix="tbpipe-chromium-")
    try:
        page = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--window-size=1400,1000",
             "--virtual-time-budget=15000", "--dump-dom", url + "#timeseries"],
            capture_output=True, text=True, timeout=120,
        ).stdout  # fmt: skip
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    headings = re.findall(r'class="group-title" title="([^"]*)"', page)
    assert headings[:3] == ["k", "loss", "outputs"], headings
    cards = {}
    for name, section in zip(
        headings, re.split(r'class="group-title" title="', page)[1:], strict=True
    ):
        cards[name] = re.findall(r'<tb-truncated-path[^>]*class="tag"[^>]*title="([^"]*)"', section)
    assert cards["k"] == ["k", "k/error"] and cards["loss"] == ["loss"]
    assert all(not cards[name] for name in headings[2:]), cards  # later groups start closed


def test_custom_scalars_draws_each_settings_mean_with_its_band(board):
    """The seeds summary's layout: a margin chart of k over the seeds (its mean run, and
    the mean -/+ one std as its band), as the live TensorBoard serves it."""
    _, url = board
    layout = get(url, "data/plugin/custom_scalars/layout")
    deadline = time.monotonic() + 60
    while not layout and time.monotonic() < deadline:
        time.sleep(0.5)
        layout = get(url, "data/plugin/custom_scalars/layout")
    charts = {c["title"]: c for cat in layout["category"] for c in cat["chart"]}
    k_chart = next(c for title, c in charts.items() if title.startswith("k:"))
    assert k_chart["margin"]["series"] == [
        {"value": "spread/k/mean", "lower": "spread/k/lower", "upper": "spread/k/upper"}
    ]


def test_hparams_compares_only_what_differs_k_error_first(board):
    _, url = board
    experiment = get(url, "data/plugin/hparams/experiment", {"experimentName": ""})
    names = [info["name"] for info in experiment["hparamInfos"]]
    assert names == ["data.noise_std", "optimizer.learning_rate", "seed"]
    metrics = [(m["name"]["tag"], m["name"]["group"]) for m in experiment["metricInfos"]]
    assert metrics[0] == ("k/error", "train") and ("loss", "test") in metrics


def test_each_session_records_how_its_job_ended(board):
    sweep_dir, url = board
    request = {
        "experimentName": "",
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
        "startIndex": 0,
        "sliceSize": 100,
    }
    groups = get(url, "data/plugin/hparams/session_groups", request)["sessionGroups"]
    status = {g["name"]: [s["status"] for s in g["sessions"]] for g in groups}
    ended = {job: json.loads((sweep_dir / job / "metrics.json").read_text()) for job in JOBS}
    assert [ended[job]["status"] for job in JOBS] == (["completed"] * 3 + ["diverged"] * 3) * 2
    assert status == {
        job: ["STATUS_SUCCESS" if ended[job]["status"] == "completed" else "STATUS_FAILURE"]
        for job in JOBS
    }


# -- single runs, read with TensorBoard's own data provider -------------------------------


def provider_runs(logdir: Path) -> dict[str, set[str]]:
    """Every run TensorBoard lists under `logdir`, with the plugins that hold data in it."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer as pem

    runs = pem.EventMultiplexer()
    runs.AddRunsFromDirectory(str(logdir))
    runs.Reload()
    provider = data_provider.MultiplexerDataProvider(runs, str(logdir))
    ctx = context.RequestContext()
    found = {run.run_name: set() for run in provider.list_runs(ctx, experiment_id="")}
    for plugin in VISIBLE:
        for kind in ("list_scalars", "list_tensors", "list_blob_sequences"):
            listing = getattr(provider, kind)(ctx, experiment_id="", plugin_name=plugin)
            for run, tags in listing.items():
                if tags:
                    found[run].add(plugin)
    for run in runs.Runs():
        if runs.GetAccumulator(run).Tags().get("graph"):
            found[run].add("graphs")
    return found


def test_a_single_run_lists_no_empty_run(default_run):
    runs = provider_runs(default_run)
    assert set(runs) == {".", "train", "test"}
    assert all(runs.values()), runs
    assert runs["."] == {"text"}  # the settings table beside the HParams session


def test_the_graph_lesson_has_no_empty_test_run(tmp_path):
    from pipeline import api  # the lesson's run in this process: what it writes is the point

    with environment_kept():
        api.run_experiment(
            "+experiment=example1_graph", "trainer.steps=5", run_dir=tmp_path / "run"
        )
    assert provider_runs(tmp_path / "run") == {"train": {"graphs"}}
