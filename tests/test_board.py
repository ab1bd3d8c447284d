"""`tbpipe board` serves a finished sweep on loopback: TensorBoard's own HTTP API shows every
run and tag that `tbpipe report` lists, and Ctrl-C stops it with no process left behind."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from pipeline.readback import board, report
from tests.conftest import TBPIPE

pytestmark = pytest.mark.slow  # every test here runs tbpipe in a subprocess


@pytest.fixture(scope="module")
def finished_sweep(noise_sweep) -> Path:
    """The suite's shared three-job noise sweep (conftest.py; scalars, HParams and
    histograms, through the console script): only read here."""
    return noise_sweep[0]


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def test_board_serves_every_run_and_tag_the_report_lists(finished_sweep, tmp_path, capsys):
    assert report.main([str(finished_sweep), "--json", "--histograms"]) == 0
    listed = json.loads(capsys.readouterr().out)
    runs = {row["run"] for row in listed["runs"]}
    writer_runs = {run for run in runs if run.endswith(("/train", "/test"))}
    assert runs == writer_runs and len(runs) == 6  # three jobs x (train, test), nothing empty
    scalar_tags = {(row["run"], tag) for row in listed["runs"] for tag in row["scalars"]}
    histogram_tags = {(r["run"], r["tag"]) for r in listed["histograms"]}
    for run in writer_runs:  # names as TensorBoard gives them: <job dir>/<writer>
        assert run[0] in "012"
        split = run.rsplit("/", 1)[1]
        assert (run, "loss") in scalar_tags and (run, "residuals") in histogram_tags
        assert ((run, "k") in scalar_tags) == (split == "train")

    server = subprocess.Popen(
        [TBPIPE, "board", str(finished_sweep)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = server.stdout.readline()
        assert line.startswith("TensorBoard http://127.0.0.1:"), line
        url = line.split()[1]
        deadline = time.monotonic() + 60
        # the report lists runs that hold scalars; TensorBoard also lists the HParams files
        # (the sweep root ".", each job's root)
        hparams_only = {".", *(p.name for p in finished_sweep.iterdir() if p.is_dir())}
        while set(_get(url + "data/runs")) != runs | hparams_only and time.monotonic() < deadline:
            time.sleep(0.5)  # TensorBoard loads the logdir in the background
        assert set(_get(url + "data/runs")) == runs | hparams_only
        served_scalars = _get(url + "data/plugin/scalars/tags")
        served_histograms = _get(url + "data/plugin/histograms/tags")
        assert {(run, tag) for run in served_scalars for tag in served_scalars[run]} == (
            scalar_tags
        )
        assert histogram_tags <= {(r, t) for r in served_histograms for t in served_histograms[r]}

        server.send_signal(signal.SIGINT)  # Ctrl-C
        assert server.wait(timeout=30) == 0
        assert "stopped" in server.stdout.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_default_logdir_is_the_newest_run_or_sweep(tmp_path):
    assert board.newest_logdir(tmp_path) is None
    for folder in ("outputs/2026-11-27/23-59-59-000000", "multirun/2026-11-28/08-00-00-000000",
                   "outputs/2026-11-28/07-00-00-000000"):  # fmt: skip
        (tmp_path / folder).mkdir(parents=True)
    assert board.newest_logdir(tmp_path) == tmp_path / "multirun/2026-11-28/08-00-00-000000"


def test_board_bad_input_is_one_line(tmp_path, capsys, monkeypatch):
    assert board.main([str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert board.main(["--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)  # no outputs/ or multirun/ here
    assert board.main([]) == 2
    assert "no runs" in capsys.readouterr().err
