"""How a lossy format keeps going: columns it cannot hold are stored as text it can.

A format that refused the whole table over one list column would say nothing about the rest,
so the study lets it store what it can and records the column as lost (``study.fidelity``).
Dictionary columns are decoded first; nested values become JSON text, binary becomes base64,
everything else Arrow's own cast to string.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import orjson
import pyarrow as pa
import pyarrow.compute as pc


def coerce(table: pa.Table, unsupported: Callable[[pa.DataType], bool]) -> pa.Table:
    """``table`` with every column of an ``unsupported`` type turned into one the format holds."""
    for index, field in enumerate(table.schema):
        column = table.column(index)
        if pa.types.is_dictionary(field.type) and unsupported(field.type):
            column = column.cast(field.type.value_type)
        if unsupported(column.type):
            column = _as_text(column)
        if column is not table.column(index):
            table = table.set_column(index, pa.field(field.name, column.type), column)
    return table


def nanoseconds(kind: pa.DataType) -> bool:
    """Python's datetime stops at microseconds: formats that go through it cannot hold these."""
    return bool(pa.types.is_temporal(kind) and getattr(kind, "unit", None) == "ns")


def nested(kind: pa.DataType) -> bool:
    return bool(pa.types.is_nested(kind))


def binary(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
    )


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_nested(kind):
        return pa.chunked_array(
            [
                [
                    None if v is None else orjson.dumps(v, default=str).decode()
                    for v in column.to_pylist()
                ]
            ],
            pa.string(),
        )
    if binary(kind):
        return pa.chunked_array(
            [[None if v is None else base64.b64encode(v).decode() for v in column.to_pylist()]],
            pa.string(),
        )
    return pc.cast(column, pa.string())
