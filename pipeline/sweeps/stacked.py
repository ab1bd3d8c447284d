"""`hydra/launcher=stacked`: a sweep's jobs that differ only in values trained as one.

Hydra's basic launcher runs a sweep's jobs one after another, each training its own model.
In a noise x seed sweep they differ only in numbers (the data's noise, seed, k_true and x
range, the learning rate, the starting k), so this launcher first groups the jobs of a
batch whose training has the same shape, trains each group in one compiled loop with a
leading settings axis (pipeline/sweeps/stacked_train.py), then runs every job in order exactly as
the basic launcher does (Hydra's `run_job`: its dir and name, `.hydra/`, the callbacks, the
sweep summary at the end), except that its training replays the weights the group computed.
Each job's sinks, metrics.json and run.json come from the same code as under the basic
launcher.

What stacks (`stack_key`): the tutorial's `LinearModel`, or tbpipe's `MLPModel` of one
width and activation (pipeline/sweeps/stacked_mlp.py), a task minimising mean squared error,
tbpipe's `LinearData`, SGD or Adam, full-batch steps, tbpipe's own sinks. The jobs of a
group share the model's shape, the optimizer, the number of steps and of points. Any other
job (another model, a mini-batch, a user's piece) runs one by one as under the basic
launcher, and so does a job whose loss stopped being finite in the group (it ends
`diverged` the usual way).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from pipeline.compat import cache_interpolation_parses, config_container
from pipeline.runinfo import RESUME_ENV
from pipeline.sweeps.heap import freeze_a_first_batch, full_scans_waiting
from pipeline.sweeps.job_configs import ReusingConfigLoader
from pipeline.sweeps.stacked_logging import sweep_logging

log = logging.getLogger("hydra")  # the sweep's own lines: "[HYDRA] stacked 12 of 12 jobs ..."

#: the pieces a stacked group is made of, by `_target_`
LINEAR_MODEL = "pipeline.models.LinearModel"
MLP_MODEL = "pipeline.models.MLPModel"
LINEAR_DATA = "pipeline.data.LinearData"
OPTIMIZERS = ("pipeline.optimizers.SGD", "pipeline.optimizers.Adam")
MEAN_SQUARED_ERROR = ("mean_squared_error", "mse")


def stack_key(cfg: DictConfig) -> tuple | None:
    """What the jobs of one group share (optimizer, steps, points; an MLP's class, width
    and activation), or None: the job cannot be stacked and runs on its own."""
    from pipeline.contracts import target_of  # NumPy: loaded by a sweep, not by a plugin scan

    task = cfg.get("task")
    sinks = list((cfg.get("sinks") or {}).values())
    model = target_of(cfg.model)
    if (
        resumed(cfg)  # `tbpipe resume` goes on job by job, keeping finished jobs as they are
        or model not in (LINEAR_MODEL, MLP_MODEL)
        or (model == MLP_MODEL and not kept_by_the_mlp_loop(task))
        or target_of(cfg.data) != LINEAR_DATA
        or target_of(cfg.optimizer) not in OPTIMIZERS
        or (task is not None and str(task.get("loss")) not in MEAN_SQUARED_ERROR)
        or cfg.trainer.get("batch_size") is not None
        or not all(own_sink(node) for node in sinks)
    ):
        return None
    steps, data = int(cfg.trainer.steps), cfg.data
    key = (target_of(cfg.optimizer), steps, int(data.n_train), int(data.n_test))
    if model == MLP_MODEL:
        key += (MLP_MODEL, int(cfg.model.hidden), str(cfg.model.activation))
    return key


def kept_by_the_mlp_loop(task: Any) -> bool:
    """Whether every scalar of the task is one the stacked MLP loop computes (the loss,
    k and k/error): the others would need the weights of every step."""
    from pipeline.sweeps.stacked_write import KEPT
    from pipeline.tasks import LINE_FIT, scalar_names

    metrics = (LINE_FIT if task is None else task).get("metrics") or ()
    return set(scalar_names(list(metrics))) <= set(KEPT)


def resumed(cfg: DictConfig) -> bool:
    """Whether the job is one `tbpipe resume` runs again (pipeline/sweeps/resume.py sets
    its `hydra.job.env_set`, which Hydra applies only once the job runs)."""
    import os

    told = OmegaConf.select(cfg, f"hydra.job.env_set.{RESUME_ENV}", default=None)
    return os.environ.get(RESUME_ENV) == "1" or str(told) == "1"


def own_sink(node: Any) -> bool:
    """A sink of tbpipe's own that does the same in every job (a user's is not stacked)."""
    from pipeline.contracts import class_of
    from pipeline.reuse import owned_and_reusable  # loads TensorFlow: only once a sweep runs

    cls = class_of(str(node.get("_target_"))) if node is not None else None
    return cls is not None and owned_and_reusable(cls)


def setting_of(cfg: DictConfig) -> Any:
    """The job's data, drawn by its own `LinearData`, and its starting values (an MLP's
    weights drawn by its own `MLPModel`); k_true."""
    from pipeline.contracts import build_piece, check_data, target_of
    from pipeline.sweeps.stacked_train import Setting

    data = check_data("data", linear_data(cfg.data), LINEAR_DATA)
    weights = None
    if target_of(cfg.model) == MLP_MODEL:
        from pipeline.sweeps.stacked_mlp import starting_weights

        weights = starting_weights(build_piece(cfg.model, "model"))
    # each node's values read at once: `DictConfig.get` of a key a struct node lacks
    # (SGD's beta1) costs an exception inside OmegaConf
    model, optimizer = (OmegaConf.to_container(cfg[key], resolve=True) for key in PARAMETERS)
    return Setting(
        x_train=data.x_train,
        y_train=data.y_train,
        k_init=float(model.get("k_init", 0.0)),
        learning_rate=float(optimizer["learning_rate"]),
        beta1=float(optimizer.get("beta1", 0.9)),
        beta2=float(optimizer.get("beta2", 0.999)),
        epsilon=float(optimizer.get("epsilon", 1e-7)),
        x_test=data.x_test,
        y_test=data.y_test,
        weights=weights,
    ), data.k_true


#: the nodes a stacked job's starting values are read from
PARAMETERS = ("model", "optimizer")


def linear_data(node: DictConfig) -> Any:
    """The job's `LinearData` (`stack_key` found it is its data's class), as
    `contracts.build_piece` builds it: a node of plain values is the class called with them
    (tbpipe's own class, which keeps the data contract, with no nested `_target_` to check);
    any other node goes through `build_piece`."""
    from pipeline.contracts import build_piece
    from pipeline.data import LinearData

    values = OmegaConf.to_container(node, resolve=True)
    values.pop("_target_", None)
    if all(
        isinstance(name, str) and not name.startswith("_") and type(value) in PLAIN
        for name, value in values.items()
    ):
        return LinearData(**values)
    return build_piece(node, "data")


#: the values a `LinearData` node of a stacked job holds
PLAIN = (int, float, bool, str, type(None))


def scalars_only(cfg: DictConfig) -> tuple[Any, int, list] | None:
    """(the task, the scalars' cadence, the other sinks' nodes) when the job has tbpipe's
    `ScalarSink`, every scalar of its task is one the stacked loop keeps and every other
    sink is one the launcher writes (pipeline/sweeps/stacked_sinks.py): then the launcher
    writes the job itself (pipeline/sweeps/stacked_write.py). None: its sinks replay it."""
    nodes = list((cfg.get("sinks") or {}).values())
    # the jobs of a sweep share their task and sinks: each set read once, unless a value
    # in them is an interpolation (it may read what differs between jobs)
    task_node = cfg.get("task")
    task_given = None if task_node is None else config_container(task_node)
    given = repr([task_given, [config_container(node) for node in nodes]])
    if "${" in given or given not in _scalars_only_seen:
        if len(_scalars_only_seen) >= SCALARS_ONLY_KEPT:
            _scalars_only_seen.clear()
        _scalars_only_seen[given] = _scalars_only_of(cfg, nodes)
    seen = _scalars_only_seen[given]
    if seen is None:
        return None
    task, every, scalar_index = seen
    return task, every, [node for index, node in enumerate(nodes) if index != scalar_index]


#: `_scalars_only_of` by the task and sinks it read (a sweep has one or a few)
_scalars_only_seen: dict[str, Any] = {}
SCALARS_ONLY_KEPT = 64


def _scalars_only_of(cfg: DictConfig, nodes: list) -> Any:
    """`scalars_only`'s (task, cadence, the scalar sink's place among the sinks), or None."""
    from pipeline.app import task_config
    from pipeline.contracts import build_task, class_of
    from pipeline.sinks.scalars import ScalarSink
    from pipeline.sweeps.stacked_sinks import writable
    from pipeline.sweeps.stacked_write import KEPT

    scalar_nodes = [n for n in nodes if class_of(str(n.get("_target_"))) is ScalarSink]
    if len(scalar_nodes) != 1:
        return None
    task = build_task(task_config(cfg))
    if not set(task.scalars) <= set(KEPT):
        return None
    others = [node for node in nodes if node is not scalar_nodes[0]]
    if not all(writable(node, task) for node in others):
        return None
    index = next(i for i, node in enumerate(nodes) if node is scalar_nodes[0])
    return task, int(scalar_nodes[0].get("every", 1)), index


@dataclass
class StackedJob:
    """What the launcher hands one job of a group: the path of its weights (its sinks
    replay them), or its scalars (the launcher writes the job itself)."""

    path: list  # one array per trainable variable, each (kept steps, *shape)
    scalars: Any = None  # pipeline.sweeps.stacked_write.Scalars, or None
    #: for a path of some steps only: each step's row of it, and the task's scalars of
    #: every step (stacked_train.ReplayTrainer); None: every step's weights, in order
    rows: Any = None
    columns: Any = None


def stacked_jobs(configs: Sequence[DictConfig]) -> tuple[dict[int, StackedJob], int]:
    """Train every group of stackable jobs; {job index: what it runs from}, and how many
    groups. A job whose data cannot be drawn is left to run on its own (and say why)."""
    from pipeline.tensorflow_quiet import apply_inter_op_threads, import_tensorflow

    if not configs:
        return {}, 0
    from pipeline.sweeps.stacked_sinks import start_fit_pictures

    start_fit_pictures(configs[0])  # while TensorFlow loads
    threads = configs[0].trainer.get("inter_op_threads")
    import_tensorflow(threads)  # quietly, as a basic sweep's first job does
    apply_inter_op_threads(threads)  # as the jobs run (fixed by TensorFlow's first op)
    groups: dict[tuple, list[tuple[int, Any, Any]]] = {}
    for index, cfg in enumerate(configs):
        key = stack_key(cfg)
        if key is None:
            continue
        try:
            setting, k_true = setting_of(cfg)
        except Exception:  # the job's own run reports it, in its own words
            continue
        groups.setdefault(key, []).append((index, setting, k_true))
    if not groups:
        return {}, 0
    from pipeline.sweeps.stacked_sinks import job_sinks
    from pipeline.sweeps.stacked_train import train_stacked
    from pipeline.sweeps.stacked_write import Scalars, scalars_of, written_steps

    jobs: dict[int, StackedJob] = {}
    mlp = {key: members for key, members in groups.items() if key[4:5] == (MLP_MODEL,)}
    trained_groups = 0
    if mlp:  # their own loop, within a bound on memory (maybe in several groups)
        from pipeline.sweeps.stacked_mlp import stacked_mlp_jobs

        mlp_jobs, trained_groups = stacked_mlp_jobs(mlp, configs)
        jobs.update(mlp_jobs)
    for key, members in groups.items():
        optimizer, steps = key[0], key[1]
        if key in mlp:
            continue
        trained_groups += 1
        trained = train_stacked([setting for _, setting, _ in members], optimizer, steps)
        share = trained.seconds / len(members)
        for column, (index, setting, k_true) in enumerate(members):
            if not trained.finite[column]:  # a diverging job runs on its own, to say where
                continue
            jobs[index] = StackedJob([trained.k[:, column]])
            written = scalars_only(configs[index]) if trained.test_loss is not None else None
            if written is not None and k_true is not None:
                task, every, others = written
                sinks = job_sinks(configs[index], others, trained.k[:, column], setting, k_true)
                if others and sinks is None:  # its sinks replay it
                    continue
                jobs[index].scalars = Scalars(
                    written_steps(steps, every),
                    scalars_of(task.scalars, trained.k[:, column], trained.train_loss[:, column],
                               trained.test_loss[:, column], k_true, every),
                    float(k_true), task.main_metric, share, sinks,
                )  # fmt: skip
    return jobs, trained_groups


#: what the launcher runs now (`replaying`): the job's StackedJob, or None
_current: StackedJob | None = None


@contextmanager
def replaying(job: StackedJob | None) -> Iterator[None]:
    """While the launcher runs one job: what its group computed for it. None: the job
    trains as usual."""
    global _current
    _current = job
    try:
        yield
    finally:
        _current = None


def replay_trainer() -> Callable | None:
    """What pipeline/job.py hands `app.run` as its trainer: one replaying the weights of the
    job running now, or None (the job trains: any launcher but this one, or a job that
    was not stacked)."""
    if _current is None:
        return None
    from pipeline.sweeps.stacked_train import ReplayTrainer

    job = _current
    return functools.partial(ReplayTrainer, job.path, rows=job.rows, columns=job.columns)


#: jobs this process's launcher wrote itself (a process that ran jobs leaves without teardown)
jobs_written = 0


class StackedLauncher(Launcher):
    """Hydra's basic launcher with each group of same-shape jobs trained as one."""

    def __init__(self, synced_together: int = 32) -> None:
        super().__init__()
        #: written jobs whose run.json and metrics.json are synced to disk together
        self.synced_together = synced_together
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """As the basic launcher, with a job's config a copy of its template
        (pipeline/sweeps/job_configs.py), as tbpipe's sweeper gives the basic launcher."""
        loader = hydra_context.config_loader
        if not isinstance(loader, ReusingConfigLoader):
            loader = ReusingConfigLoader(loader)
        self.hydra_context = HydraContext(config_loader=loader, callbacks=hydra_context.callbacks)
        self.config, self.task_function = config, task_function

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Compose every job of the batch, train the groups, then run the jobs in order."""
        setup_globals()
        cache_interpolation_parses()  # every job reads the same `${...}` texts
        assert self.config is not None and self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        configs = []
        with full_scans_waiting():  # each config stays until its job runs: none is garbage
            for num, overrides in enumerate(job_overrides, start=initial_job_idx):
                loader = self.hydra_context.config_loader
                cfg = loader.load_sweep_config(self.config, list(overrides))
                with open_dict(cfg):
                    cfg.hydra.job.id = num
                    cfg.hydra.job.num = num
                configs.append(cfg)
        jobs, groups = stacked_jobs(configs)  # TensorFlow loaded quietly there
        freeze_a_first_batch()
        direct = sum(job.scalars is not None for job in jobs.values())
        log.info(
            f"stacked {len(jobs)} of {len(configs)} jobs in {groups} "
            f"group{'s' * (groups != 1)} ({direct} written straight from the group's tensors); "
            "the others run one by one"
        )
        from pipeline.sweeps.stacked_write import DurableWrites

        with DurableWrites(self.synced_together) as durable:  # all on disk when it ends
            return self._run_jobs(job_overrides, initial_job_idx, configs, jobs, durable)

    def _run_jobs(
        self,
        job_overrides: Sequence[Sequence[str]],
        initial_job_idx: int,
        configs: list,
        jobs: dict,
        durable: Any,
    ) -> list[JobReturn]:
        """The batch's jobs in order: written from their group's tensors, or run by Hydra."""
        global jobs_written
        runs = []
        for index, (overrides, cfg) in enumerate(zip(job_overrides, configs, strict=True)):
            log.info(f"\t#{initial_job_idx + index} : {' '.join(filter_overrides(overrides))}")
            job = jobs.get(index)
            if job is not None and job.scalars is not None:  # no pieces, no replay
                from pipeline.sweeps.stacked_write import write_job
                from pipeline.sweeps.summary import hand_over

                hand_over(cfg, job.scalars)  # the sweep summary's values: its files not read
                callbacks = self.hydra_context.callbacks
                runs.append(write_job(cfg, job.scalars, callbacks, self.task_function, durable))
                jobs_written += 1
            else:
                with replaying(job):
                    runs.append(
                        run_job(
                            hydra_context=self.hydra_context,
                            task_function=self.task_function,
                            config=cfg,
                            job_dir_key="hydra.sweep.dir",
                            job_subdir_key="hydra.sweep.subdir",
                        )
                    )
            configs[index] = None  # its .hydra/ holds it; the sweep's memory stays flat
            sweep_logging.configure(self.config.hydra)  # Hydra's configure_log(hydra_logging)
        return runs
