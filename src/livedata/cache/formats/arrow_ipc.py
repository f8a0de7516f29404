"""Arrow IPC file format, uncompressed: reading is a zero-copy view of the bytes."""

from __future__ import annotations

import pyarrow as pa

from livedata.cache.formats.base import CacheFormat


class ArrowIPC(CacheFormat):
    name = "arrow"

    def dumps(self, table: pa.Table) -> bytes:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue().to_pybytes()  # type: ignore[no-any-return]

    def loads(self, data: memoryview) -> pa.Table:
        return pa.ipc.open_file(pa.py_buffer(data)).read_all()
