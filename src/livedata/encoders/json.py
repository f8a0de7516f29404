"""Strict, lossless JSON for browsers (the default response format).

Encodings, identical for every connector and at every nesting depth (the matrix is in
docs/types.md):
- integers: numbers while |n| <= 2^53 - 1 (what a browser represents exactly), beyond that
  strings with every digit;
- decimals: strings with every digit and the column's scale ("16473.51");
- floats: numbers; NaN, Infinity, -Infinity as the strings "NaN", "Infinity", "-Infinity"
  (JSON has no tokens for them; this is the protobuf JSON convention);
- dates "YYYY-MM-DD"; times "HH:MM:SS[.ffffff]"; timestamps with a zone in UTC as
  "YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00"; timestamps without a zone with no offset; the
  largest and smallest value of a date or timestamp type (how PostgreSQL's and DuckDB's
  infinities arrive) as "infinity" and "-infinity";
- durations and intervals as ISO 8601 durations, each part signed on its own as PostgreSQL's
  ``iso_8601`` interval style writes them ("P1M-2DT3H4M5.5S", "PT-25H");
- binary as base64 strings; uuids as their canonical text; json columns as the JSON values
  they hold; lists as arrays; structs as objects; maps as arrays of {"key", "value"}
  objects (keys of any type, in order, duplicates kept); nulls as null.

Columns are converted a batch at a time with Arrow compute, then orjson writes rows of
plain Python values: no per-value Python dispatch except for nested, binary and duration
values. A nested column's children go through the same conversions, so nesting changes
nothing.
"""

from __future__ import annotations

import base64
import decimal
import functools
import itertools
from collections.abc import Iterator
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from livedata.encoders.base import Encoder, Meta, RecordBatches, batches
from livedata.errors import UnsupportedType

MAX_SAFE_INTEGER = 2**53 - 1
_SPECIAL_FLOATS = {float("inf"): "Infinity", float("-inf"): "-Infinity"}
_OUT_OF_RANGE = "<"  # how Arrow's cast to string starts a date it cannot write
_NANOSECONDS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


class Unencodable(ValueError):
    """A value with no encoding; the caller, which knows the column, names it."""


class JSONEncoder(Encoder):
    name = "json"
    media_type = "application/json"

    def encode(self, rows: RecordBatches, meta: Meta) -> Iterator[bytes]:
        yield b'{"columns":' + orjson.dumps(describe_columns(rows.schema)) + b',"rows":['
        first = True
        for batch in batches(rows):
            if batch.num_rows == 0:
                continue
            encoded = orjson.dumps(list(zip(*json_columns(batch), strict=True)))
            yield (b"" if first else b",") + encoded[1:-1]
            first = False
        yield b'],"meta":' + orjson.dumps(meta(), default=_meta_default) + b"}"


def describe_columns(schema: pa.Schema) -> list[dict[str, str]]:
    return [{"name": name, "type": kind} for name, kind in _described(schema)]


# Named once per schema: naming the 12 columns of the sample table cost ~140k instructions,
# asked twice per live result (the body's columns, the header's), more than hashing the
# schema. Schemas compare by names and types, all that a description depends on.
@functools.lru_cache(maxsize=256)
def _described(schema: pa.Schema) -> tuple[tuple[str, str], ...]:
    return tuple((f.name, type_name(f.type)) for f in schema)


def type_name(t: pa.DataType) -> str:
    """A short, connector-independent type name for the response header."""
    if pa.types.is_dictionary(t):
        return type_name(t.value_type)
    if isinstance(t, pa.BaseExtensionType):
        name: str = t.extension_name
        return _EXTENSION_NAMES.get(name, name)
    if pa.types.is_duration(t):
        return "duration"
    if pa.types.is_interval(t):
        return "interval"
    if pa.types.is_map(t):
        return f"map<{type_name(t.key_type)},{type_name(t.item_type)}>"
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


_EXTENSION_NAMES = {"arrow.json": "json", "arrow.uuid": "uuid"}


def json_columns(batch: pa.RecordBatch) -> list[list[Any]]:
    """Every column as JSON-ready values; a value with no encoding refuses the column."""
    columns = []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        try:
            columns.append(json_values(column))
        except Unencodable as exc:
            raise UnsupportedType.for_column(
                field.name, type_name(field.type), str(exc), "cast it to text"
            ) from exc
    return columns


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
    if pa.types.is_time(t):
        return pc.cast(array, pa.string()).to_pylist()  # type: ignore[no-any-return]
    if pa.types.is_date(t):
        return _infinite(array, pc.cast(array, pa.string()))
    if pa.types.is_timestamp(t):
        return _timestamps(array)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return [None if v is None else base64.b64encode(v).decode() for v in array.to_pylist()]
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return array.to_pylist()  # type: ignore[no-any-return]
    if pa.types.is_boolean(t) or pa.types.is_null(t):
        return array.to_pylist()  # type: ignore[no-any-return]
    return _other(array)


