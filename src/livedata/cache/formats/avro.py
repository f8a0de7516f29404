"""Avro (fastavro), row-oriented with Avro's logical types, plus the Arrow schema in the file's
metadata so the table comes back with its exact types."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa

from livedata.cache.formats.base import CacheFormat, require
from livedata.cache.formats.coerce import coerce, nanoseconds

_ARROW_SCHEMA = "livedata.arrow_schema"


class Avro(CacheFormat):
    name = "avro"
    description = "Avro (fastavro, uncompressed), row by row, Arrow schema in the metadata"
    library = ("fastavro", "fastavro")
    lossless = False  # no unsigned 64-bit integers

    def dumps(self, table: pa.Table) -> bytes:
        fastavro = require(*self.library)
        schema = {
            "type": "record",
            "name": "row",
            "fields": [{"name": f.name, "type": _avro_type(f.type, f.name)} for f in table.schema],
        }
        sink = io.BytesIO()
        metadata = {_ARROW_SCHEMA: table.schema.serialize().to_pybytes().hex()}
        rows = _nanoseconds_as_integers(coerce(table, pa.types.is_uint64)).to_pylist()
        fastavro.writer(sink, fastavro.parse_schema(schema), rows, metadata=metadata)
        return sink.getvalue()

    def loads(self, data: memoryview) -> pa.Table:
        fastavro = require(*self.library)
        reader = fastavro.reader(io.BytesIO(data))
        schema = pa.ipc.read_schema(pa.py_buffer(bytes.fromhex(reader.metadata[_ARROW_SCHEMA])))
        return pa.Table.from_pylist(list(reader), schema=schema)


def _nanoseconds_as_integers(table: pa.Table) -> pa.Table:
    for index, field in enumerate(table.schema):
        if nanoseconds(field.type):
            storage = table.column(index).combine_chunks().view(pa.int64())
            table = table.set_column(index, pa.field(field.name, pa.int64()), storage)
    return table


def _avro_type(kind: pa.DataType, name: str) -> Any:
    """The nullable Avro type of an Arrow type (every Arrow column may hold nulls)."""
    return ["null", _plain_type(kind, name)]


def _plain_type(kind: pa.DataType, name: str) -> Any:
    if pa.types.is_dictionary(kind):
        return _plain_type(kind.value_type, name)
    if pa.types.is_decimal(kind):
        return {
            "type": "bytes",
            "logicalType": "decimal",
            "precision": kind.precision,
            "scale": kind.scale,
        }
    if pa.types.is_uint64(kind):
        return "string"  # beyond Avro's signed long: stored as text
    if pa.types.is_timestamp(kind):
        if kind.unit == "ns":
            return "long"  # Python's datetime stops at microseconds: the integer storage
        logical = "timestamp-micros" if kind.tz else "local-timestamp-micros"
        return {"type": "long", "logicalType": logical}
    if pa.types.is_time(kind):
        return {"type": "long", "logicalType": "time-micros"}
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return {"type": "array", "items": _avro_type(kind.value_type, name)}
    if pa.types.is_struct(kind):
        return {
            "type": "record",
            "name": f"{name}_record",
            "fields": [
                {"name": f.name, "type": _avro_type(f.type, f"{name}_{f.name}")} for f in kind
            ],
        }
    simple = {
        pa.types.is_boolean: "boolean",
        pa.types.is_date: {"type": "int", "logicalType": "date"},
        pa.types.is_float32: "float",
        pa.types.is_floating: "double",
        pa.types.is_int32: "int",
        pa.types.is_integer: "long",
        pa.types.is_string: "string",
        pa.types.is_large_string: "string",
        pa.types.is_binary: "bytes",
        pa.types.is_large_binary: "bytes",
    }
    for test, avro in simple.items():
        if test(kind):
            return avro
    raise TypeError(f"no Avro type for {kind}")
