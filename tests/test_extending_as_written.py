"""docs/EXTENDING.md as a new user follows it: its commands and its Python line run as
written, give the numbers it prints, and a sink file written flat is one line naming the
file and the fix."""

from __future__ import annotations

import json
import re
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline.readback.runs import load_run
from tests.conftest import ROOT, environment_kept, run_tbpipe

pytestmark = pytest.mark.slow  # every test here runs tbpipe in a subprocess or trains

DOC = (ROOT / "docs" / "EXTENDING.md").read_text()
EXAMPLE = ROOT / "examples" / "quadratic"


def promised() -> tuple[str, str]:
    """The `a = ...`, `k = ...` the worked example promises after its 300 steps."""
    found = re.search(r"model reaches `a = ([\d.]+)`, `k = ([\d.]+)`", DOC)
    assert found, "EXTENDING.md no longer states the example's a and k"
    return found[1], found[2]


def python_block_lines(*starts: str) -> list[str]:
    """The lines of EXTENDING's Python example that begin with one of `starts`."""
    block = DOC.split("```python\nfrom pipeline import api\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.startswith(starts)]


@pytest.fixture()
def project(tmp_path) -> Path:
    """The repository's layout as a user has it: examples/quadratic under the cwd."""
    shutil.copytree(EXAMPLE, tmp_path / "examples" / "quadratic",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    return tmp_path


def test_the_worked_example_gives_the_numbers_the_doc_prints(
    quadratic_commands, project, monkeypatch
):
    a_doc, k_doc = promised()
    command = "tbpipe --config-dir conf +experiment=quadratic_two_param"
    assert f"    {command}  " in DOC  # the first command of "Run it from that folder"
    _, ran = quadratic_commands
    first = ran[0]  # run as written from examples/quadratic, into outputs/<date>/<time>
    assert first["words"] == command.split()
    assert "Traceback" not in first["stderr"] and "ERROR" not in first["stderr"], first["stderr"]
    run_dir = Path(first["dir"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["steps"] == 300
    assert f"{metrics['k']:.2f}" == k_doc
    a = load_run(run_dir / "train").scalars("curvature/a")[-1]
    assert a[0] == 300 and f"{a[1]:.2f}" == a_doc

    # the Python example's lines for the user's own pieces, as written, from the checkout,
    # run as a notebook runs them: in this process (its sys.path and modules put back after)
    lines = python_block_lines("from pipeline import api", "import sys", "sys.path", "quad =")
    assert len(lines) == 3, lines
    monkeypatch.chdir(project)
    monkeypatch.setattr(sys, "path", list(sys.path))
    notebook: dict = {}
    try:
        with environment_kept():
            exec("\n".join(["from pipeline import api", *lines]), notebook)
    finally:
        sys.modules.pop("quadratic", None)  # the user's module, imported from their folder
    k = notebook["quad"].metrics["k"]
    assert f"{k:.2f}" == k_doc
    assert k == metrics["k"]  # the command line's run, bit for bit


def test_a_sink_file_written_flat_is_one_line_naming_the_file_and_the_fix(project):
    folder = project / "examples" / "quadratic"
    flat = folder / "conf" / "sinks" / "curvature.yaml"
    flat.write_text(textwrap.dedent(
        """\
        _target_: quadratic.CurvatureSink
        a_true: ${data.a}
        every: 10
        """
    ))  # fmt: skip
    result = run_tbpipe("--config-dir", "conf", "data=quadratic", "sinks=[scalars,curvature]",
                        cwd=folder, check=False)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert str(flat) in result.stderr and '"curvature:"' in result.stderr, result.stderr
    assert "_target_, a_true, every" in result.stderr
    assert not (folder / "outputs").exists()  # nothing was started

    # a value in `sinks` that is not a sink at all names its key
    result = run_tbpipe("+sinks.extra=3", cwd=project, check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "sinks.extra" in result.stderr and "_target_" in result.stderr, result.stderr
