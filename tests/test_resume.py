"""A run killed mid-way and resumed reads, in TensorBoard, exactly as a run never stopped.

Each test starts the real `tbpipe` in a subprocess, waits until it has written a
checkpoint and then event records past that checkpoint (the case where a naive resume
would show steps twice), stops it with a signal, runs `tbpipe resume <run dir>` (or its
in-process twin `api.resume_run`, where the numbers alone are the point), and compares
every scalar, histogram, image and text series, read with TensorBoard's reader, with an
uninterrupted run of the same config (made in this process through `pipeline.api`, which
writes the console script's series). Each event file is also walked record by record
(TensorBoard's file loader, no de-duplication): every step of every tag once, the graph,
the text and the HParams session once.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto import event_pb2

from pipeline import api
from pipeline.readback.runs import load_run
from pipeline.runinfo import saved_checkpoints
from tests.conftest import TBPIPE, run_tbpipe

pytestmark = pytest.mark.slow  # every test here runs tbpipe in a subprocess

#: long enough to be caught mid-way (as tests/test_resume_faults.py's RUN); every kind of
#: record, an image at a checkpoint step; scalars every 10 steps, as histograms (every step
#: would be ten times the records to write and read back, and catch nothing more)
LONG_RUN = (
    "trainer.steps=8000",
    "trainer.checkpoint_every=1000",
    "writer.flush_millis=100",
    "sinks=[graph,scalars,histograms,images,text,hparams]",
    "sinks.scalars.every=10",
    "sinks.images.every=2000",
    "trainer.progress=false",
)
MINI_BATCHES = ("trainer.batch_size=16", "optimizer.learning_rate=0.2")


def every_series(run_dir: Path) -> dict:
    """Every series TensorBoard shows for the run, per (folder, plugin, tag); the graph as
    its op names (TensorFlow does not serialise a GraphDef's attributes in a fixed order)."""
    out = {}
    for folder in ("train", "test", "."):
        run = load_run(run_dir / folder)
        for plugin, tags in run.series.items():
            for tag, points in tags.items():
                out[folder, plugin, tag] = [(step, value.tolist()) for step, value in points]
        if run.graph is not None:
            out[folder, "graph"] = sorted(node.name for node in run.graph.node)
    for key in [key for key in out if key[1] == "graphs"]:
        del out[key]
    return out


def records(run_dir: Path) -> Counter:
    """(folder, tag or kind, step) of every record in every event file, as written."""
    found: Counter = Counter()
    for path in sorted(run_dir.rglob("*tfevents*")):
        folder = path.parent.relative_to(run_dir).as_posix()
        for raw in RawEventFileLoader(str(path)).Load():
            event = event_pb2.Event.FromString(raw)
            if event.HasField("summary"):
                for value in event.summary.value:
                    found[folder, value.tag, event.step] += 1
            elif event.HasField("graph_def"):
                found[folder, "graph_def", event.step] += 1
    return found


@functools.cache
def read_once(run_dir: Path) -> tuple[dict, Counter]:
    """`every_series` and `records` of a run that no test changes (a run never stopped,
    which several tests compare with), read once."""
    return every_series(run_dir), records(run_dir)


def checkpoint_step(run_dir: Path) -> int | None:
    index = run_dir / "checkpoints" / "checkpoint"
    if not index.exists():
        return None
    first = index.read_text().splitlines()[0]  # model_checkpoint_path: "ckpt-2000"
    return int(first.rsplit("-", 1)[1].rstrip('"'))


def train_bytes(run_dir: Path) -> int:
    """The size of a run's train/ event files."""
    return sum(p.stat().st_size for p in (run_dir / "train").glob("*tfevents*"))


def last_train_step(run_dir: Path) -> int:
    """The last step of the records in a run's train/ event files (-1: none)."""
    return max((step for folder, _, step in records(run_dir) if folder == "train"), default=-1)


def signal_past_a_checkpoint(
    process: subprocess.Popen,
    find_dir,
    signum: int,
    at_least: int = 0,
    wait: float = 240,
    while_frozen: Callable[[Path], object] | None = None,
) -> Path:
    """Send `signum` to `process` (a `tbpipe` run or sweep) once the run dir `find_dir()`
    (None until it exists) has a checkpoint at step `at_least` or later and train records
    past it; wait for the process to end; return the run dir. `while_frozen(run_dir)`, if
    given, is called just before the signal, the process alive but frozen there (a test's
    look at a run that is still running).

    The last look is taken with the process frozen (SIGSTOP), reading the steps of the
    records written (not the file's size: a picture drawn at the checkpoint's own step can
    outweigh the records past it): where none is past the newest checkpoint yet, the
    process goes on. Without it the run could be stopped at a checkpoint with nothing past
    it for a resume to drop."""
    deadline = time.monotonic() + wait
    saved = size_then = None
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        run_dir = find_dir()
        if saved is None and run_dir is not None:
            if (checkpoint_step(run_dir) or -1) >= at_least:
                saved, size_then = checkpoint_step(run_dir), train_bytes(run_dir)
        elif saved is not None and train_bytes(run_dir) > size_then + 4096:
            process.send_signal(signal.SIGSTOP)
            saved, size_then = checkpoint_step(run_dir), train_bytes(run_dir)
            # not frozen half-way through saving one: its files all there, or none of them
            whole = saved_checkpoints(run_dir)[:1] == [saved]
            if whole and last_train_step(run_dir) > saved:
                break
            process.send_signal(signal.SIGCONT)
        time.sleep(0.02)
    else:
        process.kill()
        raise AssertionError("no checkpoint with records past it appeared")
    if while_frozen is not None:
        try:
            while_frozen(run_dir)
        except BaseException:
            process.kill()
            raise
    assert process.poll() is None, f"the run ended before it was stopped: {process.communicate()}"
    process.send_signal(signum)
    if signum != signal.SIGKILL:
        process.send_signal(signal.SIGCONT)  # the signal is taken once it runs again
    process.communicate(timeout=120)
    return run_dir


def behind_the_test() -> None:
    """A run the test stops mid-way runs at a lower priority (its `preexec_fn`): on a busy
    machine the test's looks at its files still come before it ends (a fast machine trains
    8,000 scalars-only steps in under a second)."""
    os.nice(10)


def stop_mid_run(
    args: tuple,
    run_dir: Path,
    cwd: Path,
    signum: int,
    while_frozen: Callable[[Path, subprocess.Popen], object] | None = None,
) -> int:
    """Start `tbpipe args`, wait for a checkpoint and for records past it, send `signum`;
    return the step of the last checkpoint it wrote. `while_frozen(run_dir, process)`:
    see `signal_past_a_checkpoint`."""
    process = subprocess.Popen(
        [TBPIPE, *args, f"hydra.run.dir={run_dir}"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=behind_the_test,
    )
    look = while_frozen and (lambda found: while_frozen(found, process))
    signal_past_a_checkpoint(process, lambda: run_dir, signum, while_frozen=look)
    return checkpoint_step(run_dir)  # SIGTERM, SIGINT: the run saves one more as it stops


def killed_and_resumed_equal_the_run_never_stopped(
    args: tuple, tmp_path: Path, whole: Path | None = None, in_process: bool = False
):
    """Run `args` whole (in this process, from `tmp_path` as the console script's would
    be; or read `whole`, such a run made already), then `tbpipe args` killed with -9 past
    a checkpoint and resumed (`tbpipe resume`, or `in_process` through `api.resume_run`
    where the numbers are the point): the resumed run completes from that checkpoint with
    every series and record of the whole one. Returns the resume's result (the console
    script's, for its output to be read; or the api's)."""
    run_dir = tmp_path / "run"
    if whole is None:
        whole = tmp_path / "whole"
        with contextlib.chdir(tmp_path):  # relative paths in `args` are read from there
            api.run_experiment(*args, run_dir=whole)
    saved = stop_mid_run(args, run_dir, tmp_path, signal.SIGKILL)
    if in_process:
        with contextlib.chdir(tmp_path):
            resumed = api.resume_run(run_dir)
    else:
        resumed = run_tbpipe("resume", str(run_dir), cwd=tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["resumed_from"] == saved
    series, written = read_once(whole)
    assert every_series(run_dir) == series  # bit for bit, every record
    got = records(run_dir)
    assert set(got.values()) == {1} and got == written
    return resumed


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The runs never stopped, one per config, made once, in this process."""
    made = {}

    def run(args: tuple) -> Path:
        if args not in made:
            run_dir = tmp_path_factory.mktemp("whole") / "run"
            made[args] = api.run_experiment(*args, run_dir=run_dir).run_dir
        return made[args]

    return run


@pytest.mark.parametrize(
    ("extra", "signum", "in_process"),
    [
        ((), signal.SIGKILL, True),
        (MINI_BATCHES, signal.SIGKILL, False),
        (MINI_BATCHES, signal.SIGTERM, True),
    ],
    ids=["full-batch-SIGKILL", "mini-batches-SIGKILL", "mini-batches-SIGTERM"],
)
def test_a_stopped_run_resumed_has_the_series_of_a_run_never_stopped(
    extra, signum, in_process, tmp_path, uninterrupted
):
    """Stopped by the console script; resumed by `tbpipe resume` (its stderr read), or
    `in_process` by `api.resume_run` (what `tbpipe resume` does) where the numbers are the
    point. The console script resumes the case with the most to restore (every sink, the
    mini-batches' iterator, records past the checkpoint); its resume of a full batch after
    kill -9 is read in tests/test_resume_faults.py, of a run stopped by a signal (Ctrl-C)
    in tests/test_stopped_run_checkpoint.py."""
    args = (*LONG_RUN, *extra)
    run_dir = tmp_path / "run"
    saved = stop_mid_run(args, run_dir, tmp_path, signum)
    stopped = json.loads((run_dir / "metrics.json").read_text())
    assert stopped["steps"] < 8000
    if signum == signal.SIGKILL:  # nothing ran after the kill: records past the checkpoint stay
        assert stopped["status"] == "running" and stopped["checkpoint_step"] == saved
        assert max(step for (folder, _, step) in records(run_dir) if folder == "train") > saved
    else:  # SIGTERM: the run stopped at a chunk end and saved a checkpoint there
        assert stopped["status"] == "interrupted" and saved == stopped["steps"]

    if in_process:
        with contextlib.chdir(tmp_path):
            api.resume_run(run_dir)
    else:
        resumed = run_tbpipe("resume", str(run_dir), cwd=tmp_path)
        for word in ("ERROR", "Traceback", "warning", "WARNING"):
            assert word not in resumed.stderr, resumed.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["resumed_from"] == saved

    series, want = read_once(uninterrupted(args))
    assert every_series(run_dir) == series  # bit for bit, every recorded step
    got = records(run_dir)
    assert set(got.values()) == {1}, [key for key, n in got.items() if n > 1][:5]
    assert got == want  # the graph, text and HParams written at the start: once
