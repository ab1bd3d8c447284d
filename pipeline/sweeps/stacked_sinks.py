"""A stacked job's other sinks (graph, histograms, images, text, HParams), from their own code.

Under `hydra/launcher=stacked` the launcher writes a job straight from its group's tensors
(pipeline/sweeps/stacked_write.py) when it can write every sink the job has. The scalars
are columns of the group's loop; the other sinks of tbpipe's default config need the job's
model at a few steps, its data and its config, and nothing else of the run. So here each
gives what `app.run` would have it write, in that order: the graph of the group's training
step, the config and command as text, the HParams settings, the histograms at their
cadence (the sink's own data at each step, the group's `LinearModel` holding the job's
weight from its path, bucketed in one compiled call a job), the fit picture at the last
step (drawn beside the launcher: pipeline/sinks/fit_pictures.py), the HParams session.
Each is an Event built as TensorFlow's writer would write it (pipeline/sweeps/sink_events.py):
no summary writer is opened, no summary op runs.

A sink this module cannot write this way (a user's, images drawn during training, a
histogram of named Keras layers) leaves the job to its per-job run (pipeline/sweeps/stacked.py).
"""

from __future__ import annotations

import functools
import io
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from pipeline.runinfo import COMPLETED

#: the image sink's `_target_`: it draws the fit
IMAGE_SINK = "pipeline.sinks.images.ImageSink"
#: the sinks written here, by `_target_`, beside the `ScalarSink` stacked_write.py writes
WRITTEN = (
    "pipeline.sinks.graph.GraphSink",
    "pipeline.sinks.histograms.HistogramSink",
    IMAGE_SINK,
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


#: the job's data as the sinks' `tensors` hold it
DATA = ("x_train", "y_train", "x_test", "y_test")


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

    def events(
        self, run_dir: Path, shown: Any, command: str, overrides: Sequence[str],
        final: Mapping[str, float],
    ) -> dict[str, bytes]:  # fmt: skip
        """Every sink's Events of the job, framed, by writer (`train`, `test`), in the order
        `app.run` writes them (pipeline/sweeps/sink_events.py: no writer, no summary op);
        the HParams session's files at the run dir's root written here. `final` is its
        last step's statistics."""
        from pipeline.compat import config_yaml
        from pipeline.runinfo import framed_record as framed
        from pipeline.sinks.graph import GraphSink
        from pipeline.sinks.hparams import HParamsSink
        from pipeline.sinks.settings import hparams_of
        from pipeline.sinks.text import TextSink, indent_code
        from pipeline.sweeps.sink_events import graph_event, text_event

        group = self.group
        records: dict[str, list[bytes]] = {}

        def add(writer: str, event: bytes) -> None:
            records.setdefault(writer, []).append(framed(event))

        started = time.time()  # the HParams session's start
        hparams = {}
        if any(isinstance(sink, HParamsSink) for sink in group.sinks):
            hparams = hparams_of(settings_config(shown, overrides), overrides)
        for sink in sorted(group.sinks, key=lambda sink: not sink.in_graph):  # as app.train
            if isinstance(sink, GraphSink):
                add(sink.writer, graph_event(group.graph))
            elif isinstance(sink, TextSink):
                add(sink.writer, text_event("config", indent_code(config_yaml(shown))))
                add(sink.writer, text_event("command", indent_code(command)))
            elif isinstance(sink, HParamsSink) and hparams:
                self._settings(sink, hparams, run_dir, add)
        for sink in group.sinks:  # the histograms, at their steps
            if sink.in_graph and sink.every is not None:
                for writer, event in self._histograms(sink):
                    add(writer, event)
        if group.images is not None:
            add(group.images.writer, self._picture(final))
        for sink in group.sinks:
            if isinstance(sink, HParamsSink) and hparams:
                self._session(sink, hparams, started, run_dir, add)
        return {writer: b"".join(framed) for writer, framed in records.items()}

    def _histograms(self, sink: Any) -> list[tuple[str, bytes]]:
        """(writer, Event) of each histogram at each step the sink records, from the
        group's compiled bucketing of the job's path."""
        import tensorflow as tf

        from pipeline.sweeps.sink_events import histogram_events

        group, steps = self.group, written_steps(len(self.path) - 1, sink.every)
        bucketing = histogram_bucketing(sink, group.model, tuple(steps.tolist()))
        tensors = {name: tf.constant(getattr(self.data, name)) for name in DATA}
        buckets = bucketing(tf.constant(self.path), tensors).numpy()
        layout = bucketing.layout  # (writer, tag) of each histogram, known once traced
        tags = [tag for _, tag in layout]
        return [(layout[i][0], event) for i, event in histogram_events(tags, steps, buckets)]

    def _picture(self, final: Mapping[str, float]) -> bytes:
        """The fit picture's Event at the last step, as the image sink's `record` writes it:
        drawn beside the launcher with the job's last k as its title's estimate; should the
        task's `train/k` say otherwise, drawn again with that."""
        from PIL import Image

        from pipeline.sinks.tags import PLOTS
        from pipeline.sweeps.sink_events import image_event

        steps = len(self.path) - 1
        png = self.picture.result()
        k = float(final.get("train/k", float("nan")))
        if not _same_number(k, float(self.path[steps])):
            png = submit_picture(self.group, self.data, self.label, self.path, k).result()
        width, height = Image.open(io.BytesIO(png)).size
        return image_event(PLOTS + "fit", width, height, png, steps)

    def _settings(self, sink: Any, hparams: dict, run_dir: Path, add: Any) -> None:
        """What the HParams sink's `start` writes: the settings as a table, at the run
        dir's root (a file of its own, as the sink's own writer leaves) or in train/."""
        from pipeline.sinks.hparams import settings_table
        from pipeline.sweeps.sink_events import text_event

        _in_session_run(sink, [text_event("settings", settings_table(hparams))], run_dir, add)

    def _session(self, sink: Any, hparams: dict, started: float, run_dir: Path, add: Any) -> None:
        """What the HParams sink's `finish` writes of a completed run: its session's start
        (settings, trial id: the run dir's name) and end, where `start` wrote the settings."""
        from tensorboard.plugins.hparams import summary as hp_v1
        from tensorboard.plugins.hparams import summary_v2 as hp

        from pipeline.sinks.hparams import SESSION_STATUS
        from pipeline.sweeps.sink_events import summary_event

        start = hp.hparams_pb(hparams, trial_id=run_dir.name, start_time_secs=started)
        end = hp_v1.session_end_pb(SESSION_STATUS[COMPLETED], end_time_secs=time.time())
        _in_session_run(sink, [summary_event(start), summary_event(end)], run_dir, add)


def _in_session_run(sink: Any, events: list[bytes], run_dir: Path, add: Any) -> None:
    """The HParams sink's `events` where its session run is: train/ (`add`), or a file of
    their own at the run dir's root, as the sink's own writer leaves them."""
    from pipeline.runinfo import framed_record as framed
    from pipeline.sweeps.scalar_events import new_event_file

    if sink.session_run == "train":
        for event in events:
            add("train", event)
    else:
        new_event_file(run_dir, b"".join(map(framed, events)))


def _same_number(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)  # NaN is NaN here


def settings_config(shown: Mapping[str, Any], overrides: Sequence[str]) -> DictConfig:
    """The values of a job's config its HPARAMS settings are read from (those the overrides
    and the main settings name; of a node, only its `_target_`): `hparams_of` reads the
    same values from them as from the whole config, which takes many times longer to make
    into a `DictConfig`. A key that passes through a list keeps its whole top node."""
    from pipeline.sinks.settings import MAIN_SETTINGS, given_setting

    keys = [setting[0] for o in overrides if (setting := given_setting(o)) is not None]
    picked: dict[str, Any] = {}
    whole = set()
    for key in dict.fromkeys([*keys, *MAIN_SETTINGS]):
        *path, last = key.split(".")
        node, into = shown, picked
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
            if not isinstance(node, Mapping):
                break
            into = into.setdefault(part, {})
        else:
            if isinstance(node, Mapping) and last in node:
                value = node[last]
                if isinstance(value, Mapping):  # a node: its class, if it names one
                    value = {"_target_": value["_target_"]} if "_target_" in value else {}
                    into.setdefault(last, {}).update(value)
                else:
                    into[last] = value
            continue
        if node is not None:  # a list (or a value) on the way: its top node as it is
            whole.add(key.split(".")[0])
    picked.update({name: shown[name] for name in whole if name in shown})
    return OmegaConf.create(picked)


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
        #: the GraphDef's bytes as `tf.summary.graph` writes them (shapes added)
        self.graph = written_graph(pieces.loop.step_graph(x, y))


def written_graph(graph: Any) -> bytes:
    """The bytes of `graph`'s GraphDef in the Event `tf.summary.graph` writes: written once
    by TensorFlow's own writer in a scratch dir and read back (its C++ serialises the
    GraphDef's maps in an order of its own, which Python's protobuf need not share)."""
    import tempfile

    import tensorflow as tf
    from tensorboard.compat.proto.event_pb2 import Event

    from pipeline.runinfo import Records

    with tempfile.TemporaryDirectory(prefix="tbpipe-graph-") as scratch:
        writer = tf.summary.create_file_writer(scratch)
        with writer.as_default():
            tf.summary.graph(graph)
        writer.close()
        (path,) = Path(scratch).iterdir()
        events = [Event.FromString(data) for *_, data in Records(path.read_bytes())]
    (graph_def,) = [event.graph_def for event in events if event.graph_def]
    return graph_def


def written_steps(steps: int, every: int) -> np.ndarray:
    """The steps an in-loop sink due every `every` steps records in a run of `steps`."""
    from pipeline.sweeps.stacked_write import written_steps as steps_of

    return steps_of(steps, every)


@functools.cache
def histogram_bucketing(sink: Any, model: Any, steps: tuple[int, ...]) -> Any:
    """The compiled bucketing of `sink`'s histograms at `steps`, `model`'s weight set from
    a job's path before each (traced once a group; a job's path and data are arguments):
    (steps, histograms, buckets, 3) float64. A loop over the steps keeps each step's data
    as the sink shows it (`shown_data`); after it they are all bucketed together in one
    set of ops (`rows_histogram_buckets`: each histogram's numbers are the same however
    many are bucketed with it). Its `layout`: the (writer, tag) of each histogram."""
    import tensorflow as tf

    from pipeline.sinks.base import Experiment
    from pipeline.sinks.histogram_buckets import rows_histogram_buckets

    def bucketing(path, tensors):
        experiment = Experiment(model, None, tensors, {}, None, "", "", Path())
        (variable,) = model.trainable_variables
        at = tf.constant(steps)

        def shown(row):
            variable.assign(path[at[row]])
            found = sink.shown_data(experiment)
            compiled.layout = [(writer, tag) for writer, tag, _ in found]
            return [data for *_, data in found]

        first = shown(0)  # the data's shapes and dtypes, for the lists kept
        kept = [
            tf.TensorArray(data.dtype, size=len(steps), element_shape=data.shape) for data in first
        ]

        def body(row, *kept):
            return (
                row + 1,
                *[k.write(row, data) for k, data in zip(kept, shown(row), strict=True)],
            )

        _, *kept = tf.while_loop(lambda row, *_: row < len(steps), body, [tf.constant(0), *kept])
        if not kept:
            return tf.zeros([len(steps), 0, sink.buckets, 3], tf.float64)
        return rows_histogram_buckets([k.stack() for k in kept], sink.buckets)

    compiled = tf.function(bucketing, autograph=False)
    compiled.layout = []
    return compiled


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


def submit_picture(
    group: GroupSinks, data: Any, label: str, path: np.ndarray, k: float | None = None
) -> Any:
    """The job's last fit picture, handed to the process that draws them beside the
    launcher (pipeline/sinks/fit_pictures.py): the line the image sink's `fit` draws,
    the group's model holding the job's last k; titled with `k` (by default that k)."""
    import tensorflow as tf

    from pipeline.data import data_extent

    steps = len(path) - 1
    lo, hi = data_extent(data)
    line_x = np.linspace(lo, hi, 101, dtype=np.float32)[:, None]
    group.model.k.assign(path[steps])
    line_y = group.model(tf.constant(line_x)).numpy()
    k = float(path[steps]) if k is None else k
    return fit_pictures().submit(data, label, (line_x, line_y), steps, k)


@functools.cache
def fit_pictures() -> Any:
    """The processes that draw the written jobs' fit pictures beside this one: one a usable
    CPU but the launcher's, at most `PICTURE_WORKERS`. A picture costs more CPU than
    writing its job (docs/PERFORMANCE.md), so where there are spare cores a second and a
    third worker keep up with the launcher; on two cores one does (a second would take
    the launcher's core)."""
    from pipeline.sinks.fit_pictures import FitPictures
    from pipeline.sweeps.launchers import usable_cpus

    return FitPictures(workers=min(PICTURE_WORKERS, usable_cpus() - 1))


#: at most this many processes draw a sweep's fit pictures: a picture costs more than
#: writing its job, not many times more, so a few keep up with the launcher
PICTURE_WORKERS = 3


def start_fit_pictures(cfg: DictConfig) -> None:
    """Start the fit pictures' processes now if `cfg`'s sinks draw the fit (the image sink):
    their Python and matplotlib load while the launcher loads TensorFlow and trains, so
    the first picture asked is drawn at once."""
    from pipeline.contracts import target_of

    nodes = (cfg.get("sinks") or {}).values()
    if any(node is not None and target_of(node) == IMAGE_SINK for node in nodes):
        fit_pictures()
