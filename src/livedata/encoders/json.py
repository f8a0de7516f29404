"""Strict, lossless JSON for browsers (the default response format).

Encodings, identical for every connector (documented in the README):
- integers: numbers while |n| <= 2^53 - 1 (what a browser represents exactly), beyond that
  strings with every digit;
- decimals: strings with every digit and the column's scale ("16473.51");
- floats: numbers; NaN, Infinity, -Infinity as the strings "NaN", "Infinity", "-Infinity"
  (JSON has no tokens for them; this is the protobuf JSON convention);
- dates "YYYY-MM-DD"; times "HH:MM:SS[.ffffff]"; timestamps with a zone in UTC as
  "YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00"; timestamps without a zone with no offset;
- binary as base64 strings; lists as arrays; structs as objects; nulls as null.

Columns are converted a batch at a time with Arrow compute, then orjson writes rows of
plain Python values: no per-value Python dispatch except for the rare nested and binary types.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
from collections.abc import Iterator
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from livedata.encoders.base import Encoder, Meta, RecordBatches, batches

MAX_SAFE_INTEGER = 2**53 - 1
_SPECIAL_FLOATS = {float("inf"): "Infinity", float("-inf"): "-Infinity"}


class JSONEncoder(Encoder):
    name = "json"
    media_type = "application/json"

    def encode(self, rows: RecordBatches, meta: Meta) -> Iterator[bytes]:
        yield b'{"columns":' + orjson.dumps(describe_columns(rows.schema)) + b',"rows":['
        first = True
        for batch in batches(rows):
            if batch.num_rows == 0:
                continue
            encoded = orjson.dumps(
                list(zip(*json_columns(batch), strict=True)), default=_nested_default
            )
            yield (b"" if first else b",") + encoded[1:-1]
            first = False
        yield b'],"meta":' + orjson.dumps(meta(), default=_nested_default) + b"}"


def describe_columns(schema: pa.Schema) -> list[dict[str, str]]:
    return [{"name": f.name, "type": type_name(f.type)} for f in schema]


def type_name(t: pa.DataType) -> str:
    """A short, connector-independent type name for the response header."""
    if pa.types.is_dictionary(t):
        return type_name(t.value_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "binary"
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_time(t):
        return "time"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return f"list<{type_name(t.value_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{f.name}:{type_name(f.type)}" for f in t) + ">"
    if pa.types.is_boolean(t):
        return "bool"
    return str(t)  # int8..int64, uint8..uint64, float/double as Arrow names them, null


def json_columns(batch: pa.RecordBatch) -> list[list[Any]]:
    return [json_values(column) for column in batch.columns]


def json_values(array: pa.Array) -> list[Any]:
    """One column as JSON-ready Python values, following the module's encodings."""
    t = array.type
    if pa.types.is_dictionary(t):
        return json_values(array.dictionary_decode())
    if pa.types.is_integer(t):
        if t.bit_width == 64 and not _all_safe(array):
            return [
                v if v is None or abs(v) <= MAX_SAFE_INTEGER else str(v) for v in array.to_pylist()
            ]
        return _plain(array)
    if pa.types.is_floating(t):
        if pc.all(pc.is_finite(array), skip_nulls=True).as_py() is False:
            return [_special_float(v) for v in array.to_pylist()]
        return _plain(array)
    if pa.types.is_decimal(t):
        return _decimals(array)
    if pa.types.is_date(t) or pa.types.is_time(t):
        return pc.cast(array, pa.string()).to_pylist()  # type: ignore[no-any-return]
    if pa.types.is_timestamp(t):
        return _timestamps(array)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return [None if v is None else base64.b64encode(v).decode() for v in array.to_pylist()]
    return array.to_pylist()  # type: ignore[no-any-return]  # strings, bools, nested, null


def _plain(array: pa.Array) -> list[Any]:
    if array.null_count == 0:
        return array.to_numpy(zero_copy_only=False).tolist()  # type: ignore[no-any-return]
    return array.to_pylist()  # type: ignore[no-any-return]


def _all_safe(array: pa.Array) -> bool:
    bounds = pc.min_max(array)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    return low is None or (abs(low) <= MAX_SAFE_INTEGER and abs(high) <= MAX_SAFE_INTEGER)


def _special_float(value: float | None) -> float | str | None:
    if value is None or value - value == 0:
        return value
    return "NaN" if value != value else _SPECIAL_FLOATS[value]


def _decimals(array: pa.Array) -> list[Any]:
    text = pc.cast(array, pa.string())
    values: list[Any] = text.to_pylist()
    if pc.any(pc.match_substring(text, "E")).as_py():
        # Arrow writes tiny values in scientific notation (-1E-10); browsers want digits.
        values = [
            v if v is None or "E" not in v else format(decimal.Decimal(v), "f") for v in values
        ]
    return values


def _timestamps(array: pa.Array) -> list[Any]:
    t = array.type
    text = pc.cast(pc.cast(array, pa.timestamp(t.unit)), pa.string())  # UTC wall time if zoned
    text = pc.replace_substring(text, " ", "T", max_replacements=1)
    if t.tz:
        text = pc.binary_join_element_wise(text, "+00:00", "")
    return text.to_pylist()  # type: ignore[no-any-return]


def _nested_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")
