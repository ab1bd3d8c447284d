"""What a job needs to know about the launcher that started it (joblib, submitit, Ray).

`LaunchedJob` is a Hydra callback named in conf/config.yaml (`hydra.callbacks.launched_job`).
Its `on_job_start` runs inside each job's own process, whatever the launcher, before the
task imports TensorFlow, and does three things:

- gives TensorFlow a fair share of the cores when several jobs share one machine
  (joblib runs `n_jobs` at once; submitit_local runs every job at once), through
  TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS, which TF reads when it starts. Without
  it every job starts one thread per core and the jobs fight over the CPUs;
- puts submitit's stdout/stderr files (kept in `submitit_folder`, outside the job dir) into
  the job dir as `stdout.log` / `stderr.log`, as hard links, so they keep growing with the
  job and survive deleting `.submitit/`;
- logs where the job ran (host, process, launcher, threads) to `<job dir>/tbpipe.log`.

Its `on_multirun_start` runs once, in the launching process: a launcher that cannot run on
this machine (Slurm without sbatch) stops there in one line, and for a parallel launcher
TensorFlow is loaded quietly up front (the sweep summary needs it in this process).

The sweep summary is not here: `pipeline.sweeps.summary.SweepSummary.on_multirun_end` runs once, in
the launching process, after the launcher has collected every job.
This module stays light (no TensorFlow, no joblib at import).
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict

from pipeline.check import registry
from pipeline.check.errors import EXIT_BAD_INPUT, BadInput, report

log = logging.getLogger(__name__)

#: Environment variables TensorFlow reads once, when its runtime starts.
TF_THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
#: launchers that run one job at a time in the launching process (pipeline/sweeps/stacked.py)
IN_PROCESS = ("basic", "stacked")


def launcher_name(launcher: DictConfig | dict) -> str:
    """`basic`, `joblib`, `submitit_local`, `submitit_slurm`, `ray`, ... from `_target_`."""
    target = str(launcher.get("_target_", ""))
    names = {
        "BasicLauncher": "basic",
        "StackedLauncher": "stacked",
        "JoblibLauncher": "joblib",
        "LocalLauncher": "submitit_local",
        "SlurmLauncher": "submitit_slurm",
        "RayLauncher": "ray",
    }
    return names.get(target.rsplit(".", 1)[-1], target or "unknown")


def usable_cpus() -> int:
    """CPUs this process may run on (respects taskset / Slurm's cgroup), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def jobs_at_once(n_jobs: int, cpus: int) -> int:
    """How many jobs joblib runs at once for `n_jobs` (-1: one per CPU, -2: all but one...)."""
    if n_jobs < 0:
        return max(1, cpus + 1 + n_jobs)
    return max(1, n_jobs)


def fair_share_of_cores(launcher: DictConfig | dict, cpus: int | None = None) -> int | None:
    """TensorFlow threads per job for this launcher; None leaves TF's default (all cores).

    basic: one job at a time, so TF keeps every core. joblib: the cores divided by the jobs
    it runs at once. submitit_local starts every job at once, so one thread each unless
    `cpus_per_task` says otherwise. On a cluster (Slurm, Ray) `cpus_per_task` when given;
    otherwise TF sees only the CPUs the scheduler gave the job.
    """
    cpus = cpus or usable_cpus()
    name = launcher_name(launcher)
    cpus_per_task = launcher.get("cpus_per_task")
    if name == "joblib":
        return max(1, cpus // jobs_at_once(int(launcher.get("n_jobs", -1)), cpus))
    if name == "submitit_local":
        return int(cpus_per_task) if cpus_per_task else 1
    if name != "basic" and cpus_per_task:
        return int(cpus_per_task)
    return None


def share_cores_with_tensorflow(threads: int) -> dict[str, str]:
    """Tell TF (not yet started in this process) to use `threads` threads per op pool.

    A value the user exported already wins. Returns the variables as TF will see them.
    """
    for name in TF_THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))
    return {name: os.environ[name] for name in TF_THREAD_VARIABLES}


def submitit_logs() -> tuple[Path, Path] | None:
    """(stdout, stderr) files of the submitit job this process runs, or None if not one."""
    try:
        import submitit

        paths = submitit.JobEnvironment().paths
    except Exception:  # not inside a submitit job (no submitit, or no job environment)
        return None
    return paths.stdout, paths.stderr


def link_into(source: Path, target: Path) -> str:
    """Put `source` at `target`: a hard link (same file, keeps growing), else a symlink."""
    if target.exists() or target.is_symlink():
        target.unlink()
    try:
        os.link(source, target)
        return "hard link"
    except OSError:  # another file system, or links not allowed: point at it instead
        target.symlink_to(source.resolve())
        return "symlink"


def check_launcher_can_run(launcher: DictConfig | dict) -> str | None:
    """Why this machine cannot launch with `launcher`, in one line; None when it can."""
    if launcher_name(launcher) == "submitit_slurm" and shutil.which("sbatch") is None:
        return (
            "hydra/launcher=slurm (submitit_slurm) needs Slurm's sbatch on PATH; none found on "
            "this machine. Run the sweep from a Slurm login node, or try the same code path "
            "here with hydra/launcher=submitit_local"
        )
    together = launcher.get("synced_together", 1) if launcher_name(launcher) == "stacked" else 1
    if isinstance(together, bool) or not isinstance(together, int) or together < 1:
        return (
            f"bad value hydra.launcher.synced_together={together}: must be a whole number "
            ">= 1 (how many written jobs are synced to disk together)"
        )
    return None


