"""Parquet: columnar, encoded and (optionally) compressed; pyarrow stores the Arrow schema in
the footer, so every Arrow type comes back as it went in."""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa
import pyarrow.parquet as pq

from livedata.cache.formats.base import CacheFormat


class ParquetNone(CacheFormat):
    name = "parquet"
    in_place = True
    description = "Parquet, dictionary and run-length encoded, no compression"
    compression: ClassVar[str] = "none"

    def dumps(self, table: pa.Table) -> bytes:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression=self.compression)
        return sink.getvalue().to_pybytes()  # type: ignore[no-any-return]

    def loads(self, data: memoryview) -> pa.Table:
        return pq.read_table(pa.BufferReader(pa.py_buffer(data)))


class ParquetSnappy(ParquetNone):
    name = "parquet-snappy"
    description = "Parquet, snappy-compressed (pyarrow's default)"
    compression = "snappy"


class ParquetZstd(ParquetNone):
    name = "parquet-zstd"
    description = "Parquet, zstd-compressed"
    compression = "zstd"
