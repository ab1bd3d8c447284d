"""`hydra/launcher=stacked` with `model=mlp` of one width: every job gets what the basic
launcher gives it, within a stated float32 tolerance.

The story: "my MLP sweep of seeds x optimizers, one width, trained together; each
job in TensorBoard as before". The same sweep runs under the basic and the stacked
launcher through the real console script (the default sinks: replayed through each job's
own sinks), and again stacked with `sinks=[scalars]` (written by the launcher); every job's
event files are read back with TensorBoard's reader and compared.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from pipeline.readback.runs import HISTOGRAMS, SCALARS
from pipeline.runinfo import PROCESS_KEYS
from pipeline.sweeps.stacked import stack_key
from tests.conftest import compose_config
from tests.test_stacked import (
    BOTH_SINKS,
    DEFAULT_SINKS_JOB,
    LAUNCHERS,
    SCALARS_JOB,
    compare,
    files_of,
    job_dirs,
    relative,
    sweep,
)

#: how far a stacked MLP's scalar or histogram may be from the basic launcher's, relative
#: (docs/LAUNCHERS.md): TensorFlow does not promise that a batched matmul adds a job's
#: points and hidden units in the order of the job's own matmul. On some CPUs the sweeps
#: below are equal bit for bit (the tests print the largest difference); on an AVX-512 CPU
#: with oneDNN's kernels they were 7.9e-6 apart, and the same steps taken eagerly 2.75e-5
#: from the compiled ones (`test_the_stacked_mlp_loop_...`, a k near 4e-4): a margin over
#: that, still far below what another seed or learning rate moves
TOLERANCE = 1e-4
MLP_SWEEP = ("model=mlp", "model.hidden=16", "data.noise_std=0.5", "seed=0,1", "optimizer=sgd,adam")


@pytest.fixture(scope="module")
def mlp_sweeps(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """The MLP sweep, each job with the default sinks (replayed through each job's own
    sinks) and with `sinks=[scalars]` (written by the launcher), under each launcher."""
    return {launcher: sweep(tmp_path_factory, launcher, *BOTH_SINKS, *MLP_SWEEP)
            for launcher in LAUNCHERS}  # fmt: skip


@pytest.mark.slow
def test_every_summary_of_every_mlp_job_equals_the_basic_launchers(mlp_sweeps):
    (stacked_dir, stdout), (basic_dir, _) = mlp_sweeps["stacked"], mlp_sweeps["basic"]
    assert "stacked 8 of 8 jobs in 2 groups (4 written straight" in stdout, stdout
    stacked = job_dirs(stacked_dir, DEFAULT_SINKS_JOB)
    basic = job_dirs(basic_dir, DEFAULT_SINKS_JOB)
    assert sorted(stacked) == sorted(basic) and len(basic) == 4
    largest = {SCALARS: 0.0, HISTOGRAMS: 0.0}
    for name in sorted(basic):
        seen = compare(stacked[name], basic[name], name, tolerance=TOLERANCE)
        assert seen[SCALARS][1] == 4 * 21 and seen[HISTOGRAMS][1] > 0, (name, seen)
        largest = {plugin: max(largest[plugin], seen[plugin][0]) for plugin in largest}
        assert files_of(stacked[name]) == files_of(basic[name]), name
        want = json.loads((basic[name] / "metrics.json").read_text())
        got = json.loads((stacked[name] / "metrics.json").read_text())
        assert got["status"] == want["status"] == "completed" and got["steps"] == 20
        for key, value in want["final"].items():
            assert got["final"][key] == pytest.approx(value, rel=TOLERANCE), (name, key)
    print(f"largest relative difference: {largest}")


@pytest.mark.slow
def test_a_scalars_only_mlp_sweep_is_written_by_the_launcher_with_the_same_scalars(mlp_sweeps):
    (stacked_dir, stdout), (basic_dir, _) = mlp_sweeps["stacked"], mlp_sweeps["basic"]
    assert "stacked 8 of 8 jobs in 2 groups (4 written straight" in stdout, stdout
    stacked, basic = job_dirs(stacked_dir, SCALARS_JOB), job_dirs(basic_dir, SCALARS_JOB)
    assert sorted(stacked) == sorted(basic) and len(basic) == 4
    largest = 0.0
    for name in sorted(basic):
        seen = compare(stacked[name], basic[name], name, scalars_only=True, tolerance=TOLERANCE)
        assert seen[SCALARS][1] == 4 * 21, (name, seen)
        largest = max(largest, seen[SCALARS][0])
        want = json.loads((basic[name] / "metrics.json").read_text())
        got = json.loads((stacked[name] / "metrics.json").read_text())
        # a process key (a heartbeat's checkpoint_step) comes with a slow chunk, not a launcher
        assert got.keys() - set(PROCESS_KEYS) == want.keys() - set(PROCESS_KEYS), name
        assert got["status"] == "completed", name
        for key in ("k", "k_true", "k_error", "train_loss", "test_loss"):
            assert got[key] == pytest.approx(want[key], rel=TOLERANCE), (name, key)
    print(f"largest relative difference of a scalar: {largest:.3g}")


@pytest.mark.slow  # trains the group's loop in process
def test_mlp_jobs_stack_by_width_and_activation_apart_from_linear_ones():
    """`model.hidden=8,16` makes two groups, a linear job another, another activation
    another; an MLP task whose scalars the loop does not compute does not stack."""
    from pipeline.sweeps.stacked import stacked_jobs

    few = ("trainer.steps=5", "sinks=[scalars]")
    configs = [
        compose_config(*few),
        compose_config(*few, "model=mlp", "model.hidden=8"),
        compose_config(*few, "model=mlp", "model.hidden=16"),
        compose_config(*few, "model=mlp", "model.hidden=16", "seed=1", "data.noise_std=1"),
    ]
    keys = [stack_key(cfg) for cfg in configs]
    assert keys[1][4:] == ("pipeline.models.MLPModel", 8, "relu")
    assert len(set(keys)) == 3 and keys[2] == keys[3]
    tanh = stack_key(compose_config(*few, "model=mlp", "model.hidden=16", "model.activation=tanh"))
    assert tanh is not None and tanh not in keys
    jobs, groups = stacked_jobs(configs)
    assert groups == 3 and sorted(jobs) == [0, 1, 2, 3]
    assert all(job.scalars is not None for job in jobs.values())  # scalars only: written
    assert len(jobs[3].scalars.values["train/loss"]) == 6  # steps 0..5
    mae = compose_config("model=mlp", "task.metrics=[train/k,mae]")
    assert stack_key(mae) is None


@pytest.mark.slow  # trains the group's loop in process
@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_the_stacked_mlp_loop_gives_each_setting_its_own_training(optimizer):
    """Three MLPs (noise, seed, learning rate differ) trained as one against each trained
    alone by `MLPModel`, the task's loss and tbpipe's optimizer: the scalars of every step
    and the weights at the kept steps, within TOLERANCE."""
    from pipeline import optimizers
    from pipeline.data import LinearData
    from pipeline.models import MLPModel
    from pipeline.sweeps.stacked_mlp import (
        WEIGHTS,
        job_columns,
        kept_steps,
        starting_weights,
        train_stacked_mlp,
    )
    from pipeline.sweeps.stacked_train import Setting
    from pipeline.tasks import Task
    from pipeline.tensorflow_quiet import import_tensorflow

    tf = import_tensorflow()
    steps, task = 12, Task(metrics=["train/k", "test/k"])
    kept = kept_steps(steps, [5])
    assert kept.tolist() == [0, 5, 10, 12]
    values, settings = [(0.1, 0, 0.05), (1.0, 3, 0.02), (0.3, 7, 0.01)], []
    for noise, seed, lr in values:
        data = LinearData(noise_std=noise, seed=seed).generate()
        weights = starting_weights(MLPModel(hidden=16, seed=seed))
        settings.append(Setting(data.x_train, data.y_train, 0.0, lr, x_test=data.x_test,
                                y_test=data.y_test, weights=weights))  # fmt: skip
    paths = train_stacked_mlp(settings, f"pipeline.optimizers.{optimizer}", steps, "relu", kept)
    assert paths.finite.all() and paths.rows(steps).tolist()[4:7] == [0, 1, 1]
    for column, (setting, (_, seed, lr)) in enumerate(zip(settings, values, strict=True)):
        model = MLPModel(hidden=16, seed=seed)
        update = getattr(optimizers, optimizer)(learning_rate=lr)
        update.build(model.trainable_variables)
        tensors = {name: tf.constant(getattr(setting, name)) for name in
                   ("x_train", "y_train", "x_test", "y_test")}  # fmt: skip
        alone: dict[str, list] = {name: [] for name in task.scalars}
        for step in range(steps + 1):
            for name, value in task.statistics(model, tensors).items():
                alone[name].append(float(value))
            if step in kept:
                row = kept.tolist().index(step)
                for i, name in enumerate(WEIGHTS):
                    mine = paths.weights[i][row, column]
                    np.testing.assert_allclose(mine, getattr(model, name).numpy(), rtol=1e-4,
                                               atol=1e-6, err_msg=(name, step))  # fmt: skip
            with tf.GradientTape() as tape:
                loss = task.loss(model(setting.x_train), setting.y_train)
            update.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        mine = job_columns(paths, column, task.scalars, None)
        for name in task.scalars:
            assert relative(mine[name], np.float32(alone[name])) <= TOLERANCE, name


@pytest.mark.slow  # trains the group's loop in process
def test_mlp_jobs_past_the_memory_bound_train_in_parts_or_on_their_own(monkeypatch, caplog):
    """A group larger than GROUP_BYTES trains in parts; jobs past KEPT_BYTES run one by
    one, and the launcher says so. Replayed jobs keep the weights of the steps their
    sinks read only (here 0 and the last: histograms every 10, 5 steps)."""
    from pipeline.sweeps import stacked_mlp
    from pipeline.sweeps.stacked import stacked_jobs

    configs = [
        compose_config("trainer.steps=5", "model=mlp", "model.hidden=16", f"seed={seed}")
        for seed in range(3)
    ]
    monkeypatch.setattr(stacked_mlp, "GROUP_BYTES", 2 * stacked_mlp.bytes_a_job(16, 2, 5, 300))
    jobs, groups = stacked_jobs(configs)
    assert groups == 2 and sorted(jobs) == [0, 1, 2]
    assert all(job.scalars is None for job in jobs.values())  # the default sinks: replayed
    assert [values.shape for values in jobs[2].path] == [(2, 16), (2, 1), (2, 1, 16), (2, 16, 1)]
    assert jobs[2].rows.tolist() == [0, 0, 0, 0, 0, 1]
    assert list(jobs[2].columns) == ["train/k", "train/k/error", "train/loss", "test/loss"]
    monkeypatch.setattr(stacked_mlp, "KEPT_BYTES", 2 * stacked_mlp.kept_bytes(16, 2, 5))
    with caplog.at_level(logging.INFO, logger="hydra"):
        jobs, groups = stacked_jobs(configs)
    assert groups == 1 and sorted(jobs) == [0, 1]
    assert "1 model=mlp job of width 16 run one by one" in caplog.text
