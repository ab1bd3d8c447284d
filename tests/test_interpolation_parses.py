"""Interpolations parsed once a process (compat.cache_interpolation_parses, the stacked
launcher's): OmegaConf still resolves each read afresh, and a text that does not parse
still fails each time, in OmegaConf's words. A failure names the OmegaConf version that
changed what compat.py touches (`omegaconf.base.parse`)."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import GrammarParseError

from pipeline import compat


def broke(what: str) -> str:
    return f"omegaconf {version('omegaconf')} changed {what}: mend pipeline/compat.py"


def test_a_parse_is_kept_and_every_read_resolves_afresh():
    import omegaconf.base

    assert callable(getattr(omegaconf.base, "parse", None)), broke("omegaconf.base.parse")
    compat.cache_interpolation_parses()
    compat.cache_interpolation_parses()  # twice: one cache, not one around another
    parse = omegaconf.base.parse
    assert hasattr(parse, "cache_info") and not hasattr(parse.__wrapped__, "cache_info")
    calls = []
    OmegaConf.register_new_resolver("test_parses.count", lambda: calls.append(1) or len(calls))
    try:
        config = OmegaConf.create({"n": "${test_parses.count:}", "a": 1, "b": "x${a}"})
        before = parse.cache_info().hits
        assert [config.n, config.n, config.b, config.b] == [1, 2, "x1", "x1"], broke(
            "how an interpolation is resolved from its parse tree"
        )
        assert parse.cache_info().hits >= before + 2, broke("where an interpolation is parsed")
        config.a = 5
        assert config.b == "x5"
    finally:
        OmegaConf.clear_resolver("test_parses.count")


def test_a_text_that_does_not_parse_fails_every_time():
    import omegaconf.base

    compat.cache_interpolation_parses()
    for _ in range(2):
        with pytest.raises(GrammarParseError):
            omegaconf.base.parse("${a.}")
        with pytest.raises(GrammarParseError):
            OmegaConf.create({"bad": "${a.}"})
