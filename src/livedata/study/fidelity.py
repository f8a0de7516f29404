"""What a format gives back: each column compared with the one it was given.

Verdicts, best first:
- ``exact``: the same Arrow type and the same values (NaN counts as equal to NaN);
- ``retyped``: another type, but cast back to the original it equals it (a string column
  read back as ``string_view``, a zone replaced by UTC): the values survive, the schema a
  client sees does not;
- ``lost``: values differ, or cannot be cast back;
- ``missing``: the column did not come back.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

VERDICTS = ("exact", "retyped", "lost", "missing")


def compare(original: pa.Table, back: pa.Table) -> dict[str, str]:
    """Column name -> verdict."""
    verdicts = {}
    for field in original.schema:
        if field.name not in back.schema.names:
            verdicts[field.name] = "missing"
            continue
        want, got = original.column(field.name), back.column(field.name)
        if want.type == got.type:
            verdicts[field.name] = "exact" if _same(want, got) else "lost"
            continue
        try:
            cast = got.cast(want.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            verdicts[field.name] = "lost"
            continue
        verdicts[field.name] = "retyped" if _same(want, cast) else "lost"
    return verdicts


def summary(verdicts: dict[str, str], back: pa.Table | None = None) -> str:
    """``exact`` or a short account of what was lost, for a table cell."""
    worst = [f"{name}: {verdict}" for name, verdict in verdicts.items() if verdict != "exact"]
    return "exact" if not worst else "; ".join(worst)


def _same(want: pa.ChunkedArray, got: pa.ChunkedArray) -> bool:
    if len(want) != len(got):
        return False
    if pa.types.is_floating(want.type):
        want_nan, got_nan = pc.is_nan(want), pc.is_nan(got)
        if not want_nan.equals(got_nan):
            return False
        return bool(pc.if_else(want_nan, 0.0, want).equals(pc.if_else(got_nan, 0.0, got)))
    return bool(want.equals(got))
