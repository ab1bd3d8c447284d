"""Structured configs for every config group: types for Hydra, ranges for `validate`.

Each dataclass is stored in Hydra's ConfigStore as `schema/<group>/<option>` and named
first in the defaults list of its YAML file, so Hydra itself rejects an unknown key or a
value of the wrong type while composing. Ranges (a step count >= 1, a finite learning
rate > 0) are beyond OmegaConf, so each field carries an `Allowed` rule in its metadata
and `pipeline.check.validate` checks them after composition. Nothing here imports TensorFlow:
a typo in an override is reported before the slow import starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass(frozen=True)
class Allowed:
    """What a field accepts, in words for the user and as a test for the validator."""

    text: str
    accepts: Callable[[Any], bool]


def is_number(value: Any) -> bool:
    """An int or float, not a bool (Python's bool is an int; a config's `true` is no number)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_integer(value: Any) -> bool:
    """An int, not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def integer_at_least(low: int) -> Allowed:
    return Allowed(f"an integer >= {low}", lambda v: is_integer(v) and v >= low)


def finite_number() -> Allowed:
    return Allowed("a finite number", lambda v: is_number(v) and math.isfinite(v))


def finite_at_least(low: float) -> Allowed:
    return Allowed(
        f"a finite number >= {low:g}", lambda v: is_number(v) and math.isfinite(v) and v >= low
    )


def finite_above(low: float) -> Allowed:
    return Allowed(
        f"a finite number > {low:g}", lambda v: is_number(v) and math.isfinite(v) and v > low
    )


def in_unit_interval() -> Allowed:
    return Allowed("a number in [0, 1)", lambda v: is_number(v) and 0 <= v < 1)


def one_of(*choices: str) -> Allowed:
    return Allowed(f"one of {', '.join(choices)}", lambda v: v in choices)


def boolean() -> Allowed:
    return Allowed("true or false", lambda v: isinstance(v, bool))


def integer() -> Allowed:
    return Allowed("an integer", is_integer)


def text() -> Allowed:
    return Allowed("a non-empty string", lambda v: isinstance(v, str) and v != "")


def open_fraction() -> Allowed:
    return Allowed("a number above 0 and below 1", lambda v: is_number(v) and 0 < v < 1)


def names() -> Allowed:
    """A list of names (columns of a CSV file, arrays of an NPZ file)."""
    return Allowed(
        "a list of names, e.g. [age,bmi]",
        lambda v: isinstance(v, Sequence) and not isinstance(v, str) and all(map(bool, v)),
    )


def one_character() -> Allowed:
    return Allowed("one character, e.g. ',' or ';'", lambda v: isinstance(v, str) and len(v) == 1)


def or_null(allowed: Allowed) -> Allowed:
    return Allowed(f"null or {allowed.text}", lambda v: v is None or allowed.accepts(v))


def rule(default: Any, allowed: Allowed, limit: Allowed | None = None) -> Any:
    """A dataclass field with its default and the range the validator enforces.

    `allowed` says what the value is (its type and lower bound, the message most typos
    get); `limit`, checked once `allowed` passes, is how far it may go before a run
    cannot hold it (memory, float32, threads).
    """
    metadata = {"allowed": allowed} if limit is None else {"allowed": allowed, "limit": limit}
    return field(default=default, metadata=metadata)


# -- limits: what a run can hold --------------------------------------------------------
#: most steps a run (and a chunk, a sink's cadence) may plan: ~1 day at 11,000 steps/s;
#: the loop counts steps in int32 (2**31 - 1)
MAX_STEPS = 10**9
#: seeds are 32-bit (numpy's legacy seed takes 0 .. 2**32 - 1)
MAX_SEED = 2**32 - 1
#: largest |value| of the data's and model's numbers: the loss squares float32 values
#: (max ~3.4e38), so |y| must stay far below 1e19; 1e6 leaves room for a wide x range
MAX_MAGNITUDE = 1e6
#: most points in a split (float32 (N, 1) arrays: 40 MB each at the limit)
MAX_POINTS = 10**7
#: most TensorFlow threads; each costs a thread stack, and more than cores gains nothing
MAX_THREADS = 256
#: widest hidden layer (its weights live in memory twice with Adam's slots)
MAX_HIDDEN = 65536


def integer_at_most(high: int, why: str) -> Allowed:
    return Allowed(f"an integer <= {high} ({why})", lambda v: v <= high)


def seed_range() -> Allowed:
    return Allowed(f"an integer from 0 to {MAX_SEED}", lambda v: 0 <= v <= MAX_SEED)


def magnitude(why: str = "float32 data: the loss of larger values overflows") -> Allowed:
    return Allowed(
        f"a number from {-MAX_MAGNITUDE:g} to {MAX_MAGNITUDE:g} ({why})",
        lambda v: abs(v) <= MAX_MAGNITUDE,
    )


STEPS_LIMIT = integer_at_most(MAX_STEPS, "the most steps a run can plan")


# -- top level ------------------------------------------------------------------------
@dataclass
class TrainerSchema:
    """`trainer`: how long to train and how often Python looks in."""

    steps: int = rule(1000, integer_at_least(1), STEPS_LIMIT)
    batch_size: int | None = rule(None, or_null(integer_at_least(1)))
    chunk: int = rule(500, integer_at_least(1), STEPS_LIMIT)
    checkpoint_every: int | None = rule(10000, or_null(integer_at_least(1)))
    progress: bool = rule(True, boolean())
    inter_op_threads: int = rule(
        1, integer_at_least(0), integer_at_most(MAX_THREADS, "0 lets TensorFlow use every core")
    )


# -- data -----------------------------------------------------------------------------
@dataclass
class LinearDataSchema:
    """`data=linear`: y = k_true * x + noise."""

    _target_: str = "pipeline.data.LinearData"
    k_true: float = rule(2.0, finite_number(), magnitude())
    noise_std: float = rule(0.1, finite_at_least(0), magnitude())
    n_train: int = rule(200, integer_at_least(2), integer_at_most(MAX_POINTS, "points in memory"))
    n_test: int = rule(100, integer_at_least(1), integer_at_most(MAX_POINTS, "points in memory"))
    x_low: float = rule(-1.0, finite_number(), magnitude())
    x_high: float = rule(1.0, finite_number(), magnitude())
    seed: int = rule(0, integer(), seed_range())
    noise_draw: str = rule("shared", one_of("shared", "independent"))


@dataclass
class FileDataSchema:
    """`data=file`: a CSV or NPZ file of yours (pipeline.data.FileData)."""

    _target_: str = "pipeline.data.FileData"
    path: str = rule(MISSING, text())
    target: str = rule(MISSING, text())
    features: list[str] | None = rule(None, or_null(names()))
    labels: bool = rule(False, boolean())
    test_fraction: float = rule(0.2, open_fraction())
    seed: int = rule(0, integer(), seed_range())
    standardize: bool = rule(True, boolean())
    standardize_target: bool = rule(False, boolean())
    delimiter: str = rule(",", one_character())


@dataclass
class DiabetesDataSchema:
    """`data=diabetes`: scikit-learn's diabetes data (regression)."""

    _target_: str = "pipeline.data.DiabetesData"
    test_fraction: float = rule(0.2, open_fraction())
    seed: int = rule(0, integer(), seed_range())
    standardize: bool = rule(True, boolean())
    standardize_target: bool = rule(True, boolean())


