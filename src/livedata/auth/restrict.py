"""Row-level restrictions: values a caller's credentials force, applied where rows are chosen.

A restriction ``{tenant = "acme"}`` sets a named query's ``tenant`` parameter, and filters a
table on ``tenant = 'acme'``. It fails closed: a query without that parameter, or a table
without that column, is refused (403) rather than answered unfiltered. A request may repeat
a forced value but never change it (403, before the cache or the source is asked).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from livedata import sql
from livedata.errors import Forbidden, InvalidParameter
from livedata.params import ParamSpec


def forced_params(
    restrictions: Mapping[str, Any],
    specs: Mapping[str, ParamSpec],
    given: Mapping[str, Any],
    query: str,
) -> dict[str, Any]:
    """The request's parameters with every forced value set in them."""
    merged = dict(given)
    for name, value in restrictions.items():
        spec = specs.get(name)
        if spec is None:
            raise _cannot_apply(name, "query", query)
        if name in given and not _same(spec, name, given[name], value):
            raise Forbidden(
                f"Parameter {name!r} is set by your credentials; leave it out.", parameter=name
            )
        merged[name] = value
    return merged


def table_filters(restrictions: Mapping[str, Any], given: Sequence[sql.Filter]) -> list[sql.Filter]:
    """One equality filter per restriction; a client filter on a restricted column may only
    repeat it."""
    for f in given:
        if f.column in restrictions and (f.op, f.value) != ("eq", restrictions[f.column]):
            raise Forbidden(
                f"Rows of column {f.column!r} are chosen by your credentials; "
                "leave out filters on it.",
                column=f.column,
            )
    return [sql.Filter(column, "eq", value) for column, value in restrictions.items()]


def check_applies(restrictions: Mapping[str, Any], columns: Sequence[str], table: str) -> None:
    for name in restrictions:
        if name not in columns:
            raise _cannot_apply(name, "table", table)


def _same(spec: ParamSpec, name: str, given: Any, forced: Any) -> bool:
    try:
        return bool(spec.convert(name, given) == spec.convert(name, forced))
    except InvalidParameter:
        return False


def _cannot_apply(name: str, kind: str, target: str) -> Forbidden:
    return Forbidden(
        f"Your credentials restrict {name!r}, which {kind} {target!r} cannot be limited by; "
        "it is refused rather than answered unrestricted.",
        restriction=name,
    )
