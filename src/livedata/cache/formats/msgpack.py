"""MessagePack of the columns as Python values, with the Arrow schema beside them.

Dates, times and timestamps travel as their integer storage (fast, and nanoseconds survive);
decimals, and temporal values inside nested columns, as extension types holding their text
(``str()``, which Python parses back exactly); the schema rebuilds each column's exact type.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from livedata.cache.formats.base import CacheFormat, require

_EXT: dict[type, tuple[int, Callable[[str], Any]]] = {
    decimal.Decimal: (1, decimal.Decimal),
    dt.datetime: (2, dt.datetime.fromisoformat),
    dt.date: (3, dt.date.fromisoformat),
    dt.time: (4, dt.time.fromisoformat),
}
_DECODE = dict(_EXT.values())


class MessagePack(CacheFormat):
    name = "msgpack"
    description = "MessagePack of the columns' Python values, plus the Arrow schema"
    library = ("msgpack", "msgpack")

    def dumps(self, table: pa.Table) -> bytes:
        msgpack = require(*self.library)
        document = {
            "schema": table.schema.serialize().to_pybytes(),
            "columns": [_storage(column).to_pylist() for column in table.columns],
        }
        return msgpack.packb(document, default=_encode(msgpack))  # type: ignore[no-any-return]

    def loads(self, data: memoryview) -> pa.Table:
        msgpack = require(*self.library)
        document = msgpack.unpackb(data, ext_hook=_decode(msgpack), strict_map_key=False)
        schema = pa.ipc.read_schema(pa.py_buffer(document["schema"]))
        arrays = [
            _array(values, field.type)
            for field, values in zip(schema, document["columns"], strict=True)
        ]
        return pa.Table.from_arrays(arrays, schema=schema)


def _storage(column: pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    kind = column.type
    return column.combine_chunks().view(_integer(kind)) if pa.types.is_temporal(kind) else column


def _array(values: list[Any], kind: pa.DataType) -> pa.Array:
    if pa.types.is_temporal(kind):
        return pa.array(values, _integer(kind)).view(kind)
    return pa.array(values, kind)


def _integer(kind: pa.DataType) -> pa.DataType:
    return pa.int64() if kind.bit_width == 64 else pa.int32()


def _encode(msgpack: Any) -> Callable[[Any], Any]:
    def encode(value: Any) -> Any:
        for kind, (code, _) in _EXT.items():
            if type(value) is kind:
                return msgpack.ExtType(code, str(value).encode())
        raise TypeError(f"cannot write {type(value).__name__} as MessagePack")

    return encode


def _decode(msgpack: Any) -> Callable[[int, bytes], Any]:
    def decode(code: int, data: bytes) -> Any:
        parse = _DECODE.get(code)
        return msgpack.ExtType(code, data) if parse is None else parse(data.decode())

    return decode
