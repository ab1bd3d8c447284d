"""`tbpipe report` reads final scalars through TensorBoard's data server (readback/data_server.py)
and gives what the Python reader (readback/scalars.py) gives: rows, steps, values, warnings.

The event files are written with TensorBoard's own writer in the shapes that matter (TF2
tensors and float64 ones, TF1 simple_values, histograms beside scalars, a restart inside a
version-2 file, an out-of-order step in a version-1 file, a run of two files, a truncated,
a bit-flipped and a garbage file, an empty one, a run at the logdir's root), plus a real
tbpipe run; the server is the installed binary, started for real on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.util import tensor_util

from pipeline import runinfo
from pipeline.readback import data_server, report_cache
from pipeline.readback.report import render, scalar_rows
from pipeline.readback.runs import DamagedEventFile
from pipeline.readback.scalars import load_scalar_runs
from tests.test_scalars import histogram, restart, scalar, simple, write


def test_the_data_server_is_installed_with_tensorboard():
    assert data_server.installed_server() is not None  # tensorboard requires the package


def both_readers(logdir: Path, server: str | None = None) -> tuple[str, list[str]]:
    """The JSON report and its warnings through each reader; asserts they are the same."""
    results = []
    for read in (
        lambda: load_scalar_runs(logdir, ends_only=True),
        lambda: data_server.load_final_scalars(logdir, server),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = read()
        assert {w.category for w in caught} <= {DamagedEventFile}
        results.append(
            (render(logdir, scalar_rows(loaded), None, "json"), [str(w.message) for w in caught])
        )
    assert results[0] == results[1]
    return results[0]


def served_runs(logdir: Path) -> set[str]:
    """The runs the server's answer was taken for (the rest were read in Python)."""
    files = {name: data_server.event_files(path) for name, path in data_server.find_runs(logdir)}
    return set(data_server.serve_final_scalars(logdir, files))


def tensor_series(tag: str, step: int, values: int = 3):
    """A value of a DATA_CLASS_TENSOR series (e.g. PR curves): neither scalar nor histogram."""
    metadata = summary_pb2.SummaryMetadata(data_class=summary_pb2.DATA_CLASS_TENSOR)
    metadata.plugin_data.plugin_name = "custom"
    value = summary_pb2.Summary.Value(
        tag=tag, tensor=tensor_util.make_tensor_proto(np.arange(float(values))), metadata=metadata
    )
    return event_pb2.Event(step=step, wall_time=1.0, summary=summary_pb2.Summary(value=[value]))


@pytest.fixture
def many_shapes(tmp_path) -> Path:
    """A logdir with every shape of run the two readers must agree on."""
    logdir = tmp_path / "logs"
    events = [scalar("k", 0.5, 0, first=True), histogram("w", 0, first=True)]
    events += [scalar("k", 0.25 * s, s) for s in range(1, 5)] + [histogram("w", 3)]
    events += [simple("old", 2.5, 1), simple("old", 1.5, 2)]
    events += [scalar("d", 0.1, 0, first=True, dtype=np.float64), scalar("d", 0.2, 1)]
    events += [tensor_series("t", s) for s in range(2)]  # a series of neither kind
    write(logdir / "mixed", events)
    events = [restart(0), scalar("k", 1.0, 0, first=True)]
    events += [scalar("k", float(s), s) for s in range(1, 6)]
    write(logdir / "a" / "restarted", events + [restart(3), scalar("k", 13.0, 3)])
    events = [scalar("k", float(s), s, first=s == 0) for s in range(5)]
    write(logdir / "v1", events + [scalar("k", 20.0, 2)], version="brain.Event:1")
    write(logdir / "two", [scalar("k", 1.0, 0, first=True), scalar("k", 2.0, 3)], suffix=".a")
    write(logdir / "two", [restart(1), scalar("k", 3.0, 1, first=True)], suffix=".b")
    write(logdir / "histograms_only", [histogram("w", s, first=s == 0) for s in range(3)])
    write(logdir, [scalar("root", 7.0, 9, first=True)])  # a run named "."
    for name in ("truncated", "flipped", "whole"):
        write(logdir / name, [scalar("loss", 1.0 / (s + 1), s, first=s == 0) for s in range(50)])
    (cut,) = (logdir / "truncated").iterdir()
    cut.write_bytes(cut.read_bytes()[:-7])
    (flipped,) = (logdir / "flipped").iterdir()
    data = bytearray(flipped.read_bytes())
    data[-5] ^= 1  # the last record's data still parses; its CRC fails
    flipped.write_bytes(bytes(data))
    garbage = logdir / "garbage" / "events.out.tfevents.1.host"
    garbage.parent.mkdir()
    garbage.write_bytes(b"this is not an event file\n" * 4)
    (logdir / "empty").mkdir()
    (logdir / "empty" / "events.out.tfevents.2.host").write_bytes(b"")
    return logdir


