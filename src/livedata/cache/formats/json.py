"""JSON as a generic tool writes it (rows as objects, by orjson), and NDJSON (one object per
line, read back by Arrow's parallel reader). Neither carries types: the reader infers them."""

from __future__ import annotations

import base64
import decimal
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.json as pajson

from livedata.cache.formats.base import CacheFormat
from livedata.cache.formats.coerce import coerce, nanoseconds


class JSONRecords(CacheFormat):
    name = "json"
    description = "a JSON array of row objects (orjson), read back by type inference"
    lossless = False  # decimals, dates, binary come back as text; NaN as null

    def dumps(self, table: pa.Table) -> bytes:
        return orjson.dumps(coerce(table, nanoseconds).to_pylist(), default=_default)

    def loads(self, data: memoryview) -> pa.Table:
        return pa.Table.from_pylist(orjson.loads(data))


class NDJSON(CacheFormat):
    name = "ndjson"
    description = "newline-delimited row objects (orjson), read back by Arrow's JSON reader"
    lossless = False

    def dumps(self, table: pa.Table) -> bytes:
        return b"".join(
            orjson.dumps(row, default=_default, option=orjson.OPT_APPEND_NEWLINE)
            for row in coerce(table, nanoseconds).to_pylist()
        )

    def loads(self, data: memoryview) -> pa.Table:
        return pajson.read_json(pa.BufferReader(pa.py_buffer(data)))


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
