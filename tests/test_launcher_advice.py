"""What the docs say about joblib matches what was measured: it is not presented for
speed on short jobs (docs/PERFORMANCE.md, "Sweeps: basic vs joblib", has the figures)."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def test_joblib_is_shown_for_long_jobs_and_said_slower_for_short_ones():
    readme = (ROOT / "README.md").read_text()
    launchers = (ROOT / "docs" / "LAUNCHERS.md").read_text()
    performance = (ROOT / "docs" / "PERFORMANCE.md").read_text()
    assert "**joblib is not the faster choice for short jobs.**" in launchers
    assert "Keep the default launcher unless your jobs are long." in launchers
    assert "basic vs joblib" in performance.lower()
    for line in readme.splitlines():
        if "hydra/launcher=joblib" in line:  # every joblib command the README shows
            steps = re.search(r"trainer\.steps=(\d+)", line)
            assert steps and int(steps[1]) >= 10_000, line
            assert "short ones: the default is faster" in line, line
