"""ORC, the Hive world's columnar format, through pyarrow (zstd-compressed)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.orc as orc

from livedata.cache.formats.base import CacheFormat
from livedata.cache.formats.coerce import coerce


class ORC(CacheFormat):
    name = "orc"
    in_place = True
    description = "ORC, zstd-compressed"
    lossless = False  # no time, unsigned or dictionary types; zones are not kept

    def dumps(self, table: pa.Table) -> bytes:
        sink = pa.BufferOutputStream()
        orc.write_table(coerce(table, _unsupported), sink, compression="zstd")
        return sink.getvalue().to_pybytes()  # type: ignore[no-any-return]

    def loads(self, data: memoryview) -> pa.Table:
        return orc.ORCFile(pa.BufferReader(pa.py_buffer(data))).read()


def _unsupported(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_time(kind) or pa.types.is_unsigned_integer(kind) or pa.types.is_dictionary(kind)
    )
