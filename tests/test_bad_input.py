"""A user who types a bad override gets one clear line and exit code 2, at once, and nothing
is written. Every row of the table in docs/ERRORS.md is checked here or in test_faults.py.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import run_tbpipe

DOC = Path(__file__).resolve().parents[1] / "docs" / "ERRORS.md"
#: rows of the table that need a real training run: checked in test_faults.py
FAULT_ROWS = {"learning rate too high", "error inside the run", "Ctrl-C mid-run", "SIGTERM mid-run"}
FAULT_ROWS |= {"a function as a piece, found in the run"}  # tests/test_hostile.py
FAULT_ROWS |= {"SIGTERM while TensorFlow loads", "a full disk mid-run", "a full disk mid-sweep"}
FAULT_ROWS |= {"a full disk while resume rewrites the event files"}  # test_resume_faults.py
#: exit-2 rows that need more than one in-process call: checked in test_races.py,
#: test_resume_faults.py and test_resume_sweep.py
ELSEWHERE = {"two runs into one dir at once", "resume of a sweep still being launched or run"}
ELSEWHERE |= {"resume with a job dir that is a link", "resume with a job dir without .hydra"}


#: `<houses.csv>` of the table: a data file for `data=file`
HOUSES = """sqft,rooms,city,price,grade
1200,3,Paris,250.5,1
800,2,Lyon,180.0,0
1500,4,Paris,320.0,2
950,2,Nice,199.9,0
2000,5,Lyon,410.0,2
"""


@dataclass(frozen=True)
class Row:
    """One row of the table: what went wrong, the command, the message, the exit code."""

    what: str
    command: str
    message: str
    exit_code: int

    def argv(self, paths: dict[str, str]) -> tuple[dict[str, str], list[str]]:
        """The environment and the arguments after `tbpipe`, placeholders filled in."""
        words = shlex.split(fill(self.command.split("`, then")[0].strip("`"), paths))
        env = dict(word.split("=", 1) for word in words[: words.index("tbpipe")])
        return env, words[words.index("tbpipe") + 1 :]

    def matches(self, line: str, paths: dict[str, str]) -> bool:
        """`...` in the documented message stands for any text."""
        pieces = [re.escape(fill(piece, paths)) for piece in self.message.split("...")]
        return re.fullmatch(".*".join(pieces), line) is not None


def fill(text: str, paths: dict[str, str]) -> str:
    for placeholder, path in paths.items():
        text = text.replace(placeholder, path)
    return text


def error_table() -> list[Row]:
    """The rows of the `Bad input -> message -> exit code` table in docs/ERRORS.md."""
    section = DOC.read_text().split("## Bad input -> message -> exit code")[1].split("\n## ")[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) != 4 or not cells[3].isdigit():
            continue
        what, command, message, code = cells
        rows.append(Row(what, command, message.strip("`"), int(code)))
    return rows


ROWS = error_table()
BAD_INPUT_ROWS = [r for r in ROWS if r.exit_code == 2 and r.what not in ELSEWHERE]
#: the inputs the table was first asked to cover
NAMED = {
    "unknown key", "misspelled group option", "wrong type", "negative noise", "NaN noise",
    "infinite noise", "zero steps", "negative steps", "zero learning rate",
    "negative learning rate", "NaN learning rate", "empty x range", "unknown sink name",
    "output dir not writable", "output dir is a file", "an earlier run's dir",
}  # fmt: skip
#: the rows `make test-fast` checks: those named, and one of each other way a check finds
#: bad input (parsing, a sweep's values, a piece's class, a YAML file, a data file, an
#: interpolation); `make test` checks every row (each composes the config with Hydra)
FAST_ROWS = NAMED | {
    "override that does not parse", "one bad value in a sweep", "a function as a piece",
    "a YAML error in your config", "a data file that does not exist",
    "an interpolation to nothing",
}  # fmt: skip


def read_only_dir(tmp_path: Path) -> str:
    """A directory nobody may create files in: chmod for a user, /sys (sysfs) for root."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return str(folder)
    try:
        tempfile.mkdtemp(dir="/sys")
    except OSError:
        return "/sys"
    pytest.skip("no directory here refuses root's writes")


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, str]:
    """The table's placeholders: a plain file, a read-only dir and an earlier run's dir."""
    notes = tmp_path / "notes.txt"
    notes.write_text("not a directory\n")
    earlier = tmp_path / "earlier-run"
    earlier.mkdir()
    (earlier / "metrics.json").write_text(json.dumps({"status": "completed", "k": 2.0}))
    (earlier / "train").mkdir()
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    config_dir = tmp_path / "conf"
    (config_dir / "data").mkdir(parents=True)
    (config_dir / "sinks").mkdir()  # a sink file written flat: its keys at the top
    (config_dir / "sinks" / "flat.yaml").write_text("_target_: my.Sink\nevery: 5\n")
    broken = "_target_: pipeline.data.LinearData\nk_true: [1, 2\nnoise_std: 0.1\n"
    (config_dir / "data" / "broken.yaml").write_text(broken)
    houses = tmp_path / "houses.csv"  # a data file: one text column, a target of prices
    houses.write_text(HOUSES)
    return {
        "<houses.csv>": str(houses),
        "<file>": str(notes),
        "<earlier run>": str(earlier),
        "<empty dir>": str(empty),
        "<config dir>": str(config_dir),
        "<100 KB of 9s>": "9" * 100_000,
        "<5000 9s>": "9" * 5000,
    }