def register_tbpipe_sweeper() -> None:
    """Make `hydra/sweeper=tbpipe` known to Hydra before it runs a sweep.

    Hydra finds plugins by scanning the `hydra_plugins` package, which does not see the
    packages of an editable (`pip install -e`) install; registering the class works for
    every kind of install (a second registration changes nothing).
    """
    from hydra.core.plugins import Plugins

    sweeper = importlib.import_module("hydra_plugins.tbpipe_sweeper.tbpipe_sweeper")
    Plugins.instance().register(sweeper.TbpipeSweeper)


#: `ray.init` settings tbpipe gives a Ray cluster it starts, unless the user set them:
#: no dashboard (a web UI and its HTTP server)
RAY_INIT_DEFAULTS = {"include_dashboard": False}
#: and no token authentication, which writes ~/.ray/auth_token and warns at every start
RAY_ENV_DEFAULTS = {"RAY_AUTH_MODE": "disabled"}


def ray_defaults(launcher: DictConfig, environ: dict | None = None) -> dict[str, Any]:
    """`hydra/launcher=ray` starting a local cluster: dashboard and token off unless asked.

    Applied to the launcher's config (before Hydra builds the launcher) and to this
    process's environment (Ray reads RAY_AUTH_MODE when it starts). A value the user
    gave (`+hydra.launcher.ray.init.include_dashboard=true`, an exported RAY_AUTH_MODE)
    wins; nothing changes when Ray connects to a running cluster (`ray.init.address`).
    Returns what was set. The plugin's own config is named `ray` too, so this cannot be
    a YAML preset of that name: Hydra would match it against the plugin's schema and
    print a deprecation warning on every run.
    """
    environ = os.environ if environ is None else environ
    if launcher_name(launcher) != "ray" or launcher.ray.init.get("address") is not None:
        return {}
    chosen: dict[str, Any] = {}
    with open_dict(launcher.ray.init):
        for key, value in RAY_INIT_DEFAULTS.items():
            if launcher.ray.init.get(key) is None:
                launcher.ray.init[key] = chosen[key] = value
    for name, value in RAY_ENV_DEFAULTS.items():
        if name not in environ:
            environ[name] = chosen[name] = value
    return chosen


#: the package of tbpipe's own launcher classes (Hydra takes launchers from hydra_plugins only)
TBPIPE_LAUNCHERS = "hydra_plugins.tbpipe_launchers"


def register_tbpipe_launcher(launcher: DictConfig | dict) -> None:
    """Make sure Hydra knows tbpipe's launcher class when the config names one.

    Hydra finds launcher classes by walking the `hydra_plugins` package; an editable
    install (`pip install -e .`, `make setup`) puts hydra_plugins/tbpipe_launchers where
    that walk does not look. `Plugins.register` is Hydra's public way to add one by hand.
    """
    target = str(launcher.get("_target_", ""))
    if not target.startswith(TBPIPE_LAUNCHERS + "."):
        return
    from hydra.core.plugins import Plugins

    module_name, _, class_name = target.rpartition(".")
    plugin = getattr(importlib.import_module(module_name), class_name, None)
    if plugin is not None:  # None: its plugin is not installed; Hydra then says which
        Plugins.instance().register(plugin)


@registry.check_sweep
def launcher_can_run(cfg: DictConfig) -> None:
    """The preflight's check: refused before the sweep dir is created."""
    problem = check_launcher_can_run(cfg.hydra.launcher)
    if problem is not None:
        raise BadInput(problem)


class LaunchedJob(Callback):
    """Hydra callback: fair share of cores, submitit logs in the job dir, where the job ran."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """In the launching process, before any job: a launcher that cannot run here stops."""
        register_tbpipe_launcher(config.hydra.launcher)
        ray_defaults(config.hydra.launcher)
        problem = check_launcher_can_run(config.hydra.launcher)
        if problem is not None:
            report(problem)
            sys.exit(EXIT_BAD_INPUT)
        if launcher_name(config.hydra.launcher) not in IN_PROCESS:
            # The sweep summary at the end loads TensorFlow in this process (TensorBoard's
            # writer uses it). Load it now, quietly, as a basic sweep's first job does;
            # loaded by the summary it would print its start-up chatter under the table.
            from pipeline.tensorflow_quiet import import_tensorflow

            import_tensorflow()

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        launcher = config.hydra.launcher
        name = launcher_name(launcher)
        if name in IN_PROCESS:  # one job at a time, in this process: nothing to adapt
            return
        job_dir = Path(HydraConfig.get().runtime.output_dir)
        where = f"job {config.hydra.job.num} on {socket.gethostname()} pid {os.getpid()}"
        threads = fair_share_of_cores(launcher)
        if threads is not None:
            shown = share_cores_with_tensorflow(threads)
            where += f", TensorFlow threads {shown}"
        log.info("%s, launcher %s", where, name)
        logs = submitit_logs()
        if logs is not None:
            for source, name_in_job_dir in zip(logs, ("stdout.log", "stderr.log"), strict=True):
                if source.exists():
                    how = link_into(source, job_dir / name_in_job_dir)
                    log.info("%s: %s of %s", name_in_job_dir, how, source)
