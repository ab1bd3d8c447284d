"""Every table (report, status, a sweep's summary; the HPARAMS settings' Markdown) is drawn by
pipeline/check/text_table.py: columns line up in every line, even where a cell outgrows its
column's set width.

What `tbpipe report` prints is compared with TensorBoard's reader in
tests/test_report_reader.py; a real status and a real sweep summary are read in
tests/test_status.py and tests/test_seeds.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.check.text_table import Column, markdown_table, number, sweep_number, text_table
from pipeline.readback.groups import grouped_table
from pipeline.readback.status import JobStatus
from pipeline.readback.status import table as status_table

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"


def test_cells_line_up_under_their_titles_with_a_rule_and_no_trailing_spaces():
    rows = [["test", "1000", ""], ["train", "1000", "1.99"]]
    assert text_table(["run", "step", "k"], rows, rule=True).splitlines() == [
        "run    step  k",
        "-----  ----  ----",
        "test   1000",
        "train  1000  1.99",
    ]


def test_set_widths_gaps_and_alignment():
    columns = [Column("n", ">", 3), Column("failed", ">", 6, gap=1), Column("setting")]
    assert text_table(columns, [["3", "0", "seed=1"]]).splitlines() == [
        "  n failed  setting",
        "  3      0  seed=1",
    ]


def test_status_lines_up_a_huge_step_count_and_a_long_metric_name():
    rows = [
        JobStatus(job=0, run_dir=None, state="completed", setting="", step=None,
                  steps_planned=None, seconds=None, main_metric="test/accuracy_top5",
                  value=12345678.9),
        JobStatus(job=1, run_dir=None, state="interrupted", setting="seed=1", step=10**11,
                  steps_planned=10**11, seconds=2.25, reason="stopped"),
    ]  # fmt: skip
    assert status_table(rows).splitlines() == [
        " job  state                               step    wall s  test/accuracy_top5  setting",
        "   0  completed                          - / -         -           1.235e+07  (defaults)",
        "   1  interrupted  100000000000 / 100000000000       2.2                   -  seed=1",
        "job 1 interrupted: stopped",
        "2 jobs: 1 completed, 1 interrupted",
    ]


def test_a_grouped_table_keeps_a_wide_interval_in_its_column():
    group = {"n": 3, "failed": 0, "k_mean": -98765.4321, "k_std": None, "k_ci95_low": -1234.5678,
             "k_ci95_high": 2345.6789, "k_error_mean": 1.0, "k_stderr": 0.01,
             "setting": {"lr": 1}, "metrics": ["k"]}  # fmt: skip
    narrow = {**group, "k_ci95_low": 0.9, "k_ci95_high": 1.1, "setting": {"lr": 2}}
    assert grouped_table([group, narrow], ["lr"]).splitlines() == [
        "  n failed     k mean     k std        95% interval of k  |k-k_true|    std.err  setting",
        "  3      0  -9.88e+04         -  [-1234.5678, 2345.6789]      1.0000     0.0100  lr=1",
        "  3      0  -9.88e+04         -         [0.9000, 1.1000]      1.0000     0.0100  lr=2",
    ]


def test_the_settings_markdown_table_as_the_text_tab_renders_it():
    rows = [("data.noise_std", 0.1), ("model.units", [64, 64]), ("name", None)]
    assert markdown_table(["setting", "value"], rows).splitlines() == [
        "| setting | value |",
        "|---|---|",
        "| data.noise_std | 0.1 |",
        "| model.units | [64, 64] |",
        "| name | None |",
    ]
    assert markdown_table(["setting", "value"], []) == "| setting | value |\n|---|---|"


def test_numbers_fixed_below_the_limit_short_above_and_a_dash_for_none():
    assert [number(12.34), number(0.123456, 4), number(None)] == ["12.3", "0.1235", "-"]
    assert [number(2.5e6), sweep_number(8.04e26), sweep_number(12.34, 1)] == [
        "2e+06",
        "8.04e+26",
        "12.3",
    ]


def test_no_module_but_text_table_pads_cells_by_hand_or_joins_markdown_cells():
    padding = re.compile(r"\.[lr]just\(|\{[^{}]*:[<>^]\d|:[<>^]\{|\"\| \{|\|---\|")
    hand_made = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "text_table.py" and padding.search(path.read_text())
    ]
    assert hand_made == []
