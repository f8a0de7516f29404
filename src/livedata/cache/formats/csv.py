"""CSV with a header row (Arrow's writer and reader); types are inferred on the way back."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pacsv

from livedata.cache.formats.base import CacheFormat
from livedata.cache.formats.coerce import binary, coerce, nested


class CSV(CacheFormat):
    name = "csv"
    description = "CSV, read back with Arrow's type inference"
    lossless = False  # no types in the file: the reader guesses them

    def dumps(self, table: pa.Table) -> bytes:
        sink = pa.BufferOutputStream()
        pacsv.write_csv(coerce(table, lambda t: nested(t) or binary(t)), sink)
        return sink.getvalue().to_pybytes()  # type: ignore[no-any-return]

    def loads(self, data: memoryview) -> pa.Table:
        return pacsv.read_csv(pa.BufferReader(pa.py_buffer(data)))
