"""Pages where nothing is cached: keyset paging over the live source.

A target that is not cached (``ttl = 0``, or no cache at all) has no snapshot to pin, so its
cursor says where the next page starts instead: the request's shape and the ``order_by``
values of the last row sent. The next page is the rows after that row (``sql._after``, nulls
included), read from the source as it is then: rows changed between pages are seen as they
now are, and none is skipped or repeated as long as the order tells rows apart. Where it
visibly does not (the last row of a page and the first of the next hold the same values), the
page is refused rather than cut. Each page asks the source for one row more than it sends, to
know whether another follows.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pyarrow as pa

from livedata import filters, sql
from livedata.cursors import Cursor
from livedata.encoders.json import type_name
from livedata.errors import CursorsNeedOrder, InvalidCursor, InvalidOption
from livedata.plan import QueryRequest

NEEDS_ORDER = (
    'This target is not cached (ttl 0), so cursors page it by keyset: give "order_by" '
    "columns that tell rows apart (a key), and each next page starts after the last row sent."
)


def shape(request: QueryRequest) -> dict[str, Any]:
    """What a cursor carries of the first page's request, to ask for the next ones alike."""
    return {
        "params": dict(request.params),
        "columns": None if request.columns is None else list(request.columns),
        "filters": [[f.column, f.op, f.value] for f in request.filters],
        "order_by": [[column, descending] for column, descending in request.order_by],
    }


def resumed(request: QueryRequest, cursor: Cursor) -> tuple[QueryRequest, dict[str, Any]]:
    """``request`` (its target, and page size if it gives one) asking for the rows after
    ``cursor``'s, in the shape the cursor carries; and that shape."""
    carried, after = cursor.shape, cursor.after
    if carried is None or after is None:
        raise InvalidCursor("This cursor pages a snapshot, not the live source; start again.")
    asked = replace(
        request,
        params=carried["params"],
        columns=carried["columns"],
        filters=[sql.Filter(column, op, value) for column, op, value in carried["filters"]],
        order_by=[(column, descending) for column, descending in carried["order_by"]],
        limit=request.limit or cursor.limit,
        offset=0,
        after=after,
    )
    return asked, carried


def reading_order(request: QueryRequest) -> QueryRequest:
    """``request`` reading its ``order_by`` columns too: the cursor needs their values,
    whether or not the client asked to see them."""
    if request.columns is None:
        return request
    missing = [column for column, _ in request.order_by if column not in request.columns]
    return replace(request, columns=[*request.columns, *missing]) if missing else request


def check_order(order_by: Sequence[tuple[str, bool]], schema: pa.Schema) -> None:
    """Every column of ``order_by`` compares alike in SQL and here (numbers, text, dates and
    times), or its type is unknown (SQLite's, with no row to see) and values are compared
    as stored; columns are known to exist (the plan checked them)."""
    for column, _ in order_by:
        field = schema.field(column)
        if not pa.types.is_null(field.type) and "gt" not in filters.ops(field):
            raise CursorsNeedOrder(
                f"Keyset paging cannot order by {column!r} ({type_name(field.type)}): "
                "order by numbers, text, dates or timestamps that tell rows apart (a key)."
            )


def page_size(limit: int | None, max_rows: int) -> int:
    """The page size: a first page gives one (``QueryService.page`` checks), a next page
    may, or takes its cursor's."""
    assert limit is not None, "a first page gives a limit, a cursor carries one"
    if limit > max_rows:
        raise InvalidOption(f'"limit" (the page size) must be at most {max_rows} for this source.')
    return limit


def next_after(
    rows: pa.Table, order_by: Sequence[tuple[str, bool]], limit: int
) -> list[Any] | None:
    """The ``order_by`` values, as JSON, of the page's last row; None when no row follows
    (``rows`` holds up to one row past the page)."""
    if rows.num_rows <= limit:
        return None
    names = [column for column, _ in order_by]
    last = [rows.column(name)[limit - 1].as_py() for name in names]
    following = [rows.column(name)[limit].as_py() for name in names]
    if last == following:
        raise CursorsNeedOrder(
            f"Rows {limit} and {limit + 1} hold the same order_by values "
            f"({', '.join(f'{n}={v!r}' for n, v in zip(names, last, strict=True))}): a page "
            "ending between them would skip or repeat rows. Add a column that tells rows "
            "apart (a key) to order_by."
        )
    return [_json(name, value) for name, value in zip(names, last, strict=True)]


def _json(column: str, value: Any) -> Any:
    """A value as a filter on its column takes it back (``filters.check``)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise CursorsNeedOrder(
            f"Keyset paging cannot start after {value} in {column!r}: it has no place in "
            "a comparison every source makes alike. Filter it out, or order by another column."
        )
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.date):  # datetimes too
        return value.isoformat()
    return value
