"""Compose tbpipe's config the way `tbpipe <overrides>` would, in one place.

The preflight, the Python API, the tests and the benchmarks all need the composed config
without running anything; each used to set Hydra up on its own. Imports no TensorFlow.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig

#: where the shipped configs live (conf/, installed as the package pipeline.conf)
CONFIG_MODULE = "pipeline.conf"
CONFIG_NAME = "config"
VERSION_BASE = "1.3"


@contextmanager
def tbpipe_configs(config_path: str | os.PathLike | None = None) -> Iterator[None]:
    """Hydra initialised on tbpipe's configs (or on the config dir `config_path`)."""
    from hydra import initialize_config_dir, initialize_config_module

    if config_path is not None:
        init = initialize_config_dir(
            config_dir=os.path.abspath(config_path), version_base=VERSION_BASE
        )
    else:
        init = initialize_config_module(config_module=CONFIG_MODULE, version_base=VERSION_BASE)
    with init:
        yield


def path_override(key: str, path: str | os.PathLike) -> str:
    """`key='path'`, quoted for Hydra's override grammar: a path may hold `=`, `,` or spaces."""
    # Hydra reads a backslash as an escape only in a run of them before a quote or the end
    quoted = re.sub(r"(\\*)('|$)", lambda m: m[1] * 2 + ("\\'" if m[2] else ""), str(path))
    return f"{key}='{quoted}'"


def searchpath_override(config_dir: str | os.PathLike) -> str:
    """The override `--config-dir DIR` stands for: DIR searched after tbpipe's configs."""
    return f"hydra.searchpath=[file://{Path(config_dir).resolve()}]"


def compose_config(
    overrides: Sequence[str] = (),
    *,
    multirun: bool = False,
    config_dir: str | os.PathLike | None = None,
) -> DictConfig:
    """The config `tbpipe [-m] <overrides>` runs, with its `hydra` node filled in."""
    from hydra.types import RunMode

    from pipeline.compat import compose_with_hydra

    overrides = list(overrides)
    if config_dir is not None:
        overrides.append(searchpath_override(config_dir))
    mode = RunMode.MULTIRUN if multirun else RunMode.RUN
    with tbpipe_configs():
        return compose_with_hydra(CONFIG_NAME, overrides, mode)
