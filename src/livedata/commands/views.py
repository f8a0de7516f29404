"""Rows as text for a terminal: an aligned table, or one record per block when the table would
be wider than the terminal (as ``psql``'s expanded display), NULL shown apart from text.

Plain text, not a rich table: a rich table squeezes columns to the terminal's width (cutting
``order_date`` to ``ord...``) and takes seconds for a hundred thousand rows; these views keep
every character and cost one pass over the rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from livedata.encoders.json import json_columns

_DIM, _RESET = "\x1b[2m", "\x1b[0m"
_ESCAPES = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


@dataclass(frozen=True)
class Style:
    null: str = "NULL"  # what a NULL prints as
    color: bool = False  # dim the NULL marker (a terminal that takes colour)

    def cell(self, value: Any) -> tuple[str, bool]:
        """The text of one value, and whether it is the NULL marker."""
        if value is None:
            return self.null, True
        return text(value), False


def text(value: Any) -> str:
    """One JSON-encoded value on one line: control characters escaped, nested values (and
    json values) as their JSON text."""
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict | orjson.Fragment):
        return orjson.dumps(value).decode()
    return str(value)  # an int or a finite float


def width(rows: pa.Table, style: Style) -> int:
    """How many characters the aligned table's widest line takes."""
    widths = _widths(rows, style)
    return sum(widths) + 3 * len(widths) - 1 if widths else 0


def table(rows: pa.Table, style: Style) -> Iterator[str]:
    """Lines of an aligned table: a header, a rule, then one line per row; numbers right."""
    widths = _widths(rows, style)
    numeric = [_is_number(t) for t in rows.schema.types]
    names = rows.schema.names
    yield " " + " | ".join(n.ljust(w) for n, w in zip(names, widths, strict=True))
    yield "-" + "-+-".join("-" * w for w in widths) + "-"
    for row in _rows(rows):
        cells = []
        for value, w, right in zip(row, widths, numeric, strict=True):
            shown, null = style.cell(value)
            padded = shown.rjust(w) if right and not null else shown.ljust(w)
            cells.append(_dim(padded, style) if null else padded)
        yield " " + " | ".join(cells)


def vertical(rows: pa.Table, style: Style) -> Iterator[str]:
    """One block per row, a line per column: for rows wider than the terminal."""
    names = rows.schema.names
    label = max((len(n) for n in names), default=0)
    for index, row in enumerate(_rows(rows), 1):
        yield f"-[ RECORD {index} ]" + "-" * max(0, label - 8)
        for name, value in zip(names, row, strict=True):
            shown, null = style.cell(value)
            yield f"{name.ljust(label)} | {_dim(shown, style) if null else shown}"


def _widths(rows: pa.Table, style: Style) -> list[int]:
    widths = [len(name) for name in rows.schema.names]
    for row in _rows(rows):
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(style.cell(value)[0]))
    return widths


def _rows(rows: pa.Table) -> Iterator[tuple[Any, ...]]:
    """Values as the JSON format encodes them: every type the API serves, infinities and
    durations included, prints as the API would send it."""
    for batch in rows.to_batches(max_chunksize=4096):
        yield from zip(*json_columns(batch), strict=True)


def _is_number(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )


def _dim(shown: str, style: Style) -> str:
    return f"{_DIM}{shown}{_RESET}" if style.color else shown
