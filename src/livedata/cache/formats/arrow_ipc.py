"""Arrow IPC file format: Arrow's own memory layout on disk.

Uncompressed, reading is a zero-copy view of the (memory-mapped) bytes; the lz4 and zstd
variants trade a decompression on every read for smaller files.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa

from livedata.cache.formats.base import CacheFormat


class ArrowIPC(CacheFormat):
    name = "arrow"
    in_place = True
    description = "Arrow IPC file, uncompressed"
    compression: ClassVar[str | None] = None

    def dumps(self, table: pa.Table) -> bytes:
        sink = pa.BufferOutputStream()
        with self.writer(table.schema, sink) as writer:
            writer.write_table(table)
        return sink.getvalue().to_pybytes()  # type: ignore[no-any-return]

    def writer(self, schema: pa.Schema, sink: Any) -> pa.ipc.RecordBatchFileWriter:
        options = pa.ipc.IpcWriteOptions(compression=self.compression)
        return pa.ipc.new_file(sink, schema, options=options)

    def loads(self, data: memoryview) -> pa.Table:
        return pa.ipc.open_file(pa.py_buffer(data)).read_all()


class ArrowIPCLZ4(ArrowIPC):
    name = "arrow-lz4"
    description = "Arrow IPC file, lz4-compressed buffers"
    compression = "lz4"


class ArrowIPCZstd(ArrowIPC):
    name = "arrow-zstd"
    description = "Arrow IPC file, zstd-compressed buffers"
    compression = "zstd"
