"""Lance (pylance), a columnar file format built for random access; one Lance file, not a
dataset directory."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from livedata.cache.formats.base import CacheFormat, require, scratch_file, through_file


class Lance(CacheFormat):
    name = "lance"
    description = "a Lance file (pylance LanceFileWriter)"
    library = ("lance.file", "pylance")

    def dumps(self, table: pa.Table) -> bytes:
        lance_file = require(*self.library)

        def write(path: Path) -> None:
            with lance_file.LanceFileWriter(str(path), table.schema) as writer:
                writer.write_batch(table)

        return through_file(".lance", write)

    def loads(self, data: memoryview) -> pa.Table:
        lance_file = require(*self.library)
        with scratch_file(".lance", data) as path:
            return lance_file.LanceFileReader(str(path)).read_all().to_table()
