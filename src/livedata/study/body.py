"""The API's own JSON response body as a storage format, plain and zstd-compressed.

Storing only the body is the "cache the response" design: a hit for that one format is a
file read, and every other format must be rebuilt from JSON, which lost the types (decimals
and large integers are strings, timestamps text). These live in the study, not in the
cache's registry, because the cache layer does not import the response encoders.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
import pyarrow as pa

from livedata.cache.formats.base import CacheFormat
from livedata.encoders.compression import compress
from livedata.encoders.json import JSONEncoder

# Types a JSON body names and Arrow can cast its text or numbers back to.
_TYPES = {
    "bool": pa.bool_(),
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint64": pa.uint64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "string": pa.string(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
}


class JSONBody(CacheFormat):
    name = "json-body"
    description = "the API's JSON response body, exactly as a JSON hit sends it"
    lossless = False
    coding: ClassVar[str | None] = None

    def dumps(self, table: pa.Table) -> bytes:
        body = b"".join(JSONEncoder().encode(table.to_reader(), dict))
        return body if self.coding is None else compress(body, self.coding)

    def loads(self, data: memoryview) -> pa.Table:
        if self.coding is not None:
            data = memoryview(
                pa.CompressedInputStream(pa.BufferReader(pa.py_buffer(data)), self.coding).read()
            )
        body = orjson.loads(data)
        columns = list(zip(*body["rows"], strict=True)) or [() for _ in body["columns"]]
        return pa.table(
            {
                column["name"]: _array(list(values), column["type"])
                for column, values in zip(body["columns"], columns, strict=True)
            }
        )


class JSONBodyZstd(JSONBody):
    name = "json-body-zstd"
    description = "the API's JSON response body, zstd-compressed as a zstd hit sends it"
    coding = "zstd"


def _array(values: list[Any], type_name: str) -> pa.Array:
    try:
        inferred = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # numbers mixed with digit strings
        inferred = pa.array([v if v is None or isinstance(v, str) else str(v) for v in values])
    target = _TYPES.get(type_name)
    if type_name.startswith("decimal("):
        precision, scale = type_name[len("decimal(") : -1].split(",")
        target = pa.decimal128(int(precision), int(scale))
    if target is None or inferred.type == target:
        return inferred
    try:
        return inferred.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return inferred  # what JSON cannot say stays as JSON gave it
