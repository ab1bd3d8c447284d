"""A non-editable install carries its configs: tbpipe runs from any directory.

Like Hydra's own hydra_app_example, we check that configs are found through the
package (`pkg://pipeline.conf`), not through the source tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every test here runs tbpipe in a subprocess

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed_site(tmp_path_factory) -> Path:
    """The wheel built from this checkout, installed (without deps) into a fresh folder."""
    tmp = tmp_path_factory.mktemp("installed")
    wheels, site = tmp / "wheels", tmp / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", wheels, ROOT], check=True)
    (wheel,) = wheels.glob("tbpipe-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", site, wheel], check=True)
    return site


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
