"""A stacked job's other sinks (graph, histograms, images, text, HParams) written by their own code.

Under `hydra/launcher=stacked` the launcher writes a job straight from its group's tensors
(pipeline/sweeps/stacked_write.py) when it can write every sink the job has. The scalars
are columns of the group's loop; the other sinks of tbpipe's default config need the job's
model at a few steps, its data and its config, and nothing else of the run. So each is
called here as `app.run` calls it, on an `Experiment` made for the job: `start` (the graph,
the text, the HParams settings, the fit plot's background), `record` at the steps the run
records it (the histograms at their cadence in one compiled call, the images at the last
step), `finish` (the HParams session). The model is one `LinearModel` per group whose
weight is set to the job's path: the sinks see what the job's own model held at that step.

A sink this module cannot write this way (a user's, images drawn during training, a
histogram of named Keras layers) leaves the job to its per-job run (pipeline/sweeps/stacked.py).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from pipeline.runinfo import COMPLETED

#: the sinks written here, by `_target_`, beside the `ScalarSink` stacked_write.py writes
WRITTEN = (
    "pipeline.sinks.graph.GraphSink",
    "pipeline.sinks.histograms.HistogramSink",
    "pipeline.sinks.images.ImageSink",
    "pipeline.sinks.text.TextSink",
    "pipeline.sinks.hparams.HParamsSink",
)


def writable(node: Any, task: Any) -> bool:
    """Whether a sink's config is one written here: one of `WRITTEN`, images only at the
    end and only the tutorial's fit, histograms of no named layers."""
    from pipeline.contracts import target_of

    target = target_of(node)
    if target not in WRITTEN:
        return False
    if target.endswith("ImageSink"):
        return node.get("every") is None and list(task.images) == ["fit"]
    if target.endswith("HistogramSink"):
        return not list(node.get("layers") or [])
    return True


@dataclass
class JobSinks:
    """What the launcher needs to write one job's other sinks: its group's shared parts,
    its weights after every step, its data and the title its pictures carry."""

    group: GroupSinks
    path: np.ndarray  # (steps + 1,) k after s updates
    data: Any  # pipeline.data.Dataset, as the job's own `LinearData` drew it
    label: str  # what sets the job apart, for its plots' titles
    #: its last fit picture, being drawn beside the launcher (`submit_picture`), or None
    picture: Any = None

    def writers_used(self) -> set[str]:
        """The writers these sinks write to (opened beside the scalars')."""
        from pipeline.app import writers_used

        return writers_used(self.group.sinks)

    def write(
        self, writers: Mapping[str, Any], run_dir: Path, shown: Any, command: str,
        overrides: Sequence[str], final: Mapping[str, float],
    ) -> None:  # fmt: skip
        """Every sink's summaries of the job, in the order `app.run` calls them, on the
        job's open `writers`; `final` is its last step's statistics."""
        import tensorflow as tf

        from pipeline.compat import config_yaml, writer_handle
        from pipeline.sinks.base import Experiment
        from pipeline.sinks.settings import hparams_of

        group, steps = self.group, len(self.path) - 1
        model = group.model
        tensors = {
            name: tf.constant(getattr(self.data, name))
            for name in ("x_train", "y_train", "x_test", "y_test")
        }
        experiment = Experiment(
            model=model,
            data=self.data,
            tensors=tensors,
            writers=writers,
            step_graph=lambda: group.graph,
            config_yaml=config_yaml(shown),
            command=command,
            run_dir=run_dir,
            hparams=hparams_of(settings_config(shown, overrides), overrides),
            label=self.label,
            task=group.task,
        )
        sinks = group.sinks
        pictured = group.images if self.picture is not None else None  # drawn already
        for sink in sorted(sinks, key=lambda sink: not sink.in_graph):  # as app.train
            if sink is not pictured:
                sink.start(experiment)
        handles = {name: writer_handle(writer) for name, writer in writers.items()}
        path = tf.constant(self.path)
        for sink in sinks:
            if sink.in_graph and sink.every is not None:  # the histograms
                steps_of = tf.constant(written_steps(steps, sink.every))
                in_loop_writing(sink, model)(steps_of, path, tensors, handles)
        model.k.assign(self.path[steps])  # the final state, for the Python sinks
        for sink in sinks:
            if sink is pictured:
                self.write_picture(sink, experiment, steps, final)
            elif not sink.in_graph:
                with tf.summary.record_if(True):
                    sink.record(experiment, steps, dict(final))
        for sink in sinks:
            if sink is not pictured:
                sink.finish(experiment, COMPLETED)

    def write_picture(
        self, sink: Any, experiment: Any, step: int, final: Mapping[str, float]
    ) -> None:
        """The fit picture drawn beside the launcher, written as the image sink's `record`
        writes it at the last step. It was drawn with the job's last k as its title's
        estimate; should the task's `train/k` say otherwise, it is drawn again here."""
        import tensorflow as tf

        from pipeline.sinks.images import write_png
        from pipeline.sinks.tags import PLOTS

        png = self.picture.result()
        k = float(final.get("train/k", float("nan")))
        if not _same_number(k, float(self.path[step])):
            sink.start(experiment)
            with tf.summary.record_if(True):
                sink.record(experiment, step, dict(final))
            sink.finish(experiment, COMPLETED)
            return
        with tf.summary.record_if(True), sink.writer_of(experiment).as_default(step=step):
            write_png(PLOTS + "fit", png)


def _same_number(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)  # NaN is NaN here


