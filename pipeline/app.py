"""Compose one experiment from its config, run it, and record how it ended.

This is where config meets code: everything is instantiated from `cfg` (a node with a
`_target_` is a class to build), then handed to the trainer. Nothing here reads
Hydra's global state, so it can be called from tests and notebooks with any config.
"""

from __future__ import annotations

import os
import random
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from pipeline.check.errors import report
from pipeline.check.validate import check_batch_size, validate
from pipeline.compat import config_yaml, set_global_seed_keeping_kernels
from pipeline.contracts import (
    SPLITS,
    build_piece,
    build_task,
    check_data,
    check_model,
    check_optimizer,
    check_sink,
    target_of,
)
from pipeline.runinfo import (
    CHECKPOINT_DIR,
    COMPLETED,
    DIVERGED,
    FAILED,
    PROCESS_KEYS,
    RUNNING,
    Heartbeat,
    environment_values,
    read_metrics,
    redacted,
    release_reserve,
    run_info_differs,
    this_process,
    write_metrics,
    write_run_info,
)
from pipeline.sinks.base import Experiment
from pipeline.sinks.settings import hparams_of
from pipeline.stopping import RunInterrupted, diverged_ending, interrupted_ending, stop_on_signals
from pipeline.tensorflow_quiet import apply_inter_op_threads, import_tensorflow

#: the TensorFlow global seed this process last set (None: never set)
_tensorflow_seed: int | None = None


def seed_everything(seed: int, tensorflow_seed_matters: bool = True) -> None:
    """Same config and seed, same numbers: seed python, numpy and TF; deterministic ops.

    `tf.random.set_seed` also empties TF's kernel caches: every compiled function is then
    prepared to run again (for the default loop, more than its 1,000 steps cost).
    When no piece draws from TF's global random state (`tensorflow_seed_matters=False`,
    see `pipeline.reuse.needs_tensorflow_seed`), no number of the run depends on the
    caches being emptied, so after the process's first job the seed is set without
    (TF code run afterwards still finds the job's seed).
    """
    global _tensorflow_seed
    tf = import_tensorflow()
    random.seed(seed)
    np.random.seed(seed)
    if tensorflow_seed_matters or _tensorflow_seed is None:
        tf.random.set_seed(seed)
    else:
        set_global_seed_keeping_kernels(seed)
    _tensorflow_seed = seed
    tf.config.experimental.enable_op_determinism()


@dataclass
class Pieces:
    """What one experiment is built from, ready to train."""

    data: Any  # pipeline.data.Dataset
    loop: Any  # pipeline.train.CompiledLoop: the model and optimizer it trains
    task: Any  # pipeline.tasks.Task: the loss, the metrics, the pictures
    sinks: list[Any]
    tensors: dict[str, Any]  # the data as TF constants, k_true too when the data know it
    batches: Any  # the tf.data iterator of mini-batches, or None (full batch)
    checkpoint: Any = None  # pipeline.checkpoints.RunCheckpoint, or None: no checkpoints
    start: int = 0  # the step training starts from: a resumed run's checkpoint
    batch: Any = None  # the mini-batch that step uses, when a checkpoint carried one


