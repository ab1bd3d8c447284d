"""Resume never loses a checkpoint, whatever goes wrong around it.

A real `tbpipe` run is killed with -9 after a checkpoint with event records past it,
once, in a run dir named with `[` (TensorFlow reads it as a glob); the tests resume
copies of that dir after making something go wrong, and compare every series, read with
TensorBoard's reader, with a run never stopped (made in this process through
`pipeline.api`: the same series as the console script's): bit for bit, each step once.
The console script resumes one copy past three faults at once (a dir named with `[`, a
damaged newest checkpoint, its pid reused; three tests read it) and one with no readable
checkpoint; a resume that is itself cut short (kill -9 in the middle of the event-file
rewrite, a full disk) is finished in this process (`api.resume_run`, what `tbpipe
resume` does), where the numbers are the point.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import api
from pipeline.checkpoints import REWRITING
from pipeline.readback.runs import load_run
from tests.conftest import TBPIPE, made_once, run_tbpipe
from tests.test_bad_input import ROWS
from tests.test_resume import (
    behind_the_test,
    checkpoint_step,
    every_series,
    read_once,
    records,
    signal_past_a_checkpoint,
    train_bytes,
)

ROW = {row.what: row for row in ROWS}

pytestmark = pytest.mark.slow  # every test here runs tbpipe in a subprocess

#: a few seconds of training (a fast machine trains 8,000 steps in half a second, too
#: short for a test to look at the files and stop it past a checkpoint), a checkpoint
#: every 1,000 steps, records reach the file fast; scalars every 4th step (a quarter of
#: the records to read back after each resume; killed past step 2,000, the run's train/
#: file is still far more than the full disk's room)
STEPS, SCALARS_EVERY = 40_000, 4
RUN = (
    f"trainer.steps={STEPS}",
    "trainer.checkpoint_every=1000",
    "writer.flush_millis=100",
    "sinks=[scalars]",
    f"sinks.scalars.every={SCALARS_EVERY}",
    "trainer.progress=false",
)


def kill_after_a_checkpoint(
    args: list[str], cwd: Path, find_dir, at_least: int = 1000
) -> tuple[Path, int]:
    """Start `tbpipe args`; once its run dir (`find_dir()`, None until it exists) has a
    checkpoint at step `at_least` or later and event records past it, SIGKILL it. The run
    dir and the step of its newest checkpoint."""
    process = subprocess.Popen([TBPIPE, *args], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=behind_the_test)  # fmt: skip
    run_dir = signal_past_a_checkpoint(process, find_dir, signal.SIGKILL, at_least)
    return run_dir, checkpoint_step(run_dir)


#: the killed run's dir, as a user typed it: a `[` that TensorFlow would read as a glob
BRACKETED = "outputs/day/run[scalars]"


def killed_once(tmp_path_factory) -> tuple[Path, int]:
    """RUN in the run dir BRACKETED, SIGKILLed once it has two checkpoints (the newest
    at 2,000 or later) and records past them: made once for every worker (the tests here
    and tests/test_resume_extended.py each resume a copy). Its dir and checkpoint step."""

    def make(workdir: Path) -> list:
        def find_dir():
            found = glob.glob(str(workdir / "outputs" / "*" / "*"))
            return Path(found[0]) if found else None

        args = [*RUN, f"hydra.run.dir='{BRACKETED}'"]
        run_dir, saved = kill_after_a_checkpoint(args, workdir, find_dir, at_least=2000)
        return [str(run_dir), saved]

    run_dir, saved = made_once(tmp_path_factory, "killed-run", make)
    return Path(run_dir), saved


def killed_run(tmp_path_factory, where: Path) -> tuple[Path, int]:
    """A copy of the killed run (`killed_once`) at where/run, to change and resume: its
    dir and checkpoint step (resume goes on in the dir it is given, wherever that is)."""
    made, saved = killed_once(tmp_path_factory)
    run_dir = where / "run"
    shutil.copytree(made, run_dir, symlinks=True)
    return run_dir, saved


@pytest.fixture(scope="module")
def never_stopped(tmp_path_factory) -> Path:
    """RUN never stopped, made in this process (`pipeline.api`)."""
    return api.run_experiment(*RUN, run_dir=tmp_path_factory.mktemp("whole") / "run").run_dir


def assert_ends_as_never_stopped(run_dir: Path, whole: Path, resumed_from: int) -> None:
    """The run, resumed from step `resumed_from`, completed with every series and record
    of the run never stopped (`whole`): bit for bit, each step once."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["resumed_from"] == resumed_from
    series, written = read_once(whole)
    assert every_series(run_dir) == series  # bit for bit, every step
    got = records(run_dir)
    assert set(got.values()) == {1} and got == written


