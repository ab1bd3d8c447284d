"""Values a run cannot hold are refused before TensorFlow (rows of docs/ERRORS.md, run in
test_bad_input.py); what stays allowed is planned in bounded memory and stops on a signal
within a second.
"""

from __future__ import annotations

import inspect
import itertools
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TBPIPE


class Every:
    def __init__(self, every: int):
        self.every = every


def old_chunk_ends(steps, chunk, python_sinks):
    """The list the loop used to build (kept here to show the plan did not change)."""
    ends = set(range(chunk, steps, chunk))
    for sink in python_sinks:
        ends.update(range(sink.every, steps, sink.every))
    ends.add(steps)
    return sorted(ends)


@pytest.mark.parametrize(
    ("steps", "chunk", "everies"),
    [(10, 4, [3]), (1000, 500, []), (1000, 500, [100]), (7, 10, [2, 3]), (1, 1, []), (97, 5, [7])],
)
def test_chunks_are_planned_as_before(steps, chunk, everies):
    from pipeline.train import chunk_ends

    sinks = [Every(e) for e in everies]
    assert list(chunk_ends(steps, chunk, sinks)) == old_chunk_ends(steps, chunk, sinks)


def test_a_billion_steps_plan_in_constant_memory():
    """trainer.steps=10**12 used to build a list of every chunk end (9.5 GB)."""
    from pipeline.check.schema import MAX_STEPS
    from pipeline.train import chunk_ends

    ends = chunk_ends(MAX_STEPS, 1, [Every(3)])
    assert inspect.isgenerator(ends)  # made one end at a time, never a list of them all
    assert list(itertools.islice(ends, 5)) == [1, 2, 3, 4, 5]


def test_a_call_is_sized_to_last_about_a_quarter_second():
    from pipeline.train import CALL_SECONDS, CallSizer

    sizer = CallSizer(first=1000)
    assert sizer.split(0, 3_000_000) == 1000
    sizer.measured(1000, 0.01)  # 100,000 steps/s
    assert sizer.split(1000, 3_000_000) == 1000 + int(100_000 * CALL_SECONDS)
    assert sizer.split(2_999_990, 3_000_000) == 3_000_000  # never past the chunk's end
    sizer.measured(10, 5.0)  # a slow model: one step a call is the least
    assert sizer.split(0, 10) == 1


@pytest.mark.slow  # starts a new process: in `make test`, not `make test-fast`
def test_a_huge_step_count_is_refused_before_tensorflow(tmp_path):
    """The issue's case: memory 0.5 -> 9.5 GB in 25 s. Now one line, exit 2, no TF."""
    probe = (
        "import sys; from pipeline.__main__ import main; sys.argv = ['tbpipe', "
        "'trainer.steps=1000000000000']\ntry:\n    main()\nexcept SystemExit as e:\n"
        "    print(e.code, 'tensorflow' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.split() == ["2", "False"], done
    assert done.stderr.startswith("tbpipe: bad value trainer.steps=1000000000000: must be")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_is_honoured_within_a_second_with_a_huge_chunk(tmp_path, signum):
    """trainer.chunk=3000000: two SIGINTs used to do nothing for 60 s."""
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [TBPIPE, "trainer.steps=100000000", "trainer.chunk=3000000", "sinks=[scalars]",
         "writer.flush_millis=100", "trainer.progress=false", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while not list(Path(run_dir).glob("train/*tfevents*")):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.2)
    time.sleep(2)  # well inside the first 3,000,000-step chunk
    process.send_signal(signum)
    process.communicate(timeout=60)
    assert process.returncode == 128 + signum
    # stopped inside the first chunk: the signal was seen between the chunk's calls, not
    # at its end (the time it takes is measured in docs/ERRORS.md, not asserted)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and 0 < metrics["steps"] < 3_000_000


@pytest.mark.parametrize(
    "template",
    ["trainer.steps={}", "trainer.stepz={}", "+note={}", "data.noise_std=x{}", "model=m{}"],
)
def test_a_100_kb_value_is_not_echoed(template, tmp_path, monkeypatch, capsys):
    from pipeline.__main__ import main

    value = "9" * 100_000
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["tbpipe", template.format(value)])
    with pytest.raises(SystemExit) as ended:
        main()
    err = capsys.readouterr().err
    assert ended.value.code == 2
    assert len(err.splitlines()) == 1 and len(err) < 400, err[:1000]
    assert "(100" in err  # says how long the value was
    assert list(tmp_path.iterdir()) == []