def _other(array: pa.Array) -> list[Any]:
    """The rarer types, each with a per-value step in Python."""
    t = array.type
    if isinstance(t, pa.JsonType):
        # The source's own JSON text, as is: its numbers keep every digit. Line breaks can only
        # be whitespace between tokens there, and NDJSON needs a row on one line.
        text = pc.replace_substring_regex(array.storage, "[\r\n]", " ")
        return [None if v is None else orjson.Fragment(v) for v in text.to_pylist()]
    if isinstance(t, pa.UuidType):
        return [None if v is None else str(v) for v in array.to_pylist()]
    if pa.types.is_duration(t):
        factor = _NANOSECONDS[t.unit]
        return [
            None if v is None else iso_duration(0, 0, v * factor)
            for v in array.cast(pa.int64()).to_pylist()
        ]
    if t == pa.month_day_nano_interval():
        return [None if v is None else iso_duration(*v) for v in array.to_pylist()]
    if pa.types.is_list_view(t) or pa.types.is_large_list_view(t) or pa.types.is_fixed_size_list(t):
        return _lists(array.cast(pa.large_list(t.value_field)))
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_map(t):
        return _lists(array)  # a map is a list of {"key", "value"} structs
    if pa.types.is_struct(t):
        names = [field.name for field in t]
        fields = [json_values(array.field(i)) for i in range(t.num_fields)]
        return _masked(
            array, [dict(zip(names, row, strict=True)) for row in zip(*fields, strict=True)]
        )
    raise Unencodable(f"livedata has no JSON encoding for Arrow type {t}")


def _lists(array: pa.Array) -> list[Any]:
    offsets = array.offsets.to_pylist()  # into the whole child array, also for a slice
    start = offsets[0]
    values = json_values(array.values.slice(start, offsets[-1] - start))
    lists = [values[a - start : b - start] for a, b in itertools.pairwise(offsets)]
    return _masked(array, lists)


def _masked(array: pa.Array, values: list[Any]) -> list[Any]:
    """``values`` with None where ``array`` is null (its children may hold anything there)."""
    if array.null_count == 0:
        return values
    return [
        v if valid else None for v, valid in zip(values, array.is_valid().to_pylist(), strict=True)
    ]


def iso_duration(months: int, days: int, nanoseconds: int) -> str:
    """An ISO 8601 duration, each part signed on its own as PostgreSQL's ``iso_8601``
    interval style writes it: months and days vary in length, so they never borrow."""
    years, rest = divmod(abs(months), 12)
    if months < 0:
        years, rest = -years, -rest
    sign = "-" if nanoseconds < 0 else ""
    hours, left = divmod(abs(nanoseconds), 3600 * 10**9)
    minutes, left = divmod(left, 60 * 10**9)
    seconds, fraction = divmod(left, 10**9)
    date = "".join(f"{n}{unit}" for n, unit in ((years, "Y"), (rest, "M"), (days, "D")) if n)
    clock = "".join(f"{sign}{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M")) if n)
    if seconds or fraction:
        digits = f".{fraction:09d}".rstrip("0") if fraction else ""
        clock += f"{sign}{seconds}{digits}S"
    if not date and not clock:
        return "PT0S"
    return f"P{date}T{clock}" if clock else f"P{date}"


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
    return _infinite(array, text)


def _infinite(array: pa.Array, text: pa.Array) -> list[Any]:
    """``text`` (the dates written out), with the type's extremes as "infinity" and
    "-infinity"; any other value Arrow cannot write (past year 9999) has no encoding."""
    if not pc.any(pc.starts_with(text, _OUT_OF_RANGE)).as_py():
        return text.to_pylist()  # type: ignore[no-any-return]
    width = array.type.bit_width
    highest = 2 ** (width - 1) - 1
    storage = array.view(pa.int64() if width == 64 else pa.int32()).to_pylist()
    values = []
    for value, written in zip(storage, text.to_pylist(), strict=True):
        if value is not None and value >= highest:
            written = "infinity"
        elif value is not None and value <= -highest:
            written = "-infinity"
        elif written is not None and written.startswith(_OUT_OF_RANGE):
            raise Unencodable(f"{written[1:-1]} is outside the years 1 to 9999")
        values.append(written)
    return values


def _meta_default(value: Any) -> Any:
    """Parameter values in ``meta`` of a type orjson does not write itself."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")