def resume_in_process(run_dir: Path, cwd: Path) -> None:
    """`api.resume_run` (what `tbpipe resume` does) from `cwd`: for a resume that finishes
    one the console script began (its own output is read where the console script's
    resume completes: `resumed_past_three_faults`)."""
    with contextlib.chdir(cwd):
        api.resume_run(run_dir)


def pid_given_to_a_new_process(pid: int) -> subprocess.Popen | None:
    """A live process that got `pid` after its first owner died (the kernel's next pid set
    through /proc/sys/kernel/ns_last_pid, as root); None where that cannot be done."""
    for _ in range(20):
        try:
            Path("/proc/sys/kernel/ns_last_pid").write_text(str(pid - 1))
        except OSError:
            return None
        process = subprocess.Popen(["sleep", "900"])  # outlives a resume on a busy machine
        if process.pid == pid:
            return process
        process.kill()
        process.wait()
    return None


def checkpoint_data_files(run_dir: Path) -> list[Path]:
    """The run's checkpoint data files, oldest first."""
    files = (run_dir / "checkpoints").glob("ckpt-*.data-*")
    return sorted(files, key=lambda p: int(p.name[5:].split(".")[0]))


@pytest.fixture(scope="module")
def resumed_past_three_faults(tmp_path_factory, never_stopped) -> dict:
    """One console-script resume that three tests read, each a fault of its own: a copy
    of the killed run in a dir named like BRACKETED (TensorFlow reads `[` as a glob), its
    newest checkpoint's data file cut in half, and its dead pid given to a new, unrelated
    process where this machine allows it (root); `tbpipe status`, then `tbpipe resume`.
    The resume goes on from the checkpoint before the damaged one, as the run never
    stopped: its stderr is the one line naming the damaged file."""
    made, _ = killed_once(tmp_path_factory)
    workdir = tmp_path_factory.mktemp("bracket")
    run_dir = workdir / BRACKETED
    shutil.copytree(made, run_dir, symlinks=True)
    recorded = (run_dir / "run.json").read_bytes()
    kept = checkpoint_data_files(run_dir)  # two checkpoints kept
    assert len(kept) == 2
    previous = int(kept[0].name[5:].split(".")[0])
    os.truncate(kept[-1], kept[-1].stat().st_size // 2)  # a truncated data file
    dead = json.loads((run_dir / "metrics.json").read_text())
    impostor = pid_given_to_a_new_process(dead["pid"])
    try:
        status = run_tbpipe("status", str(run_dir), "--json", cwd=workdir, check=False)
        resumed = run_tbpipe("resume", str(run_dir), cwd=workdir)
        left_alone = impostor is not None and impostor.poll() is None
    finally:
        if impostor is not None:
            impostor.kill()
            impostor.wait()
    assert_ends_as_never_stopped(run_dir, never_stopped, previous)
    assert f"resumed from step {previous}" in (run_dir / "tbpipe.log").read_text()
    return {
        "made": made, "run_dir": run_dir, "previous": previous, "damaged": kept[-1],
        "recorded": recorded, "dead": dead, "impostor": impostor is not None,
        "status": json.loads(status.stdout), "resumed": resumed, "left_alone": left_alone,
    }  # fmt: skip


def test_a_run_dir_named_with_a_bracket_resumes_from_its_checkpoint(resumed_past_three_faults):
    """A `[` in a run dir's name (a user's hydra.run.dir): TensorFlow reads it as a glob.
    The killed run was made in such a dir; a copy of it, in a dir named alike, resumes
    (as the run never stopped: `resumed_past_three_faults`)."""
    resumed = resumed_past_three_faults
    run_dir = resumed["run_dir"]
    assert resumed["made"].name == run_dir.name == "run[scalars]"
    assert f"from step {resumed['previous']}" in resumed["resumed"].stdout
    kept = sorted((run_dir / "checkpoints").glob("ckpt-*.index"))
    last_two = [STEPS - 2000, STEPS - 1000]  # max_to_keep; none at the last step
    assert [p.name for p in kept] == [f"ckpt-{step}.index" for step in last_two]
    # nothing of the run was edited: its run.json is left as it was (an edited run's is
    # rewritten: tests/test_resume_extended.py)
    assert (run_dir / "run.json").read_bytes() == resumed["recorded"]


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(resumed_past_three_faults):
    """Its newest checkpoint cut in half: the resume goes on from the one before, as the
    run never stopped (`resumed_past_three_faults`), and says so in one line."""
    resumed = resumed_past_three_faults["resumed"]
    (line,) = resumed.stderr.splitlines()  # one line naming the file at fault
    damaged = resumed_past_three_faults["damaged"]
    assert f"checkpoint {damaged} cannot be read" in line, resumed.stderr
    for word in ("ERROR", "Traceback", "warning", "WARNING"):
        assert word not in line, line


def test_no_readable_checkpoint_starts_over_and_says_so_in_one_line(
    tmp_path, tmp_path_factory, never_stopped
):
    run_dir, _ = killed_run(tmp_path_factory, tmp_path)
    indexes = sorted((run_dir / "checkpoints").glob("ckpt-*.index"))
    for index in indexes:
        index.write_bytes(b"not a checkpoint")  # garbage in every index
    resumed = run_tbpipe("resume", str(run_dir), cwd=tmp_path)
    *damaged, last = resumed.stderr.splitlines()
    assert sorted(line.split()[2] for line in damaged) == [str(p) for p in indexes], damaged
    assert all("cannot be read (" in line and "sstable" in line for line in damaged), damaged
    said = "no usable checkpoint (none could be read): starting over from step 0"
    assert last == f"tbpipe: run: {said}"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and "resumed_from" not in metrics
    assert every_series(run_dir) == read_once(never_stopped)[0]


#: runs `tbpipe resume DIR` in this process, SIGKILLed in the middle of writing the first
#: rewritten event file: once the rewrite's temporary file is written, half of it is cut
#: off (what a kill mid-write leaves) and the process killed before it could be renamed
KILL_IN_REWRITE = f"""
import os, signal, sys
real_fsync = os.fsync
def fsync_then_die_in_the_rewrite(fd):
    name = os.path.basename(os.readlink(f"/proc/self/fd/{{fd}}"))
    if name.startswith({REWRITING!r}):
        os.ftruncate(fd, os.fstat(fd).st_size // 2)
        os.kill(os.getpid(), signal.SIGKILL)
    real_fsync(fd)
os.fsync = fsync_then_die_in_the_rewrite
sys.argv = ["tbpipe", "resume", sys.argv[1]]
from pipeline.__main__ import main
main()
"""


def test_kill_9_during_the_event_file_rewrite_then_resume_loses_nothing(
    tmp_path, tmp_path_factory, never_stopped
):
    run_dir, saved = killed_run(tmp_path_factory, tmp_path)
    originals = {p: p.read_bytes() for p in run_dir.rglob("*tfevents*")}
    killed = subprocess.run([sys.executable, "-c", KILL_IN_REWRITE, str(run_dir)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (leftover,) = (run_dir / "train").glob(f"{REWRITING}*")  # the half-written rewrite
    assert "tfevents" not in leftover.name and leftover.stat().st_size > 0
    # the originals are whole, and TensorBoard reads them, not the leftover
    assert {p: p.read_bytes() for p in run_dir.rglob("*tfevents*")} == originals
    loss = [step for step, _ in load_run(run_dir / "train").scalars("loss")]
    assert loss == list(range(0, SCALARS_EVERY * len(loss), SCALARS_EVERY)) and loss[-1] > saved
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "running"  # died

    resume_in_process(run_dir, tmp_path)
    assert_ends_as_never_stopped(run_dir, never_stopped, saved)
    assert not list(run_dir.rglob(f"{REWRITING}*"))


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs mounted for the test: a real filesystem that really fills up."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {mounted.stderr.strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=True)


def fill(disk: Path, leave: int) -> Path:
    """Fill `disk` until a write fails with ENOSPC, then free `leave` bytes again."""
    filler = disk / "filler"
    # unbuffered: a write the disk takes in part leaves nothing behind for close() to
    # flush (a buffered file's close raised ENOSPC again, at random: where the last
    # 64 KiB fell depends on how far the killed run had got)
    with open(filler, "wb", buffering=0) as stream:
        try:
            while True:
                stream.write(b"\0" * 65536)
        except OSError as error:
            assert error.errno == 28  # ENOSPC: the disk is full
    os.truncate(filler, filler.stat().st_size - leave)
    return filler


def test_a_full_disk_during_resume_loses_nothing_and_resume_goes_on_later(
    small_disk, tmp_path_factory, never_stopped
):
    run_dir, saved = killed_run(tmp_path_factory, small_disk)
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    room = 32 * 1024  # for a lock and a log line, not for the rewrite
    assert train_bytes(run_dir) > 2 * room
    filler = fill(small_disk, leave=room)

    row = ROW["a full disk while resume rewrites the event files"]
    refused = run_tbpipe("resume", str(run_dir), cwd=small_disk.parent, check=False)
    assert refused.returncode == row.exit_code == 1
    (line,) = refused.stderr.splitlines()
    assert row.matches(line, {"<run dir>": "disk/run"}), line
    after = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    changed = [p.name for p in before if after.get(p) != before[p]]
    # the job log says the resume failed; the killed run's lock was taken over and let go
    assert sorted(changed) == [".tbpipe.lock", "tbpipe.log"], changed
    assert not [p for p in after if p not in before]  # no temporary file left
    status = json.loads(run_tbpipe("status", str(run_dir), "--json", cwd=small_disk,
                                   check=False).stdout)  # fmt: skip
    assert status[0]["state"] == "died" and status[0]["checkpoint_step"] == saved  # not failed

    filler.unlink()
    resume_in_process(run_dir, small_disk)
    assert_ends_as_never_stopped(run_dir, never_stopped, saved)


def test_a_reused_pid_is_not_taken_for_the_run(resumed_past_three_faults):
    """The killed run's pid, alive again in an unrelated process: status still says died,
    the process is left alone, and the run resumes (`resumed_past_three_faults`)."""
    resumed = resumed_past_three_faults
    dead = resumed["dead"]
    assert dead["host"] == socket.gethostname() and dead["pid_started"] is not None
    if not resumed["impostor"]:
        pytest.skip("cannot give a pid to a new process here (needs root and ns_last_pid)")
    assert resumed["status"][0]["state"] == "died"
    assert resumed["left_alone"]  # the unrelated process was left alone


def test_resume_of_a_sweep_that_has_just_started_is_refused(tmp_path):
    """From the moment a sweep is launched (multirun.yaml written, no job dir yet) until it
    ends, its dir is its launching process's: resume is refused and changes nothing."""
    sweep_dir = tmp_path / "sweep"
    args = ["-m", "data.noise_std=0.1,0.2", "trainer.steps=200", "trainer.progress=false",
            "sinks=[scalars]", f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    sweep = subprocess.Popen([TBPIPE, *args], cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (sweep_dir / "multirun.yaml").exists():
            assert sweep.poll() is None and time.monotonic() < deadline, sweep.communicate()
            time.sleep(0.005)
        sweep.send_signal(signal.SIGSTOP)  # held just after its start
        before = sorted(p.name for p in sweep_dir.iterdir())
        refused = run_tbpipe("resume", str(sweep_dir), cwd=tmp_path, check=False)
        row = ROW["resume of a sweep still being launched or run"]
        assert refused.returncode == row.exit_code == 2, refused
        (line,) = refused.stderr.splitlines()
        assert row.matches(line, {"<sweep dir>": str(sweep_dir)}), line
        assert f"by pid {sweep.pid} on {socket.gethostname()}" in line
        assert sorted(p.name for p in sweep_dir.iterdir()) == before
    finally:
        sweep.send_signal(signal.SIGCONT)
    out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, err
    for job in sweep_dir.glob("[0-9]_*"):  # one writer per job: each record once
        assert len(list((job / "train").glob("*tfevents*"))) == 1
        assert set(records(job).values()) == {1}
    assert not (sweep_dir / ".tbpipe.lock").exists()  # released when the sweep ended