def test_the_table_covers_every_input_the_issue_names():
    whats = {row.what for row in ROWS}
    assert whats >= NAMED
    assert {row.what for row in BAD_INPUT_ROWS} >= FAST_ROWS
    assert whats >= FAULT_ROWS | ELSEWHERE
    assert {r.what for r in ROWS if r.exit_code != 2} == FAULT_ROWS | {"a traceback, asked for"}


@pytest.mark.parametrize(
    "row",
    [
        pytest.param(row, id=row.what, marks=() if row.what in FAST_ROWS else pytest.mark.slow)
        for row in BAD_INPUT_ROWS
    ],
)
def test_bad_input_gets_one_line_and_exit_2_and_writes_nothing(
    row, paths, tmp_path, monkeypatch, capsys
):
    """In process (no TensorFlow, a fraction of a second): tbpipe's own main()."""
    from pipeline.__main__ import main

    if "<read-only dir>" in row.command:
        paths["<read-only dir>"] = read_only_dir(tmp_path)
    env, args = row.argv(paths)
    earlier = Path(paths["<earlier run>"])
    before = sorted(tmp_path.rglob("*"))
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():  # `NAME=value tbpipe ...`
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["tbpipe", *args])
    with pytest.raises(SystemExit) as ended:
        main()
    err = capsys.readouterr().err
    assert ended.value.code == row.exit_code == 2
    assert all(len(value) < 8 or value not in err for value in env.values())  # no secret shown
    assert len(err.splitlines()) == 1, err
    assert row.matches(err.rstrip("\n"), paths), f"\n got: {err}want: {row.message}"
    assert sorted(tmp_path.rglob("*")) == before  # no run dir, no .hydra, no outputs/
    assert json.loads((earlier / "metrics.json").read_text())["status"] == "completed"


@pytest.mark.slow  # starts a new process: in `make test`, not `make test-fast`
def test_console_script_prints_one_line_and_no_traceback(tmp_path):
    """The real `tbpipe`, as a user runs it: one line on stderr, exit 2, nothing written."""
    row = next(r for r in ROWS if r.what == "misspelled group option")
    env, args = row.argv({})
    result = run_tbpipe(*args, cwd=tmp_path, check=False)
    assert result.returncode == row.exit_code
    assert result.stderr.splitlines() == [row.message]
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # starts a new process: in `make test`, not `make test-fast`
def test_hydra_full_error_shows_the_traceback(tmp_path):
    row = next(r for r in ROWS if r.what == "a traceback, asked for")
    env, args = row.argv({})
    result = run_tbpipe(*args, cwd=tmp_path, check=False, env=env)
    assert result.returncode == row.exit_code
    assert row.message in result.stderr
    assert "MissingConfigException" in result.stderr


def test_a_good_command_passes_the_checks(tmp_path, monkeypatch):
    """The checks must not refuse what runs: the default config and a sweep over noise."""
    from pipeline.api import check_command_line

    monkeypatch.chdir(tmp_path)

    check_command_line([f"hydra.run.dir={tmp_path / 'new'}"])
    check_command_line(["-m", "data.noise_std=0,0.5", "model=linear,mlp", "seed=range(2)"])
    check_command_line(["model=mlp", "model.hidden=1", "optimizer=adam", "data.n_train=2"])
    assert list(tmp_path.iterdir()) == []
