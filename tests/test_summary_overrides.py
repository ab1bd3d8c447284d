"""A summary row's settings: each override read as Hydra's own grammar reads it.

The story: "summary.csv's seed and noise_std columns are what I typed". The sweep summary
reads a key set to a plain number (`seed=17`, `data.noise_std=0.01`: most of a sweep's
overrides) without Hydra's grammar parser, which costs about a millisecond an override;
every override, of that shape or not, must give the key and the value (and its type) that
Hydra's parser gives.
"""

from __future__ import annotations

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from pipeline.readback.jobs import PLAIN_NUMBER_OVERRIDE, parsed_setting

#: plain numbers of every sign and size, and what only looks like one (left to the grammar)
OVERRIDES = [
    "seed=0", "seed=17", "seed=-3", "seed=+5", "seed=-0", "trainer.steps=1000",
    "data.noise_std=0.01", "data.noise_std=2.0", "data.noise_std=-0.5", "x=+0.25", "x=-0.0",
    "optimizer.learning_rate=0.123456789012345678", "a_b.c_2=10", "_x=1", "true=1", "null=0.5",
    "seed=1_000", "seed=01", "x=1.", "x=.5", "x=1e-3", "x=1.5e3", "x=inf", "x=-inf", "x=nan",
    "x=true", "x=null", "x='1'", "x=abc", "x=1.0.0", "a.0=1", "a-b=1", "+seed=3", "++seed=3",
    "~seed", "~seed=3", "model=mlp", "data.noise_std=0.1,1", "x=[1,2]", "x= 1", "group@pkg=1",
    "x=${seed}", "x=1.5 ", "x=9999999999999999999999",
]  # fmt: skip


@pytest.mark.parametrize("override", OVERRIDES)
def test_an_override_gives_the_key_and_value_hydras_grammar_gives(override):
    (parsed,) = OverridesParser.create().parse_overrides([override])
    want = None if parsed.is_delete() else (parsed.key_or_group, parsed.value())
    got = parsed_setting.__wrapped__(override)
    # repr: nan is no value's equal, and 1 == 1.0 == True
    assert repr(got) == repr(want) and type(got) is type(want)
    if want is not None:
        assert type(got[1]) is type(want[1]), override


def test_the_plain_numbers_of_a_sweep_skip_the_grammar():
    """The shapes a noise x seed sweep gives are the ones read without the parser."""
    plain = [o for o in OVERRIDES if PLAIN_NUMBER_OVERRIDE.fullmatch(o)]
    assert {"seed=17", "data.noise_std=0.01", "trainer.steps=1000", "seed=-3"} <= set(plain)
    assert not {"seed=1_000", "x=1e-3", "x=inf", "+seed=3", "~seed=3", "x=1."} & set(plain)