@dataclass
class DigitsDataSchema:
    """`data=digits`: scikit-learn's 8x8 digits (classification)."""

    _target_: str = "pipeline.data.DigitsData"
    test_fraction: float = rule(0.2, open_fraction())
    seed: int = rule(0, integer(), seed_range())
    shape: str = rule("flat", one_of("flat", "image"))


# -- model ----------------------------------------------------------------------------
@dataclass
class LinearModelSchema:
    """`model=linear`: one weight."""

    _target_: str = "pipeline.models.LinearModel"
    k_init: float = rule(0.0, finite_number(), magnitude())


@dataclass
class MLPModelSchema:
    """`model=mlp`: one hidden layer."""

    _target_: str = "pipeline.models.MLPModel"
    hidden: int = rule(1000, integer_at_least(1), integer_at_most(MAX_HIDDEN, "weights in memory"))
    activation: str = rule("relu", one_of("relu", "tanh"))
    init_std: float = rule(1.0, finite_above(0), magnitude())
    seed: int = rule(0, integer(), seed_range())


# -- optimizer ------------------------------------------------------------------------
@dataclass
class SGDSchema:
    """`optimizer=sgd`."""

    _target_: str = "pipeline.optimizers.SGD"
    learning_rate: float = rule(0.02, finite_above(0))


