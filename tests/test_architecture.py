"""The module map in docs/ARCHITECTURE.md is the code's: every module named, imports point down."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pipeline"
STAGE = re.compile(r"^\s{4}stage (\d)\s+(.+?)\s*$")
MODULE = re.compile(r"^\s{6}(\S+\.py)\s")


def documented_map() -> dict[str, tuple[int, str]]:
    """module path (relative to pipeline/) -> (stage number, stage name), from the doc."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    section = text.split("## Modules", 1)[1].split("\n## ", 1)[0]
    found, stage = {}, None
    for line in section.splitlines():
        if match := STAGE.match(line):
            stage = (int(match.group(1)), match.group(2))
        elif (match := MODULE.match(line)) and stage is not None:
            found[match.group(1)] = stage
    return found


def module_files() -> list[str]:
    return sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py"))


def pipeline_imports(path: Path) -> set[str]:
    """Every `pipeline.*` module the file imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] == "pipeline"}


def file_of(module: str) -> str | None:
    """pipeline.check.errors -> check/errors.py; a package -> its __init__.py; else None."""
    parts = module.split(".")[1:]
    if not parts:
        return "__init__.py"
    if (PACKAGE.joinpath(*parts[:-1]) / f"{parts[-1]}.py").exists():
        return "/".join(parts) + ".py"
    if (PACKAGE.joinpath(*parts) / "__init__.py").exists():
        return "/".join([*parts, "__init__.py"])
    return None  # a name imported from a module (from pipeline.x import name)


def test_every_module_is_on_the_map_and_nothing_else():
    documented = documented_map()
    assert sorted(documented) == module_files()


def test_at_most_eighteen_modules_directly_in_pipeline():
    """The doorways (__main__, job, api) and the run core; more goes into a stage package."""
    assert len([p for p in PACKAGE.glob("*.py")]) <= 18


@pytest.mark.parametrize("module", module_files())
def test_imports_point_down(module):
    stages = documented_map()
    rank, stage = stages[module]
    for imported in pipeline_imports(PACKAGE / module):
        target = file_of(imported)
        if target is None or target.startswith("conf/") or target not in stages:
            continue
        their_rank, their_stage = stages[target]
        assert their_rank < rank or their_stage == stage, (
            f"{module} ({stage}) imports {imported} ({their_stage}): arrows point down only"
        )


@pytest.mark.parametrize("module", [m for m in module_files() if m.startswith("check/")])
def test_the_checks_import_no_tensorflow(module):
    source = (PACKAGE / module).read_text()
    assert not re.search(r"^\s*(import tensorflow|from tensorflow)", source, re.M), module


def test_the_console_script_is_a_dispatcher():
    """`tbpipe` itself only dispatches: each of its functions stays short enough to read at
    once (the run is made ready in pipeline/job.py, run by Hydra)."""
    tree = ast.parse((PACKAGE / "__main__.py").read_text())
    lengths = {node.name: node.end_lineno - node.lineno + 1 for node in tree.body
               if isinstance(node, ast.FunctionDef)}  # fmt: skip
    assert {"main", "_task"} <= set(lengths), lengths
    assert all(length < 40 for length in lengths.values()), lengths
