"""A sweep's preflight parses each `${...}` text once (compat.interpolation_parses_kept) and
leaves OmegaConf's parse as it found it: a launcher other than the stacked one (which
keeps parses for the whole process) runs with OmegaConf's own."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from omegaconf import OmegaConf

from pipeline import compat


def broke(what: str) -> str:
    return f"omegaconf {version('omegaconf')} changed {what}: mend pipeline/compat.py"


def test_parses_are_kept_inside_the_block_and_parse_is_as_before_after_it():
    import omegaconf.base

    before = omegaconf.base.parse
    config = OmegaConf.create({"a": 1, "b": "x${a}"})
    with compat.interpolation_parses_kept():
        parse = omegaconf.base.parse
        assert hasattr(parse, "cache_info"), broke("omegaconf.base.parse")
        hits = parse.cache_info().hits
        assert [config.b, config.b] == ["x1", "x1"]
        assert parse.cache_info().hits >= hits + 1, broke("where an interpolation is parsed")
    assert omegaconf.base.parse is before
    assert config.b == "x1"


@pytest.mark.slow  # a first composition in the process: seconds
def test_a_sweeps_preflight_leaves_parse_as_it_found_it(tmp_path):
    import omegaconf.base

    import pipeline.sweeps  # noqa: F401  the job dir resolver, as the console script has it
    from pipeline.check.preflight import check_command_line

    before = omegaconf.base.parse
    output = check_command_line(
        ["-m", "seed=1,2", "trainer.steps=3", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    )
    assert output is not None and output.key == "hydra.sweep.dir"
    assert omegaconf.base.parse is before
