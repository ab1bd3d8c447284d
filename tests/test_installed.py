"""A non-editable install carries its configs: tbpipe runs from any directory; and
installing tbpipe (editable, as `make setup` does, or a wheel) prints no setuptools warning.

Like Hydra's own hydra_app_example, we check that configs are found through the
package (`pkg://pipeline.conf`), not through the source tree.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every test here runs tbpipe in a subprocess

ROOT = Path(__file__).resolve().parents[1]


PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
#: what the Makefile sets for its editable install (one informational note of setuptools)
MAKEFILE_WARNINGS = re.search(
    r'^EDITABLE_NOTE_OFF := PYTHONWARNINGS="(.+)"$', (ROOT / "Makefile").read_text(), re.M
).group(1)
#: pip's note about a configured local index that lacks a package: this machine's pip config
LOCAL_INDEX_NOTE = re.compile(r"WARNING: Location '(file://\S+?)/[^/]+/' is ignored: .*")


def pip_log(*args, env: dict | None = None) -> str:
    """Run pip quietly (as the Makefile does); return what it printed, stdout and stderr."""
    result = subprocess.run(
        [*PIP, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert result.returncode == 0, result.stdout
    return result.stdout


def plain_pip() -> dict[str, str]:
    """The environment of pip on a machine without a pip configuration (PyPI only)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k == "PIP_CERT"}
    return {**env, "PIP_CONFIG_FILE": os.devnull}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """The wheel built from this checkout with this machine's pip, installed (without deps)
    into a fresh folder; and what pip printed building it."""
    tmp = tmp_path_factory.mktemp("installed")
    wheels, site = tmp / "wheels", tmp / "site"
    log = pip_log("wheel", "--no-deps", "-w", wheels, ROOT)
    (wheel,) = wheels.glob("tbpipe-*.whl")
    subprocess.run([*PIP, "install", "--no-deps", "--target", site, wheel], check=True)
    return {"site": site, "log": log}


@pytest.fixture(scope="module")
def installed_site(built) -> Path:
    return built["site"]


@pytest.mark.parametrize("kind", ["editable", "wheel"])
def test_a_plain_machine_builds_tbpipe_without_a_word(kind, tmp_path):
    """No setuptools warning (license, package data, discovery): pip prints nothing at all."""
    env = plain_pip()
    if kind == "editable":  # as `make setup` installs it, into a fresh environment
        venv.create(tmp_path / "venv", with_pip=False)
        python = tmp_path / "venv" / "bin" / "python"
        env["PYTHONWARNINGS"] = MAKEFILE_WARNINGS
        log = pip_log("--python", python, "install", "--no-deps", "-e", ROOT, env=env)
        where = subprocess.run(  # the configs, found through the package (no deps here)
            [python, "-c", "import importlib.util as u; "
             "print(*u.find_spec('pipeline.conf').submodule_search_locations)"],
            capture_output=True, text=True, check=True, cwd=tmp_path,
        ).stdout.strip()  # fmt: skip
        assert (Path(where) / "config.yaml").is_file() and (Path(where) / "model").is_dir()
    else:
        log = pip_log("wheel", "--no-deps", "-w", tmp_path, ROOT, env=env)
        assert list(tmp_path.glob("tbpipe-*.whl"))
    assert log == ""


def test_this_machine_adds_only_notes_about_its_own_pip_config(built):
    """Here pip also names the local indexes this machine's pip config lists (extra-index-url)
    that lack a package; those lines come from the machine, not from tbpipe."""
    configured = subprocess.run(
        [*PIP, "config", "list"], capture_output=True, text=True, check=True
    ).stdout
    for line in built["log"].splitlines():
        note = LOCAL_INDEX_NOTE.fullmatch(line)
        assert note and note.group(1) in configured, line


def test_wheel_ships_the_configs(installed_site):
    conf = installed_site / "pipeline" / "conf"
    shipped = {p.relative_to(conf).as_posix() for p in conf.rglob("*.yaml")}
    in_repo = {p.relative_to(ROOT / "conf").as_posix() for p in (ROOT / "conf").rglob("*.yaml")}
    assert shipped == in_repo


def test_installed_package_runs_from_another_directory(installed_site, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(installed_site)}
    where = subprocess.run(
        [sys.executable, "-c", "import pipeline; print(pipeline.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(installed_site))
    run_dir = tmp_path / "run"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "trainer.steps=5",
            "sinks=[]",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
    info = subprocess.run(
        [sys.executable, "-m", "pipeline", "--info", "searchpath"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "pkg://pipeline.conf" in info.stdout