def run(
    cfg: DictConfig,
    run_dir: str | os.PathLike,
    command: str = "tbpipe",
    overrides: Sequence[str] = (),
    checked: bool = False,
    resume: bool = False,
    label: str = "",
    trainer: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """Train the configured model, write its summaries and metrics.json; return the metrics.

    `overrides` (the command line's, e.g. a sweep job's) name the settings HPARAMS shows.
    `checked=True` says the preflight validated this config already (the command line
    and `pipeline.api` do): each run is validated once. `resume=True` (`tbpipe resume`)
    goes on in an existing run dir from its latest checkpoint, or starts it over. `label`
    says what sets the run apart (a sweep job's swept settings), for its plots' titles.
    `trainer` makes the run's `train.Trainer` from the same arguments; a launcher that
    trained the job already (`hydra/launcher=stacked`) gives one that replays its weights.
    """
    if not checked:
        validate(cfg)  # ranges first: a bad value must not cost the TensorFlow import
    if resume:
        kept = ended_for_good(Path(run_dir))
        if kept is not None:
            return kept  # completed or diverged: its files stay as they are
    import_tensorflow(cfg.trainer.get("inter_op_threads"))
    not_applied = apply_inter_op_threads(cfg.trainer.get("inter_op_threads"))
    if not_applied:
        report(not_applied)
    started = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    pieces = build(cfg)
    pieces.checkpoint = checkpoint_of(cfg, pieces, run_dir)
    if resume:
        go_on_from_checkpoint(cfg, pieces, run_dir)
    experiment = open_run(cfg, pieces, run_dir, command, overrides, resume, label)
    try:
        try:
            outcome, ending = train(cfg, pieces, experiment, trainer)
        except Exception:
            end_sinks(pieces.sinks, experiment, FAILED)
            raise
        end_sinks(pieces.sinks, experiment, ending["status"])
    finally:
        from pipeline.writers import close_writers

        close_writers(experiment.writers)  # event files stay readable however the run ended
    return finish(run_dir, pieces, outcome, ending, int(cfg.trainer.steps), started)


def build(cfg: DictConfig) -> Pieces:
    """Seed, then build and check each piece (any may be the user's own), then the loop."""
    import tensorflow as tf

    from pipeline.reuse import compiled_loop, loop_key, needs_tensorflow_seed

    seed_everything(int(cfg.seed), tensorflow_seed_matters=needs_tensorflow_seed(cfg))
    task = build_task(task_config(cfg))
    data = check_data("data", build_piece(cfg.data, "data"), target_of(cfg.data), task)
    model = build_piece(model_config(cfg, task, data), "model")
    check_model("model", model, target_of(cfg.model), data, task)
    optimizer = check_optimizer(
        "optimizer", build_piece(cfg.optimizer, "optimizer"), target_of(cfg.optimizer)
    )
    optimizer.build(model.trainable_variables)
    sinks = [
        check_sink(f"sinks.{name}", build_piece(node, f"sinks.{name}"), target_of(node))
        for name, node in (cfg.get("sinks") or {}).items()
    ]
    # a sweep's earlier job may have traced the loop already: then its model and
    # optimizer carry on, starting from this job's values (pipeline/reuse.py)
    key = loop_key(cfg, model, optimizer, sinks)
    loop = compiled_loop(key, model, optimizer, sinks, task)
    tensors = {name: tf.constant(getattr(data, name)) for name in SPLITS}
    if data.k_true is not None:
        tensors["k_true"] = tf.constant(data.k_true, tf.float32)
    if data.streams is not None:  # tf.data input: the arrays are a sample of each split
        from pipeline.train import TEST_BATCH, TEST_STREAM

        tensors[TEST_STREAM] = data.streams.test.batch(TEST_BATCH)
        return Pieces(data, loop, loop.task, sinks, tensors, streamed_batches(cfg, data))
    return Pieces(data, loop, loop.task, sinks, tensors, mini_batches_of(cfg, tensors))


def task_config(cfg: DictConfig) -> DictConfig:
    """The run's `task` node; the tutorial's line where the config has none."""
    from pipeline.tasks import LINE_FIT

    node = cfg.get("task")
    return node if node is not None else OmegaConf.create(LINE_FIT)


def model_config(cfg: DictConfig, task: Any, data: Any) -> DictConfig:
    """The model's node, with `outputs: null` set to the width the task needs for these
    data (one per class for labels, else y's width): a model config fits any data set."""
    node = cfg.model
    if "outputs" in node and node.get("outputs") is None:
        node = node.copy()
        node.outputs = task.outputs(data.y_train, data.y_test)
    return node


def ended_for_good(run_dir: Path) -> dict[str, Any] | None:
    """The metrics of a run that resuming leaves alone (completed, diverged: the same config
    would end the same way); None for one to go on with. A failed run keeps its
    checkpoints too: it goes on from the newest, as an interrupted one does."""
    try:
        metrics = read_metrics(run_dir)
    except (OSError, ValueError):
        return None
    if metrics.get("status") in (COMPLETED, DIVERGED):
        return metrics
    return None


def checkpoint_of(cfg: DictConfig, pieces: Pieces, run_dir: Path):
    """The run's checkpoints (`trainer.checkpoint_every`), or None when it keeps none."""
    if not cfg.trainer.get("checkpoint_every"):
        return None
    from pipeline.checkpoints import RunCheckpoint

    return RunCheckpoint(run_dir, pieces.loop, pieces.batches)


def go_on_from_checkpoint(cfg: DictConfig, pieces: Pieces, run_dir: Path) -> None:
    """Restore the newest checkpoint that can be read into the loop and keep the event
    records before it; with none, the run starts over (said in one line if it had begun):
    its old event files go. A checkpoint that cannot be read is named, in one line.

    Nothing of the run is changed until what it goes on from is known; a file that cannot
    be rewritten (a full disk) raises `ResumeFault`: the run stays as it was, not failed."""
    import logging

    from pipeline.checkpoints import keep_events_before, remove_events
    from pipeline.runinfo import METRICS_FILE, ResumeFault, is_disk_full

    job_log = logging.getLogger("tbpipe")  # <run dir>/tbpipe.log
    checkpoint = pieces.checkpoint
    restored = checkpoint.restore() if checkpoint is not None else None
    for damaged in checkpoint.damaged if checkpoint is not None else []:
        said = f"checkpoint {damaged.file} cannot be read ({damaged.reason})"
        report(said)
        job_log.warning("%s", said)
    writer_dirs = [run_dir / cfg.writer.train, run_dir / cfg.writer.test]
    try:
        if restored is None:
            if (run_dir / METRICS_FILE).exists():  # it had begun: its steps so far are lost
                why = "none could be read" if checkpoint and checkpoint.damaged else "none saved"
                where = display_path(run_dir)
                said = f"{where}: no usable checkpoint ({why}): starting over from step 0"
                report(said)
                job_log.info("%s", said)
            for folder in [run_dir, *writer_dirs]:  # the HPARAMS session at the root too
                remove_events(folder)
            return
        start, batch = restored
        for folder in writer_dirs:
            keep_events_before(folder, start)
    except OSError as error:
        fix = "free some space" if is_disk_full(error) else "fix that"
        raise ResumeFault(
            f"cannot resume {display_path(run_dir)}: its event files could not be rewritten "
            f"({error.strerror or error}); nothing was lost (checkpoints and event files are "
            f"as they were): {fix}, then run tbpipe resume again"
        ) from error
    pieces.start = start
    pieces.batch = batch if pieces.batches is not None else None
    job_log.info("resumed from step %d (checkpoint %s/ckpt-%d)", start, CHECKPOINT_DIR, start)
    print(f"resumed {display_path(run_dir)} from step {start}", flush=True)


def open_run(
    cfg: DictConfig,
    pieces: Pieces,
    run_dir: Path,
    command: str,
    overrides: Sequence[str],
    resume: bool = False,
    label: str = "",
) -> Experiment:
    """metrics.json says `running` (which process, from which step) and run.json how to
    redo the run (a resumed run keeps the run.json it started with, unless its .hydra/
    files were edited: then run.json records what runs now); writers open."""
    from pipeline.writers import open_writers

    steps = int(cfg.trainer.steps)
    running = {"status": RUNNING, "steps": pieces.start, "steps_planned": steps}
    running.update(this_process(), started_at=time.time(), heartbeat_at=time.time())
    if resume and pieces.start > 0:
        running["resumed_from"] = pieces.start  # the checkpoint it went on from
    write_metrics(run_dir, running)
    secrets = environment_values(cfg)  # values read with ${oc.env:...} are not recorded
    shown = redacted(OmegaConf.to_container(cfg, resolve=True), secrets)
    hparams = redacted(hparams_of(cfg, overrides), secrets)
    command = redacted(command, secrets)
    recorded = redacted(list(overrides), secrets)
    if not resume or run_info_differs(run_dir, command, recorded, shown):
        write_run_info(run_dir, command, recorded, shown)
    tensors = pieces.tensors
    return Experiment(
        model=pieces.loop.model,
        data=pieces.data,
        tensors=tensors,
        writers=open_writers(run_dir, used=writers_used(pieces.sinks), **cfg.writer),
        step_graph=lambda: pieces.loop.step_graph(tensors["x_train"], tensors["y_train"]),
        task=pieces.task,
        config_yaml=config_yaml(shown),
        command=command,
        run_dir=run_dir,
        hparams=hparams,
        label=label,
    )


#: the writers a run can have (conf/writer/default.yaml)
WRITERS = ("train", "test")


def writers_used(sinks: Sequence[Any]) -> set[str]:
    """The writers some sink writes to: only these are opened (no empty run in TensorBoard).
    A sink without `writers_used` (not a Sink subclass) may write to either."""
    used: set[str] = set()
    for sink in sinks:
        used |= sink.writers_used() if hasattr(sink, "writers_used") else set(WRITERS)
    return used


def end_sinks(sinks: Sequence[Any], experiment: Experiment, status: str) -> None:
    """Tell each sink how the run ended (e.g. HParams records the session's status)."""
    for sink in sinks:
        if hasattr(sink, "finish"):
            sink.finish(experiment, status)


def train(
    cfg: DictConfig, pieces: Pieces, experiment: Experiment, make: Callable[..., Any] | None = None
) -> tuple[Any, dict]:
    """Run the steps (with `make`'s trainer if given); return the outcome and how the run
    ended (status, reason)."""
    from pipeline.train import Outcome, Trainer

    steps = int(cfg.trainer.steps)
    trainer = (make or Trainer)(
        experiment, pieces.loop, pieces.sinks, pieces.batches, pieces.checkpoint, pieces.batch
    )
    heartbeat = Heartbeat(experiment.run_dir, read_metrics(experiment.run_dir))
    ending: dict[str, Any] = {"status": COMPLETED}
    begun = time.perf_counter()
    try:
        with stop_on_signals() as watch:

            def on_chunk(step: int) -> None:
                heartbeat.beat(step, trainer.saved_step)
                watch.check(step)

            if pieces.start == 0:  # a resumed run wrote these when it started
                # Python sinks last: what they start in a thread (the fit plot's drawing)
                # then runs beside the loop, not against the other sinks' start
                for sink in sorted(pieces.sinks, key=lambda sink: not sink.in_graph):
                    sink.start(experiment)
            outcome = trainer.run(
                steps,
                int(cfg.trainer.chunk),
                bool(cfg.trainer.progress),
                on_chunk=on_chunk,
                start=pieces.start,
                checkpoint_every=cfg.trainer.get("checkpoint_every"),
                on_call=watch.check,
            )
    except RunInterrupted as stop:
        trainer.save(stop.step)  # a resume goes on from exactly here
        # the time it trained: a stopped run's loop never returns its own figure
        outcome = Outcome(stop.step, False, trainer.stats(), time.perf_counter() - begun)
        ending = interrupted_ending(stop, steps)
    if outcome.diverged:
        ending = diverged_ending(outcome.step, cfg.optimizer.get("learning_rate"))
    return outcome, ending


def finish(
    run_dir: Path, pieces: Pieces, outcome: Any, ending: dict, steps: int, started: float
) -> dict[str, Any]:
    """metrics.json with the final statistics and how the run ended; returned as a dict."""
    previous = read_metrics(run_dir)
    final = outcome.stats  # "<writer>/<tag>" -> the last value
    lesson = {}  # the tutorial's keys, for a task that estimates k
    if "train/k" in final:
        lesson = {"k": final["train/k"], "k_true": pieces.data.k_true}
        lesson["k_error"] = final.get("train/k/error")
    metrics = {
        **lesson,
        "train_loss": final["train/loss"],
        "test_loss": final["test/loss"],
        "final": final,
        "main_metric": pieces.task.main_metric,
        "steps": outcome.step,
        "steps_planned": steps,
        "seconds": round(time.perf_counter() - started, 4),
        "train_seconds": round(outcome.seconds, 4),  # the loop and its summaries alone
        "checkpoint_seconds": round(outcome.checkpoint_seconds, 4),  # of which checkpoints
        **ending,  # status, and reason when the run did not complete
        **{key: previous[key] for key in PROCESS_KEYS if key in previous},
    }
    write_metrics(run_dir, metrics)
    release_reserve(run_dir)  # the run's last status is written: its reserve is not needed
    return metrics


def mini_batches_of(cfg: DictConfig, tensors: dict[str, Any]):
    """The tf.data iterator of `trainer.batch_size` mini-batches, or None for full batches."""
    from pipeline.train import minibatches

    batch_size = cfg.trainer.get("batch_size")
    if batch_size is None:
        return None
    check_batch_size(batch_size, int(tensors["x_train"].shape[0]))  # a user's data too
    return minibatches(tensors["x_train"], tensors["y_train"], int(batch_size), int(cfg.seed))


def streamed_batches(cfg: DictConfig, data: Any):
    """The iterator of `trainer.batch_size` mini-batches of a train stream (tf.data input):
    whole batches, epoch after epoch, the piece's own shuffling in each."""
    from pipeline.contracts import ContractError

    batch_size = cfg.trainer.get("batch_size")
    if batch_size is None:
        raise ContractError(
            f"data: {target_of(cfg.data)} gives tf.data pipelines (Streams), which train on "
            "mini-batches: set trainer.batch_size (e.g. trainer.batch_size=32)"
        )
    batches = data.streams.train.batch(int(batch_size), drop_remainder=True)
    return iter(batches.repeat().prefetch(2))


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def summary_line(metrics: dict[str, Any], run_dir: Path) -> str:
    """The one line a run ends with: the estimate of k (the tutorial) or the main metric,
    and where to look, its TensorBoard command quoted for the shell (a folder the user
    names may hold `[`, `,` or `=`, which a shell could expand before TensorBoard sees it)."""
    where = display_path(run_dir)
    if "k" in metrics:
        k, k_true = metrics.get("k"), metrics.get("k_true")
        k_text = "nan" if k is None else f"{k:.4f}"
        truth = "" if k_true is None else f" (true {k_true})"
        result = f"k = {k_text}{truth}"
    else:
        name = metrics.get("main_metric") or "test/loss"
        value = (metrics.get("final") or {}).get(name)
        result = f"{name} = {'nan' if value is None else f'{value:.4f}'}"
    return f"{result} | logs: {where} | tensorboard --logdir {shlex.quote(where)}"
