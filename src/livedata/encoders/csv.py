"""CSV with a header row, written by Arrow's own writer (RFC 4180 quoting)."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from livedata.encoders.base import BATCH_ROWS, Encoder, drain


class CSVEncoder(Encoder):
    name = "csv"
    media_type = "text/csv"

    def encode(self, table: pa.Table, meta: Mapping[str, Any]) -> Iterator[bytes]:
        sink = io.BytesIO()
        with pacsv.CSVWriter(sink, table.schema) as writer:
            for batch in table.to_batches(max_chunksize=BATCH_ROWS):
                writer.write_batch(batch)
                yield drain(sink)
        yield drain(sink)
