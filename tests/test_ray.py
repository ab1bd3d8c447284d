"""A sweep on a local Ray cluster (`hydra/launcher=ray`), installed beside joblib and Slurm.

The story: "my lab runs Ray". The same 2-job sweep as tests/test_launchers.py runs through
hydra-ray-launcher on a Ray cluster it starts on this machine (one CPU); every job's scalar
series must equal the basic launcher's bit for bit, and Ray's dashboard and its token
authentication stay off unless the user turns them on. `ray` is in the dev extra, so
these run in `make test`; `pytest -m "not slow"` leaves them out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import api
from pipeline.sweeps.launchers import ray_defaults
from tests.conftest import launcher_sweep
from tests.test_launchers import assert_one_summary, assert_same_results, job_dirs

pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="tbpipe[ray] is not installed")

#: the smallest local cluster: one CPU, so Ray starts one worker and runs both jobs in it,
#: one after the other (as the basic launcher runs them in one process): one Python and one
#: TensorFlow start in a worker instead of two
ONE_CPU = "+hydra.launcher.ray.init.num_cpus=1"


@pytest.fixture(scope="module")
def ray(tmp_path_factory) -> tuple[Path, str, str]:
    home = tmp_path_factory.mktemp("home")  # where Ray would write its token (~/.ray)
    return (*launcher_sweep(tmp_path_factory, "ray", ONE_CPU, env={"HOME": str(home)}), home)


@pytest.mark.slow
def test_ray_gives_the_same_job_dirs_and_bit_identical_scalars(basic, ray):
    sweep_dir, stdout, stderr, _ = ray
    assert_same_results(sweep_dir, basic[0])
    assert_one_summary(sweep_dir, stdout)
    assert "Traceback" not in stderr and "ERROR" not in stderr, stderr
    assert "WARNING" not in stderr, stderr  # e.g. Ray's "Token authentication is enabled"


@pytest.mark.slow
def test_ray_jobs_ran_in_ray_workers_without_dashboard_or_token(ray):
    sweep_dir, stdout, stderr, home = ray
    for job in job_dirs(sweep_dir).values():
        assert "launcher ray" in (job / "tbpipe.log").read_text()
    assert "(_run_job pid=" in stdout + stderr  # the jobs' output, relayed from Ray workers
    assert "'include_dashboard': False" in stdout, stdout  # the plugin logs ray.init's config
    assert "dashboard" not in stderr.lower(), stderr  # Ray names its URL when it starts one
    assert not (home / ".ray" / "auth_token").exists()


def test_ray_defaults_keep_what_the_user_set():
    cfg = api.compose_config("hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2")
    chosen = ray_defaults(cfg.hydra.launcher, environ={})
    assert chosen == {"include_dashboard": False, "RAY_AUTH_MODE": "disabled"}
    assert cfg.hydra.launcher.ray.init.include_dashboard is False
    assert cfg.hydra.launcher.ray.init.num_cpus == 2
    mine = api.compose_config(
        "hydra/launcher=ray", "+hydra.launcher.ray.init.include_dashboard=true"
    )
    assert ray_defaults(mine.hydra.launcher, environ={"RAY_AUTH_MODE": "token"}) == {}
    assert mine.hydra.launcher.ray.init.include_dashboard is True
    basic = api.compose_config()
    assert ray_defaults(basic.hydra.launcher, environ={}) == {}
