"""What one process carries from a sweep job to the next: the compiled loop, TF's caches.

Tracing the training loop and preparing it to run costs about as much as the job's 1,000
steps (docs/PERFORMANCE.md, "A sweep's jobs"). The jobs of a noise sweep differ only in
their data, which the loop takes as an argument, so the loop traced for the first job serves
the others: each new job builds its model and optimizer as usual (contracts checked, seeds
applied), and the loop copies their starting values into its own variables
(`CompiledLoop.adopt`).

A loop is reused only when its config (model, optimizer, sinks) is the same and every
piece traced into it is one of tbpipe's own classes that declares `reusable_across_jobs =
True` itself (`owned_and_reusable`). A user's piece, a subclass of tbpipe's included, gets
a fresh trace and its seed every job, exactly as a run on its own: whether a user's
class draws from TensorFlow's global random state cannot be checked, and a wrong promise
would change a sweep's numbers silently.

`tf.random.set_seed` also empties TensorFlow's kernel caches, so a reused loop would be
prepared to run all over again (each job, more than a default job's 1,000 steps cost). The
mark also says a piece draws nothing from TensorFlow's global random state, so when every
piece of a job carries it, no number of the job depends on the caches being emptied: after
the process's first job the seed is set without emptying them
(`needs_tensorflow_seed`, `pipeline.app.seed_everything`).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pipeline.contracts import class_of, tbpipes_own
from pipeline.sinks.base import Sink
from pipeline.train import CompiledLoop, in_graph_sinks

#: how many differently shaped loops a process keeps (e.g. a sweep over model size)
KEEP = 4
_loops: OrderedDict[str, CompiledLoop] = OrderedDict()


def loop_key(cfg: DictConfig, model: Any, optimizer: Any, sinks: Sequence[Sink]) -> str | None:
    """What a loop's trace depends on, or None if a piece in it does not allow reuse."""
    pieces = [model, optimizer, *in_graph_sinks(sinks)]
    if not all(owned_and_reusable(type(piece)) for piece in pieces):
        return None
    parts = {
        name: OmegaConf.to_container(cfg[name], resolve=True) if name in cfg else None
        for name in ("task", "model", "optimizer", "sinks")
    }
    return json.dumps(parts, sort_keys=True, default=str)


def needs_tensorflow_seed(cfg: DictConfig) -> bool:
    """False when every piece the config builds is tbpipe's own and reusable."""
    nodes = [cfg.get(name) for name in ("task", "data", "model", "optimizer")]
    nodes += list((cfg.get("sinks") or {}).values())
    classes = [class_of(node.get("_target_")) if node is not None else None for node in nodes]
    # a target that names no class: building the piece will say what is wrong
    return not all(cls is not None and owned_and_reusable(cls) for cls in classes)


def owned_and_reusable(cls: type) -> bool:
    """True for a class of tbpipe's own that says `reusable_across_jobs = True` itself.

    A subclass does not inherit the mark: its `__init__` or `__call__` may draw from
    TensorFlow's global random state, which a reused loop would not reseed.
    """
    return tbpipes_own(cls) and vars(cls).get("reusable_across_jobs", False) is True


def compiled_loop(key: str | None, model: Any, optimizer: Any, sinks: Sequence[Sink], task: Any):
    """The loop for these pieces: an earlier job's with their values copied in, or a new one."""
    loop = _loops.get(key) if key is not None else None
    if loop is not None and loop.adopt(model, optimizer):
        _loops.move_to_end(key)
        return loop
    loop = CompiledLoop(model, optimizer, sinks, task)
    if key is not None:
        _loops[key] = loop
        while len(_loops) > KEEP:
            _loops.popitem(last=False)
    return loop
