"""README.md and docs/ARCHITECTURE.md name only what exists: files, modules, config keys,
tags, make targets and tbpipe subcommands. A rename that forgets the docs fails here."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "docs/ARCHITECTURE.md", "docs/PERFORMANCE.md"]
#: a file named in prose or a code block: `pipeline/app.py`, `sweeps/naming.py`, `conf/x.yaml`
FILE = re.compile(r"(?<![\w<.*/-])((?:[\w.-]+/)*[\w-]+\.(?:py|yaml|md|sh))\b")
#: `module.name` (in backticks) of one of tbpipe's modules: `compat.writer_from_handle`
ATTRIBUTE = re.compile(r"`(?:pipeline[./])?((?:\w+[./])*\w+)\.(\w+)`")
#: a config key in backticks: `trainer.steps`, `data.noise_std`
KEY = re.compile(r"`((?:trainer|data|model|optimizer|writer)\.\w+(?:\.\w+)*)(?<!\.py)(?!\w)")
#: a tag tbpipe writes, as the README's table of tabs names it
TAG = re.compile(r"`((?:k|loss|residuals|plots/fit|k/error|parameters/|outputs/)[^`<* ]*)")


def text_of(doc: str) -> str:
    return (ROOT / doc).read_text()


@functools.cache
def checkout_files() -> dict[str, list[Path]]:
    """Every file of the checkout but .venv's, by its name: one walk that never enters
    .venv (tens of thousands of files), shared by every name the docs give."""
    by_name: dict[str, list[Path]] = {}
    for folder, subfolders, names in os.walk(ROOT):
        subfolders[:] = [sub for sub in subfolders if sub != ".venv"]
        for name in names:
            by_name.setdefault(name, []).append(Path(folder) / name)
    return by_name


def where(name: str) -> Path | None:
    """The file a doc means by `name`: from the checkout's root or from pipeline/."""
    for base in (ROOT, ROOT / "pipeline"):
        if (base / name).exists():
            return base / name
    if "/" not in name:  # a bare file name: anywhere in the checkout but .venv
        return min(checkout_files().get(name, []), default=None)
    return None


def files_named(doc: str) -> list[str]:
    names = set()
    for match in FILE.finditer(text_of(doc)):
        name = match.group(1)
        if "tfevents" in name or name.startswith(("metrics.", "run.", ".hydra")):
            continue  # files a run writes (their names are checked by the run's tests)
        if name in {"config.yaml", "overrides.yaml", "hydra.yaml", "multirun.yaml"}:
            continue  # .hydra/ and a sweep's saved configs
        if name == "optimization_results.yaml":
            continue  # what Optuna's sweeper writes
        names.add(name)
    return sorted(names)


@pytest.mark.parametrize("doc", DOCS)
def test_every_file_a_doc_names_exists(doc):
    missing = [name for name in files_named(doc) if where(name) is None]
    assert missing == [], f"{doc} names files that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS)
def test_every_module_attribute_a_doc_names_exists(doc):
    """`compat.set_global_seed_keeping_kernels`, `CompiledLoop.adopt`: the name is defined."""
    sources = {p.stem: p for p in (ROOT / "pipeline").rglob("*.py")}
    every = "\n".join(p.read_text() for p in sources.values())
    missing = []
    for match in ATTRIBUTE.finditer(text_of(doc)):
        parts, name = re.split(r"[./]", match.group(1)), match.group(2)
        owner = parts[-1]
        if len(parts) > 1 and not (ROOT / "pipeline").joinpath(*parts[:-1], f"{owner}.py").exists():
            continue  # another package's name (`tf.summary.graph`, `hydra.job.chdir`)
        if name in {"py", "yaml", "md", "csv", "png", "sh", "json"}:
            continue  # a file, checked above
        if owner in sources:
            found = re.search(
                rf"\b(def|class) {name}\b|^{name}\b", sources[owner].read_text(), re.M
            )
        elif owner[:1].isupper():  # a class: one of its methods
            found = re.search(rf"class {owner}\b[\s\S]*?def {name}\b", every)
        else:
            continue  # not one of tbpipe's modules (e.g. `tf.random.set_seed`)
        if not found:
            missing.append(match.group(0))
    assert missing == [], f"{doc} names what the code does not define: {missing}"


@pytest.mark.parametrize("doc", DOCS)
def test_every_config_key_a_doc_names_is_in_the_config(doc):
    from tests.conftest import compose_config

    cfg = compose_config("model=mlp")
    keys = sorted({match.group(1) for match in KEY.finditer(text_of(doc))})
    missing = [key for key in keys if OmegaConf.select(cfg, key, default=KeyError) is KeyError]
    assert missing == [], f"{doc} names config keys the config lacks: {missing}"


def test_every_tag_the_readme_names_is_one_tbpipe_writes():
    from pipeline.sinks import tags

    written = {value for name, value in vars(tags).items() if name.isupper()}
    named = {match.group(1) for match in TAG.finditer(text_of("README.md"))}
    assert named, "the README names tags"
    missing = sorted(
        tag for tag in named if tag not in written and not tag.startswith(tags.PARAMETERS)
    )
    assert missing == [], f"README.md names tags tbpipe does not write: {missing}"


@pytest.mark.parametrize("doc", DOCS)
def test_every_command_a_doc_names_exists(doc):
    """`make X` is a Makefile target; `tbpipe X` a subcommand, a flag or an override."""
    from pipeline.__main__ import SUBCOMMANDS
    from pipeline.job import RUNS

    text = text_of(doc)
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    missing = [f"make {t}" for t in re.findall(r"\bmake ([a-z][\w-]*)", text) if t not in targets]
    for word in re.findall(r"^\s*tbpipe ([a-z]\w*)\b(?![=.\w])", text, re.M):
        if word not in {*SUBCOMMANDS, *RUNS, "help"}:
            missing.append(f"tbpipe {word}")
    assert missing == [], f"{doc} names commands that do not exist: {missing}"
