"""Every table tbpipe draws: console tables (`tbpipe report`, `tbpipe status`, a sweep's
summary) and the Markdown table of a run's settings in TensorBoard's TEXT tab.

Console tables all line up the same way: each column as wide as its widest cell (at least
its set width), cells flush left or right, no trailing spaces, and a column that outgrows
its width pushes the next ones along instead of breaking the alignment. Written out rather
than drawn with rich.table: rich gives this plain text only with its markup, wrapping and
console width turned off, and importing it would add more to `tbpipe status` than drawing
the table takes. TensorBoard renders a text summary as Markdown, so the TEXT tab's table
is a Markdown one (`markdown_table`). Pure text, no tbpipe import, in the lowest stage with
a package of its own, so the sinks (stage 2) and readback (stage 3) both draw with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Column:
    """One column: its title, how its cells line up ("<" flush left, ">" flush right), the
    width it takes at least, and the spaces between it and the column before."""

    title: str
    align: Literal["<", ">"] = "<"
    width: int = 0
    gap: int = 2


def text_table(
    columns: Sequence[Column | str], rows: Sequence[Sequence[str]], rule: bool = False
) -> str:
    """The rows under their columns' titles, a line of dashes between them when `rule`.
    A plain string is a column of that title, flush left."""
    columns = [Column(c) if isinstance(c, str) else c for c in columns]
    lines = [[column.title for column in columns], *rows]
    widths = [
        max(column.width, *map(len, cells))
        for column, cells in zip(columns, zip(*lines, strict=True), strict=True)
    ]
    if rule:
        lines.insert(1, ["-" * width for width in widths])
    layout = [
        (" " * (column.gap if i else 0), str.ljust if column.align == "<" else str.rjust, width)
        for i, (column, width) in enumerate(zip(columns, widths, strict=True))
    ]
    return "\n".join(
        "".join(
            gap + pad(cell, width) for cell, (gap, pad, width) in zip(line, layout, strict=True)
        ).rstrip()
        for line in lines
    )


def markdown_table(titles: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """The rows under their titles as a Markdown table, as TensorBoard's TEXT tab renders it."""
    rule = "|" + "---|" * len(titles)
    cells = ["| " + " | ".join(map(str, line)) + " |" for line in [titles, *rows]]
    return "\n".join([cells[0], rule, *cells[1:]])


def number(value: Any, digits: int = 1, fixed_below: float = 1e6, short: int = 0) -> str:
    """A number in a table: `digits` decimals, or from `fixed_below` on (a diverged run's k)
    `short` significant digits (0: `digits`); "-" for none."""
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if abs(value) < fixed_below else f"{value:.{short or digits}g}"


def sweep_number(value: Any, digits: int = 4) -> str:
    """A number in a sweep's tables: `digits` decimals, three significant digits from 10,000
    on (a diverged k is huge, and the column is narrow)."""
    return number(value, digits, fixed_below=1e4, short=3)
