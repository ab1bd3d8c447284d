"""A run is composed once: Hydra's start of it (`@hydra.main`, which composes the command
twice: to read `hydra.mode`, then to run) takes the preflight's composition of the same
command. What Hydra is handed must equal what it would have composed itself."""

from __future__ import annotations

import pytest
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf

from pipeline import compat
from pipeline.check import preflight
from pipeline.check.compose import path_override, tbpipe_configs
from pipeline.job import _compose_once


def hydra_compose(overrides: list[str], run_mode: RunMode, validate: bool = True):
    """What `@hydra.main` asks Hydra's config loader for a run."""
    return GlobalHydra.instance().hydra.compose_config(
        "config", overrides, run_mode=run_mode, validate_sweep_overrides=validate
    )


@pytest.mark.parametrize("run_dir", [None, "my run"])  # None: a ${now:...} dir, pinned
def test_hydras_start_of_a_run_gets_what_it_would_compose(tmp_path, monkeypatch, run_dir):
    monkeypatch.chdir(tmp_path)
    argv = ["+experiment=digits_classifier", "trainer.steps=5"]
    argv += [] if run_dir is None else [f"hydra.run.dir={run_dir}"]
    output = preflight.check_command_line(argv)
    assert preflight.composed_run  # kept for the run
    final = argv + ([path_override(output.key, output.path)] if output.pinned else [])
    _compose_once(final, output)
    assert compat._composed_run and not preflight.composed_run  # noqa: SLF001
    with tbpipe_configs():
        served_mode = hydra_compose(final, RunMode.MULTIRUN, validate=False)
        served = hydra_compose([*final, "hydra.mode=RUN"], RunMode.RUN)
        assert not compat._composed_run  # noqa: SLF001  each served once, then forgotten
        own_mode = hydra_compose(final, RunMode.MULTIRUN, validate=False)
        own = hydra_compose([*final, "hydra.mode=RUN"], RunMode.RUN)
    assert served_mode.hydra.mode == own_mode.hydra.mode
    assert OmegaConf.to_yaml(served) == OmegaConf.to_yaml(own)
    assert served.hydra.run.dir == output.path


def test_a_command_with_flags_composes_as_hydra_would(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["trainer.steps=5", "hydra.run.dir=r"]
    output = preflight.check_command_line(argv)
    _compose_once(["--cfg", "job", *argv], output)  # not the overrides checked alone
    assert not compat._composed_run and not preflight.composed_run  # noqa: SLF001