def test_every_shape_of_run_reads_the_same_through_the_server(many_shapes):
    report, damage = both_readers(many_shapes)
    assert len(damage) == 3 and "truncated" in damage[-1] and "checksum" in damage[0]
    assert '"run": "."' in report and '"d": 0.20000000298023224' in report
    # the server's answer is taken for the clean one-file runs, and only for them
    assert served_runs(many_shapes) == {
        ".",
        "mixed",
        "a/restarted",
        "v1",
        "whole",
        "histograms_only",
    }


def test_an_event_the_server_refuses_sends_its_run_to_the_python_reader(tmp_path):
    events = [scalar("k", float(s), s, first=s == 0) for s in range(3)]
    events[1].wall_time = float("nan")  # the server stops at it ("NanWallTime"); Python not
    write(tmp_path / "a", events)
    write(tmp_path / "b", [scalar("k", 1.0, 0, first=True)])
    assert '"k": 2.0' in both_readers(tmp_path)[0]
    assert served_runs(tmp_path) == {"b"}


def test_without_a_working_server_the_python_reader_reads_every_run(many_shapes, tmp_path):
    for server in ("/bin/false", str(tmp_path / "missing"), "/dev/null"):
        both_readers(many_shapes, server)


def test_the_end_of_a_file_is_whole_exactly_when_its_last_record_is(
    many_shapes, tmp_path, monkeypatch
):
    (whole,) = (many_shapes / "whole").iterdir()
    data = whole.read_bytes()
    assert runinfo.ends_on_a_whole_record(whole)
    cut = tmp_path / "cut"
    for end in (len(data) - 1, len(data) - 4, len(data) - 12, len(data) - 20, 5):
        cut.write_bytes(data[:end])
        assert not runinfo.ends_on_a_whole_record(cut), end
    events = [scalar("t", float(s), s, first=s == 0) for s in range(2000)]
    write(tmp_path / "big", [*events, tensor_series("w", 1, values=10_000)])
    (big,) = (tmp_path / "big").iterdir()
    big_data = big.read_bytes()
    assert len(big_data) > 4 * runinfo.TAIL_BYTES  # last record: 80 KB, not in the tail
    for chunk in (2**20, 1000):  # offsets compared a million at once, or a thousand
        monkeypatch.setattr(runinfo, "SEARCH_CHUNK", chunk)
        big.write_bytes(big_data)
        assert runinfo.ends_on_a_whole_record(big)
        big.write_bytes(big_data[:-3])  # the whole file searched before giving up
        assert not runinfo.ends_on_a_whole_record(big)


def test_steps_going_back_in_one_file_the_known_difference(tmp_path):
    """Without a restart marker, the server (as the dashboard) keeps the steps written last;
    the Python reader, as TensorBoard's EventAccumulator, keeps both and ends on the highest."""
    events = [scalar("k", float(s), s, first=s == 0) for s in range(5)]
    write(tmp_path / "run", events + [scalar("k", 20.0, 2)])
    python = scalar_rows(load_scalar_runs(tmp_path, ends_only=True))
    server = scalar_rows(data_server.load_final_scalars(tmp_path))
    assert python == [{"run": "run", "step": 4, "scalars": {"k": 4.0}}]
    assert server == [{"run": "run", "step": 2, "scalars": {"k": 20.0}}]


