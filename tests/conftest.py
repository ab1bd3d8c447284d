"""Shared fixtures: run the real `tbpipe` console script, or compose configs in process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from filelock import FileLock
from hydra import compose
from omegaconf import DictConfig

from pipeline.check.compose import tbpipe_configs

TBPIPE = str(Path(sys.executable).with_name("tbpipe"))
#: the checkout: tests that import test modules from a subprocess run there
ROOT = Path(__file__).resolve().parents[1]


#: fixtures that run tbpipe (a run, a sweep, a search) in a subprocess: tests using them are slow
SLOW_FIXTURES = {
    "default_run", "noise_sweep", "two_searches", "basic", "joblib", "submitit_local",
    "quadratic_commands", "grid_sweep",
}  # fmt: skip


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
    environment = {**os.environ, **(env or {})}
    result = subprocess.run(
        [TBPIPE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=environment
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"tbpipe {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


@contextmanager
def environment_kept() -> Iterator[None]:
    """os.environ as it was after the block: a run in this process may set variables
    (TensorFlow's log level, a config's `hydra.job.env_set`) that every `tbpipe` a later
    test starts would inherit."""
    kept = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(kept)


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


def made_once(tmp_path_factory, key: str, make: Callable[[Path], object]) -> object:
    """`make(folder)` once per `pytest` command, whatever the number of xdist workers.

    A session fixture is made once per worker; the runs that test files on both workers
    read (the default run, the basic launcher's sweep) are made by whichever worker asks
    first, under a lock, into a folder both share, and the other worker waits and reads
    them. `make` returns what the fixture gives (JSON: paths as strings); it must leave
    the folder as every reader expects it, so readers only read.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # pytest-N/, above each worker's popen-gwK/
    folder, made = root / f"made-once-{key}", root / f"made-once-{key}.json"
    with FileLock(f"{folder}.lock"):
        if not made.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a make that failed half-way
            folder.mkdir()
            made.write_text(json.dumps(make(folder)))
    return json.loads(made.read_text())


def launcher_sweep(
    tmp_path_factory, launcher: str, *more: str, env: dict | None = None
) -> tuple[Path, str, str]:
    """Run LAUNCHER_SWEEP under `hydra/launcher=<launcher>`: the sweep dir, stdout, stderr."""
    return sweep_of_launcher(tmp_path_factory.mktemp(launcher), launcher, *more, env=env)


def sweep_of_launcher(
    workdir: Path, launcher: str, *more: str, env: dict | None = None
) -> tuple[Path, str, str]:
    """LAUNCHER_SWEEP under `hydra/launcher=<launcher>` from `workdir`, into workdir/sweep."""
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


def made_launcher_sweep(tmp_path_factory, launcher: str) -> tuple[Path, str, str]:
    """LAUNCHER_SWEEP under `launcher`, made once for every worker: the sweep dir, stdout,
    stderr."""

    def make(workdir: Path) -> list[str]:
        sweep_dir, stdout, stderr = sweep_of_launcher(workdir, launcher)
        return [str(sweep_dir), stdout, stderr]

    sweep_dir, stdout, stderr = made_once(tmp_path_factory, launcher, make)
    return Path(sweep_dir), stdout, stderr


@pytest.fixture(scope="session")
def basic(tmp_path_factory) -> tuple[Path, str, str]:
    """LAUNCHER_SWEEP under the basic launcher: what every other launcher must equal."""
    return made_launcher_sweep(tmp_path_factory, "basic")


@pytest.fixture(scope="session")
def joblib(tmp_path_factory) -> tuple[Path, str, str]:
    """LAUNCHER_SWEEP under joblib (tests/test_launchers.py; resumed in a copy by
    tests/test_resume_launchers.py)."""
    return made_launcher_sweep(tmp_path_factory, "joblib")


@pytest.fixture(scope="session")
def submitit_local(tmp_path_factory) -> tuple[Path, str, str]:
    """LAUNCHER_SWEEP under submitit_local (as joblib)."""
    return made_launcher_sweep(tmp_path_factory, "submitit_local")


#: the noise levels of `noise_sweep`
NOISE_LEVELS = ("0.01", "0.5", "2")


@pytest.fixture(scope="session")
def noise_sweep(tmp_path_factory) -> tuple[Path, str]:
    """`tbpipe -m data.noise_std=0.01,0.5,2` (150 steps, scalars, HParams and histograms):
    the sweep dir and what the sweep printed. Made once for every worker: the sweeps'
    story (tests/test_sweeps.py) and `tbpipe board` (test_board.py) read it; only read."""

    def make(workdir: Path) -> list[str]:
        sweep_dir = workdir / "sweep"
        result = run_tbpipe(
            "-m",
            f"data.noise_std={','.join(NOISE_LEVELS)}",
            "trainer.steps=150",
            "optimizer.learning_rate=0.5",  # converged well within 150 steps
            "trainer.progress=false",
            "sinks=[scalars,hparams,histograms]",
            f"hydra.sweep.dir={sweep_dir}",
            cwd=workdir,
        )
        return [str(sweep_dir), result.stdout]

    sweep_dir, stdout = made_once(tmp_path_factory, "noise", make)
    return Path(sweep_dir), stdout


#: 2 noise levels x 2 learning rates x 3 seeds = 12 jobs (two digits); 1000 diverges
GRID = ("data.noise_std=0.1,1", "optimizer.learning_rate=0.5,1000", "seed=0,1,2")


@pytest.fixture(scope="session")
def grid_sweep(tmp_path_factory) -> tuple[Path, str, str]:
    """`tbpipe -m` over GRID, 30 steps, the default sinks, half of it diverging: the sweep
    dir, stdout, stderr. Made once for every worker: TensorBoard's tabs and landing view
    (tests/test_tensorboard_tabs.py, test_landing.py) and the seeds summary's failed
    settings (test_seeds.py) read it; only read."""

    def make(workdir: Path) -> list[str]:
        result = run_tbpipe("-m", *GRID, "trainer.steps=30", "trainer.progress=false",
                            "hydra.sweep.dir=sweep", cwd=workdir)  # fmt: skip
        return [str(workdir / "sweep"), result.stdout, result.stderr]

    sweep_dir, stdout, stderr = made_once(tmp_path_factory, "grid", make)
    return Path(sweep_dir), stdout, stderr


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> Path:
    """One run of the default experiment through the console script; returns its run dir.
    Made once for every worker (several files read it). What the command printed is kept
    beside the run dir (`default_run_output`)."""

    def make(workdir: Path) -> str:
        run_dir = workdir / "run"
        result = run_tbpipe(f"hydra.run.dir={run_dir}", cwd=workdir)
        assert f"logs: {run_dir}" in result.stdout or "logs: run" in result.stdout
        (workdir / "stdout.txt").write_text(result.stdout)
        (workdir / "stderr.txt").write_text(result.stderr)
        return str(run_dir)

    return Path(made_once(tmp_path_factory, "default", make))


@pytest.fixture(scope="session")
def default_run_output(default_run) -> tuple[str, str]:
    """What `tbpipe hydra.run.dir=<abs>/run`, run from the run dir's parent, printed:
    stdout and stderr."""
    return (
        (default_run.parent / "stdout.txt").read_text(),
        (default_run.parent / "stderr.txt").read_text(),
    )


#: docs/EXTENDING.md's worked example, a user's own model, data and sink
QUADRATIC = ROOT / "examples" / "quadratic"


def extending_commands() -> list[list[str]]:
    """The commands docs/EXTENDING.md gives to type in examples/quadratic, word by word."""
    text = (ROOT / "docs" / "EXTENDING.md").read_text()
    block = text.split("    cd examples/quadratic\n", 1)[1].split("\n\n", 1)[0]
    return [[w.strip("'") for w in line.split("#")[0].split()] for line in block.splitlines()]


@pytest.fixture(scope="session")
def quadratic_commands(tmp_path_factory) -> tuple[Path, list[dict]]:
    """EXTENDING's commands for examples/quadratic, each run once through the console
    script from a copy of that folder (examples/quadratic under a user's project): the
    folder, and per command its words, the dir it wrote, its stdout and its stderr.

    The first runs exactly as written (its 300 steps, into outputs/); the sweep of both
    models at 300 steps too (the MLP's own 1,000 prove nothing more here: its jobs' numbers
    are read); the other single runs, whose numbers nothing reads, at 20 steps. Each into
    its own dir. Made once for every worker: the front door, EXTENDING's worked example
    and the user's pieces tests read them.
    """

    def make(project: Path) -> list[dict]:
        folder = project / "examples" / "quadratic"
        shutil.copytree(QUADRATIC, folder, ignore=shutil.ignore_patterns("__pycache__"))
        ran = []
        for number, words in enumerate(extending_commands()):
            more = [f"trainer.steps={300 if '-m' in words else 20}"] if number else []
            if number:
                more.append(
                    f"hydra.sweep.dir=s{number}" if "-m" in words else f"hydra.run.dir=r{number}"
                )
            result = run_tbpipe(*words[1:], *more, cwd=folder)
            where = folder / (f"s{number}" if "-m" in words else f"r{number}")
            if not number:
                (where,) = (folder / "outputs").glob("*/*")
            ran.append({"words": words, "dir": str(where), "stdout": result.stdout,
                        "stderr": result.stderr})  # fmt: skip
        return ran

    ran = made_once(tmp_path_factory, "quadratic", make)
    return Path(ran[0]["dir"]).parents[2], ran


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
