"""Shared fixtures: run the real `tbpipe` console script, or compose configs in process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hydra import compose
from omegaconf import DictConfig

from pipeline.check.compose import tbpipe_configs

TBPIPE = str(Path(sys.executable).with_name("tbpipe"))
#: the checkout: tests that import test modules from a subprocess run there
ROOT = Path(__file__).resolve().parents[1]


#: fixtures that run tbpipe (a run, a sweep, a search) in a subprocess: tests using them are slow
SLOW_FIXTURES = {"default_run", "noise_sweep", "two_searches", "basic", "joblib", "submitit_local"}


def pytest_collection_modifyitems(items: list) -> None:
    """`make test-fast` (-m "not slow") leaves out every test that needs a real run.

    The files with the most such tests run first: `make test` gives each of its workers
    a whole file at a time, in this order, so the long files start early and the quick
    in-process ones fill the end instead of one long file running alone at the end.
    """
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    slow_tests = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow_tests[item.path])  # stable: each file's order is kept


@pytest.fixture(autouse=True, scope="session")
def report_cache_of_this_session(tmp_path_factory) -> None:
    """`tbpipe report` keeps what it read in a cache dir: the tests' own, not the user's."""
    os.environ["TBPIPE_CACHE_DIR"] = str(tmp_path_factory.mktemp("tbpipe-cache"))


def run_tbpipe(
    *args: str, cwd: Path, check: bool = True, timeout: float = 300, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run the installed console script as a user would; output is captured as text."""
    result = subprocess.run(
        [TBPIPE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"tbpipe {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def compose_config(*overrides: str) -> DictConfig:
    """The config `tbpipe <overrides>` would run, composed with Hydra's compose API."""
    with tbpipe_configs():
        return compose(config_name="config", overrides=list(overrides))


#: the small sweep every launcher runs (tests/test_launchers.py, test_slurm.py, test_ray.py)
LAUNCHER_SWEEP = (
    "-m",
    "data.noise_std=0.1,1",
    "trainer.steps=50",
    "trainer.progress=false",
    "sinks=[scalars]",
)


def launcher_sweep(
    tmp_path_factory, launcher: str, *more: str, env: dict | None = None
) -> tuple[Path, str, str]:
    """Run LAUNCHER_SWEEP under `hydra/launcher=<launcher>`: the sweep dir, stdout, stderr."""
    workdir = tmp_path_factory.mktemp(launcher)
    sweep_dir = workdir / "sweep"
    result = run_tbpipe(
        *LAUNCHER_SWEEP,
        f"hydra/launcher={launcher}",
        f"hydra.sweep.dir={sweep_dir}",
        *more,
        cwd=workdir,
        env=env,
    )
    return sweep_dir, result.stdout, result.stderr


@pytest.fixture(scope="session")
def basic(tmp_path_factory) -> tuple[Path, str, str]:
    """LAUNCHER_SWEEP under the basic launcher: what every other launcher must equal."""
    return launcher_sweep(tmp_path_factory, "basic")


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> Path:
    """One run of the default experiment through the console script; returns its run dir."""
    workdir = tmp_path_factory.mktemp("default")
    run_dir = workdir / "run"
    result = run_tbpipe(f"hydra.run.dir={run_dir}", cwd=workdir)
    assert f"logs: {run_dir}" in result.stdout or "logs: run" in result.stdout
    return run_dir


def hparams_session_groups(logdir: Path, runs=None) -> list:
    """What the HPARAMS tab asks for (its session groups), through the plugin's own backend."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups

    if runs is None:
        runs = pem.EventMultiplexer()
        runs.AddRunsFromDirectory(str(logdir))
        runs.Reload()
    tb_context = base_plugin.TBContext(
        logdir=str(logdir),
        multiplexer=runs,
        data_provider=data_provider.MultiplexerDataProvider(runs, str(logdir)),
    )
    request = api_pb2.ListSessionGroupsRequest(
        start_index=0,
        slice_size=1000,
        allowed_statuses=[
            api_pb2.STATUS_UNKNOWN,
            api_pb2.STATUS_SUCCESS,
            api_pb2.STATUS_FAILURE,
            api_pb2.STATUS_RUNNING,
        ],
    )
    response = list_session_groups.Handler(
        context.RequestContext(), backend_context.Context(tb_context), "", request
    ).run()
    assert response.total_size == len(response.session_groups)
    return list(response.session_groups)