def test_a_real_run_and_a_copy_with_a_cut_file(default_run, tmp_path):
    logdir = tmp_path / "runs"
    shutil.copytree(default_run, logdir / "whole")
    shutil.copytree(default_run, logdir / "cut")
    (train,) = (logdir / "cut" / "train").glob("*tfevents*")
    train.write_bytes(train.read_bytes()[:-100])
    report, damage = both_readers(logdir)
    assert len(damage) == 1 and "truncated" in damage[0]
    assert served_runs(logdir) >= {"whole/train", "whole/test", "cut/test"}
    assert '"run": "whole/train"' in report and '"k/error"' in report


def cached_and_fresh(logdir: Path) -> tuple[str, list[str]]:
    """The report through the cache, as read fresh by the Python reader: asserts they agree."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = report_cache.load_final_scalars(logdir)
    cached = (render(logdir, scalar_rows(loaded), None, "json"), [str(w.message) for w in caught])
    assert cached == both_readers(logdir)
    return cached


def test_a_second_report_reads_the_cache_and_says_the_same(many_shapes, monkeypatch):
    monkeypatch.setattr(report_cache, "MIN_SERVER_BYTES", 0)  # this small logdir: the server
    first = cached_and_fresh(many_shapes)
    cache_file = report_cache.cache_path(many_shapes)
    written = cache_file.stat().st_mtime_ns
    assert cached_and_fresh(many_shapes) == first  # damaged files still warned about
    assert cache_file.stat().st_mtime_ns == written  # nothing left to read, nothing written


def cached_rows(logdir: Path) -> dict[str, dict]:
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        loaded = report_cache.load_final_scalars(logdir)
    return {row["run"]: row for row in scalar_rows(loaded)}


def test_a_hand_edited_cache_value_is_not_shown(many_shapes):
    first = cached_and_fresh(many_shapes)
    cache_file = report_cache.cache_path(many_shapes)
    document = json.loads(cache_file.read_text())
    document["runs"]["whole"]["scalars"]["loss"][1] = (32.0).hex()  # k = 32, by hand
    cache_file.write_text(json.dumps(document))
    assert cached_rows(many_shapes)["whole"]["scalars"] != {"loss": 32.0}
    assert cached_and_fresh(many_shapes) == first  # read again from the event files
    entry = json.loads(cache_file.read_text())["runs"]["whole"]
    assert entry["checksum"] == report_cache.checksum(entry)  # and kept right


def test_the_cache_is_keyed_by_each_event_files_stamp(many_shapes):
    cached_and_fresh(many_shapes)
    cache_file = report_cache.cache_path(many_shapes)
    document = json.loads(cache_file.read_text())
    whole = document["runs"]["whole"]
    whole["scalars"]["loss"][1] = (1234.5).hex()
    whole["checksum"] = report_cache.checksum(whole)  # an entry the cache itself could write
    cache_file.write_text(json.dumps(document))
    rows = cached_rows(many_shapes)
    assert rows["whole"]["scalars"] == {"loss": 1234.5}  # an unchanged run: what was kept
    (whole,) = (many_shapes / "whole").iterdir()
    os.utime(whole)  # a write: its ctime moves on
    cached_and_fresh(many_shapes)
    write(many_shapes / "whole", [scalar("loss", 0.125, 60, first=True)])  # a second file
    (flipped,) = (many_shapes / "flipped").iterdir()
    flipped.write_bytes(
        (many_shapes / "v1" / next((many_shapes / "v1").iterdir()).name).read_bytes()
    )
    report, damage = cached_and_fresh(many_shapes)
    assert '"loss": 0.125' in report and len(damage) == 2  # flipped is whole again


def test_a_cache_that_cannot_be_read_or_written_is_read_afresh(many_shapes, monkeypatch, tmp_path):
    first = cached_and_fresh(many_shapes)
    cache_file = report_cache.cache_path(many_shapes)
    for text in ('{"format": 2, "runs": {"whole": 3}', '{"format": 2, "runs": {"whole": 3}}'):
        cache_file.write_text(text)
        assert cached_and_fresh(many_shapes) == first  # cut short, not ours: ignored, rewritten
        assert json.loads(cache_file.read_text())["runs"]["whole"]["scalars"]
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    monkeypatch.setenv("TBPIPE_CACHE_DIR", str(blocker))
    assert cached_and_fresh(many_shapes) == first
    assert blocker.read_text() == ""


@pytest.mark.slow  # starts a new process: in `make test`, not `make test-fast`
def test_the_report_process_reads_events_without_tensorflow_or_boto3():
    """TensorBoard's stub reader, without its S3 support (boto3: ~0.15 s of every report);
    boto3 itself still imports afterwards for whoever needs it."""
    script = (
        "import sys\n"
        "from pipeline.compat import read_events_without_tensorflow\n"
        "assert read_events_without_tensorflow()\n"
        "from tensorboard.compat.tensorflow_stub.io import gfile\n"
        "assert not gfile.S3_ENABLED and not {'boto3', 'botocore'} & set(sys.modules)\n"
        "assert 'tensorflow' not in sys.modules\n"
        "import boto3\n"
        "print(boto3.__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == "boto3\n", result.stderr


@pytest.mark.slow
def test_a_sweep_fills_the_cache_so_its_first_report_reads_no_event_file(tmp_path):
    from tests.conftest import run_tbpipe

    sweep_dir = tmp_path / "sweep"
    swept = run_tbpipe("-m", "data.noise_std=0.1,1", "trainer.steps=30", "trainer.progress=false",
                       "sinks=[scalars]",  # what a report reads: no picture is the point
                       f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)  # fmt: skip
    assert "Traceback" not in swept.stderr and "warning" not in swept.stderr.lower()
    cache_file = report_cache.cache_path(sweep_dir)
    filled = cache_file.stat().st_mtime_ns
    runs = json.loads(cache_file.read_text())["runs"]
    assert {"0_noise_std-0.1/train", "1_noise_std-1/test"} <= set(runs), sorted(runs)
    report = run_tbpipe("report", str(sweep_dir), "--json", cwd=tmp_path)
    assert cache_file.stat().st_mtime_ns == filled  # every run came from the cache
    shown = {run["run"]: run for run in json.loads(report.stdout)["runs"]}
    assert shown["1_noise_std-1/train"]["step"] == 30
    fresh = load_scalar_runs(sweep_dir, ends_only=True)  # and it says what the files say
    assert render(sweep_dir, scalar_rows(fresh), None, "json") == report.stdout.rstrip("\n")


#: `tbpipe report`'s output forms and their flags
FORMS = {"json": ["--json"], "table": [], "csv": ["--csv"]}


@pytest.mark.slow
def test_tbpipe_report_prints_what_tensorboards_accumulator_reads(
    many_shapes, default_run, tmp_path
):
    """`tbpipe report` (the console script), first through the data server and then from
    its cache, prints byte for byte what the report renders from TensorBoard's own
    EventAccumulator (`runs.load_runs`), warnings included: every shape of run, and enough
    copies of a real run that the first report starts the server. The logdir is read once
    by the accumulator; the server's report is the JSON one, and each form is then printed
    from the cache (the form is only how the same rows are rendered)."""
    from pipeline.readback.runs import SCALARS, find_runs, load_runs
    from tests.conftest import run_tbpipe

    logdir = many_shapes
    copies = 1 + int(3 * 2**20 / sum(f.stat().st_size for f in default_run.rglob("*tfevents*")))
    for number in range(copies):
        shutil.copytree(default_run, logdir / "real" / str(number))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_runs(logdir, {SCALARS}, ends_only=True)
    rows = scalar_rows(loaded)
    err = "".join(f"tbpipe report: warning: {w.message}\n" for w in caught)
    assert "truncated" in err and "garbage" in err
    stamps = {name: report_cache.file_stamps(path) for name, path in find_runs(logdir)}
    assert report_cache.worth_a_server(stamps, stamps)  # a first report starts the server
    cache = {"TBPIPE_CACHE_DIR": str(tmp_path / "cache")}
    written = []
    for form in ("json", *FORMS):  # the first (JSON) through the data server
        out = render(logdir, rows, None, form) + "\n"
        assert "real/0/train" in out, form
        printed = run_tbpipe("report", str(logdir), *FORMS[form], cwd=tmp_path, env=cache)
        assert (printed.stdout, printed.stderr) == (out, err), form
        written.append({p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*.json")})
    assert len(written[0]) == 1  # the first report filled the cache; the others only read it
    assert all(stamps == written[0] for stamps in written), written
