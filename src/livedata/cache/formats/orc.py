"""ORC, the Hive world's columnar format, through pyarrow (zstd-compressed)."""

from __future__ import annotations

import pyarrow as pa

from livedata.cache.formats.base import CacheFormat, require
from livedata.cache.formats.coerce import coerce


class ORC(CacheFormat):
    name = "orc"
    in_place = True
    description = "ORC, zstd-compressed"
    lossless = False  # no time, unsigned or dictionary types; zones are not kept

    def dumps(self, table: pa.Table) -> bytes:
        orc = require("pyarrow.orc", "pyarrow")  # on first use, like the other study formats
        sink = pa.BufferOutputStream()
        orc.write_table(coerce(table, _unsupported), sink, compression="zstd")
        return sink.getvalue().to_pybytes()  # type: ignore[no-any-return]

    def loads(self, data: memoryview) -> pa.Table:
        orc = require("pyarrow.orc", "pyarrow")
        return orc.ORCFile(pa.BufferReader(pa.py_buffer(data))).read()


def _unsupported(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_time(kind) or pa.types.is_unsigned_integer(kind) or pa.types.is_dictionary(kind)
    )