@dataclass
class AdamSchema:
    """`optimizer=adam`."""

    _target_: str = "pipeline.optimizers.Adam"
    learning_rate: float = rule(0.05, finite_above(0))
    beta1: float = rule(0.9, in_unit_interval())
    beta2: float = rule(0.999, in_unit_interval())
    epsilon: float = rule(1e-7, finite_above(0))


# -- writer ---------------------------------------------------------------------------
@dataclass
class WriterSchema:
    """`writer=default`: the train/ and test/ summary writers."""

    train: str = rule("train", text())
    test: str = rule("test", text())
    max_queue: int = rule(1000, integer_at_least(1), integer_at_most(10**6, "events in memory"))
    flush_millis: int = rule(10000, integer_at_least(1), integer_at_most(86_400_000, "one day"))


#: Every sink may say how often it records; users' own sinks may carry any other key.
SINK_EVERY = integer_at_least(1)
#: keys of tbpipe's own sinks, by `_target_`: (allowed, limit)
SINK_KEYS: dict[str, dict[str, tuple[Allowed, Allowed | None]]] = {
    "pipeline.sinks.histograms.HistogramSink": {
        "buckets": (integer_at_least(1), integer_at_most(10_000, "buckets per histogram")),
    },
    # where the HParams session lives (pipeline/sinks/hparams.py SESSION_RUNS)
    "pipeline.sinks.hparams.HParamsSink": {"session_run": (one_of("root", "train"), None)},
}
#: the writers a sink may name
SINK_WRITER = one_of("train", "test")

#: schema/<group>/<option> in the ConfigStore, named in the defaults list of <group>/<option>.yaml
GROUP_SCHEMAS: dict[str, type] = {
    "data/linear": LinearDataSchema,
    "data/file": FileDataSchema,
    "data/diabetes": DiabetesDataSchema,
    "data/digits": DigitsDataSchema,
    "model/linear": LinearModelSchema,
    "model/mlp": MLPModelSchema,
    "optimizer/sgd": SGDSchema,
    "optimizer/adam": AdamSchema,
    "writer/default": WriterSchema,
}

#: the schema of each known `_target_`, so a node is checked whatever file it came from
SCHEMA_OF_TARGET: dict[str, type] = {
    schema._target_: schema for schema in GROUP_SCHEMAS.values() if hasattr(schema, "_target_")
}


@dataclass
class TbpipeSweeperConf:
    """`hydra/sweeper=tbpipe` (the default): Hydra's basic sweeper, fit for thousands of jobs
    (hydra_plugins/tbpipe_sweeper: no second composition of every job, batches, flat memory)."""

    _target_: str = "hydra_plugins.tbpipe_sweeper.tbpipe_sweeper.TbpipeSweeper"
    max_batch_size: int | None = 1000  # jobs handed to the launcher at a time
    params: dict[str, str] | None = None  # the sweep's parameters, as for the basic sweeper


TBPIPE_SWEEPER = TbpipeSweeperConf._target_


def register() -> None:
    """Store every schema in Hydra's ConfigStore (idempotent)."""
    store = ConfigStore.instance()
    for path, schema in GROUP_SCHEMAS.items():
        group, name = path.split("/")
        store.store(group=f"schema/{group}", name=name, node=schema)
    store.store(group="schema", name="trainer", node=TrainerSchema)
    store.store(group="hydra/sweeper", name="tbpipe", node=TbpipeSweeperConf)


register()
