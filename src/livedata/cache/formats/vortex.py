"""Vortex (vortex-data), a newer compressed columnar format that reads straight into Arrow."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from livedata.cache.formats.base import CacheFormat, require, through_file


class Vortex(CacheFormat):
    name = "vortex"
    in_place = True
    description = "Vortex file (vortex-data), its default compressing layout"
    library = ("vortex", "vortex-data")
    lossless = False  # strings and binary come back as views, dictionaries decoded

    def dumps(self, table: pa.Table) -> bytes:
        vortex = require(*self.library)

        def write(path: Path) -> None:
            vortex.io.write(table, str(path))

        return through_file(".vortex", write)

    def loads(self, data: memoryview) -> pa.Table:
        vortex = require(*self.library)
        # pyarrow's reader gives Vortex positional reads without a copy of ``data``.
        reader = pa.BufferReader(pa.py_buffer(data))
        return vortex.open_readable(reader).to_arrow().read_all()
