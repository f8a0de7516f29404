"""Which filter ops a column takes, by its type, and a filter's value converted to that type.

Decided from the column's Arrow type before the source is asked: a filter that cannot apply
is a 422 naming the column, its type and the ops it takes, never the source's own error.
A connector whose Arrow type does not say the source's type (PostgreSQL's uuid and enums
arrive as text) names it in the field's ``livedata:cast`` metadata: the bound value is cast
to it (the parameter, never the column, so an index on the column still applies), and only
equality ops apply, since text comparisons and ``contains`` mean nothing there.
"""

from __future__ import annotations

import decimal
from typing import Any

import pyarrow as pa

from livedata import sql
from livedata.connectors.base import CAST
from livedata.encoders.json import type_name
from livedata.errors import InvalidOption, InvalidParameter
from livedata.params import ParamSpec

MAX_DECIMAL_DIGITS = 76  # the widest decimal Arrow holds (decimal256)

EQUALITY: tuple[sql.FilterOp, ...] = ("eq", "ne", "in", "is_null")
ORDERED: tuple[sql.FilterOp, ...] = ("eq", "ne", "lt", "le", "gt", "ge", "in", "is_null")
TEXT: tuple[sql.FilterOp, ...] = (*ORDERED, "contains")
NULL_ONLY: tuple[sql.FilterOp, ...] = ("is_null",)
MEMBERSHIP: tuple[sql.FilterOp, ...] = ("has", "is_null")

_ORDERED_TYPES = (
    pa.types.is_integer,
    pa.types.is_floating,
    pa.types.is_decimal,
    pa.types.is_date,
    pa.types.is_timestamp,
)
_PARAM_TYPES = (
    (pa.types.is_integer, "int"),
    (pa.types.is_floating, "float"),
    (pa.types.is_boolean, "bool"),
    (pa.types.is_timestamp, "datetime"),
    (pa.types.is_date, "date"),
)


def ops(field: pa.Field) -> tuple[sql.FilterOp, ...]:
    """The ops a filter on ``field`` may use. A list of numbers, text or dates takes ``has``
    (it holds the value); structs, json, binary, times and durations take only ``is_null``:
    their comparisons differ from source to source."""
    kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
    if _is_text(kind):
        return EQUALITY if cast_to(field) else TEXT
    if any(test(kind) for test in _ORDERED_TYPES):
        return ORDERED
    if pa.types.is_boolean(kind):
        return EQUALITY
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        item = kind.value_type
        if (_is_text(item) or any(test(item) for test in _ORDERED_TYPES)) and not cast_to(field):
            return MEMBERSHIP
    return NULL_ONLY


def describe(schema: pa.Schema) -> list[dict[str, Any]]:
    """Each column's name, type and the ops a filter on it takes, as ``/queries`` lists them."""
    return [{"name": f.name, "type": type_name(f.type), "ops": list(ops(f))} for f in schema]


def cast_to(field: pa.Field) -> str | None:
    cast = (field.metadata or {}).get(CAST)
    return cast.decode() if cast else None


def check(index: int, f: sql.Filter, field: pa.Field, type_name: str) -> sql.Filter:
    """``f`` with its value converted to ``field``'s type; InvalidOption says why not."""
    allowed = ops(field)
    if f.op not in allowed:
        raise InvalidOption(
            f"filters[{index}]: {f.op!r} does not apply to column {f.column!r} ({type_name}); "
            f"it takes {', '.join(allowed)}.",
            filter=index,
            column=f.column,
            type=type_name,
            ops=list(allowed),
        )
    where = f"filters[{index}].value"
    if f.op == "is_null":
        if not isinstance(f.value, bool | None):
            raise InvalidOption(f"{where} must be true or false for is_null.")
        return f
    kind = _param_type(field.type.value_type if f.op == "has" else field.type)
    spec = ParamSpec(
        type=f"list[{kind}]" if f.op == "in" else kind, min_length=1 if f.op == "in" else None
    )
    try:
        value = spec.convert(where, f.value)
    except InvalidParameter as exc:
        rule = exc.details["rule"]
        raise InvalidOption(f"{where} {rule} (got {f.value!r}).", filter=index) from exc
    if pa.types.is_decimal(field.type.value_type if f.op == "has" else field.type):
        try:
            value = [_decimal(v) for v in value] if f.op == "in" else _decimal(value)
        except decimal.InvalidOperation as exc:
            raise InvalidOption(
                f"{where} must be a decimal number of at most {MAX_DECIMAL_DIGITS} digits.",
                filter=index,
            ) from exc
    return sql.Filter(f.column, f.op, value, cast_to(field))


def _decimal(text: str) -> decimal.Decimal:
    """A finite decimal that every source can bind (NaN and huge exponents they refuse)."""
    number = decimal.Decimal(text)
    if not number.is_finite() or abs(number.adjusted()) >= MAX_DECIMAL_DIGITS:
        raise decimal.InvalidOperation(text)
    return number


def _param_type(column_type: pa.DataType) -> str:
    for test, name in _PARAM_TYPES:
        if test(column_type):
            return name
    return "str"  # text, and decimals (converted exactly from their digits, never via float)


def _is_text(column_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(column_type)
        or pa.types.is_large_string(column_type)
        or pa.types.is_string_view(column_type)
    )