def settings_config(shown: Mapping[str, Any], overrides: Sequence[str]) -> DictConfig:
    """The parts of a job's config its HPARAMS settings are read from (those the overrides
    and the main settings name): `hparams_of` reads the same values from them as from the
    whole config, which takes several times longer to make into a `DictConfig`."""
    from pipeline.sinks.settings import MAIN_SETTINGS, given_setting

    keys = [setting[0] for o in overrides if (setting := given_setting(o)) is not None]
    tops = {key.split(".")[0] for key in (*keys, *MAIN_SETTINGS)}
    return OmegaConf.create({name: value for name, value in shown.items() if name in tops})


class GroupSinks:
    """What the jobs of a group share: their sinks (built once, as a sweep's basic jobs
    reuse one loop), the model whose weight each job's path sets, the task and the
    GraphDef of one training step (the job's loop traces the same one)."""

    def __init__(self, cfg: DictConfig) -> None:
        from pipeline.app import build
        from pipeline.sinks.scalars import ScalarSink

        pieces = build(cfg)  # the first job's pieces: its loop traces the step's graph
        self.task = pieces.task
        self.model = pieces.loop.model
        self.sinks = [sink for sink in pieces.sinks if not isinstance(sink, ScalarSink)]
        from pipeline.sinks.images import ImageSink

        #: the image sink (the fit at the last step only: `writable`), or None
        self.images = next((sink for sink in self.sinks if isinstance(sink, ImageSink)), None)
        x, y = pieces.tensors["x_train"], pieces.tensors["y_train"]
        # serialised once: as `tf.summary.graph` serialises a graph (shapes added)
        self.graph = pieces.loop.step_graph(x, y).as_graph_def(add_shapes=True)


def written_steps(steps: int, every: int) -> np.ndarray:
    """The steps an in-loop sink due every `every` steps records in a run of `steps`."""
    from pipeline.sweeps.stacked_write import written_steps as steps_of

    return steps_of(steps, every)


@functools.cache
def in_loop_writing(sink: Any, model: Any) -> Any:
    """The compiled recording of `sink` at given steps, `model`'s weight set from a path
    before each (traced once a group; a job's steps, path, data and writers are arguments),
    each record made as the training loop makes it (pipeline/train.py's `_write`)."""
    import tensorflow as tf

    from pipeline.compat import writer_from_handle
    from pipeline.sinks.base import Experiment
    from pipeline.train import _write

    def write(steps, path, tensors, handles):
        writers = {name: writer_from_handle(handle) for name, handle in handles.items()}
        experiment = Experiment(model, None, tensors, writers, None, "", "", Path())
        (variable,) = model.trainable_variables

        def body(row):
            variable.assign(path[steps[row]])
            _write(sink, experiment, steps[row], {})
            return (row + 1,)

        tf.while_loop(lambda row: row < tf.shape(steps)[0], body, [tf.constant(0)])

    return tf.function(write, autograph=False)


def group_sinks(cfg: DictConfig) -> GroupSinks:
    """The shared parts for jobs with this config's model, optimizer, task and sinks
    (built for the first such job, then reused)."""
    nodes = [cfg.get(name) for name in ("model", "optimizer", "task", "sinks", "writer")]
    key = repr(
        [OmegaConf.to_container(n, resolve=True) if OmegaConf.is_config(n) else n for n in nodes]
    )
    if key not in _groups:
        _groups[key] = GroupSinks(cfg)
    return _groups[key]


#: the shared parts of each kind of group this process wrote, by their config
_groups: dict[str, GroupSinks] = {}


def job_sinks(
    cfg: DictConfig, nodes: Sequence[Any], path: np.ndarray, setting: Any, k_true: float
) -> JobSinks | None:
    """What the launcher writes the job's other sinks (`nodes`) from: its path of k and
    its data (`setting`, as its `LinearData` drew them). None when there are no other
    sinks, or when their shared parts cannot be built (the job then runs on its own and
    says why in its own words)."""
    from pipeline.data import Dataset
    from pipeline.sweeps.naming import label_of

    if not nodes:
        return None
    try:
        group = group_sinks(cfg)
    except Exception:  # the job's own run reports it
        return None
    data = Dataset(setting.x_train, setting.y_train, setting.x_test, setting.y_test, k_true)
    hydra = cfg.hydra
    label = label_of(hydra.overrides.task, hydra.job.config.override_dirname.exclude_keys)
    path = np.asarray(path, np.float32)
    picture = submit_picture(group, data, label, path) if group.images is not None else None
    return JobSinks(group, path, data, label, picture)


def submit_picture(group: GroupSinks, data: Any, label: str, path: np.ndarray) -> Any:
    """The job's last fit picture, handed to the process that draws them beside the
    launcher (pipeline/sinks/fit_pictures.py): the line the image sink's `fit` draws,
    the group's model holding the job's last k."""
    import tensorflow as tf

    from pipeline.sinks.fit_plot import data_extent

    steps = len(path) - 1
    lo, hi = data_extent(data)
    line_x = np.linspace(lo, hi, 101, dtype=np.float32)[:, None]
    group.model.k.assign(path[steps])
    line_y = group.model(tf.constant(line_x)).numpy()
    return fit_pictures().submit(data, label, (line_x, line_y), steps, float(path[steps]))


@functools.cache
def fit_pictures() -> Any:
    """The one process of this one that draws the written jobs' fit pictures."""
    from pipeline.sinks.fit_pictures import FitPictures

    return FitPictures()
