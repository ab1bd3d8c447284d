"""Sinks of different cadences inside one compiled loop record exactly at their steps.

The loop asks sinks due every N > 1 steps once per block of gcd(N...) steps (pipeline/
train.py); where chunks end (trainer.chunk, odd on purpose here) must not matter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from pipeline.tensorflow_quiet import import_tensorflow

tf = import_tensorflow()  # as tbpipe imports it: without Keras, which tbpipe's loop never uses

from pipeline import api  # noqa: E402
from pipeline.readback.runs import load_run  # noqa: E402
from pipeline.sinks.base import Experiment, Sink  # noqa: E402


class StepSink(Sink):
    """Writes the step it records at as the scalar `tag`."""

    def __init__(self, tag: str, every: int):
        super().__init__(every=every)
        self.tag = tag

    def record(self, experiment: Experiment, step: Any, stats: Mapping[str, Any]) -> None:
        with self.writer_of(experiment).as_default(step=step):
            tf.summary.scalar(self.tag, tf.cast(step, tf.float32))


def sink(tag: str, every: int) -> str:
    return f"+sinks.{tag}={{_target_:tests.test_cadence.StepSink,tag:{tag},every:{every}}}"


@pytest.mark.parametrize("chunk", [7, 500])
def test_mixed_in_graph_cadences_record_at_their_multiples_and_at_the_end(tmp_path, chunk):
    steps = 50
    result = api.run_experiment(
        "sinks=[scalars]",
        sink("four", 4),
        sink("six", 6),
        f"trainer.steps={steps}",
        f"trainer.chunk={chunk}",
        "trainer.progress=false",
        run_dir=tmp_path / "run",
    )
    train = load_run(result.run_dir / "train")
    for tag, every in (("four", 4), ("six", 6)):
        expected = [*range(0, steps, every), steps]
        assert [step for step, _ in train.scalars(tag)] == expected, tag
        assert all(value == step for step, value in train.scalars(tag))
    assert [step for step, _ in train.scalars("loss")] == list(range(steps + 1))
