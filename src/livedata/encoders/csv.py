"""CSV with a header row, written by Arrow's own writer (RFC 4180 quoting)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pyarrow.csv as pacsv

from livedata.encoders.base import Encoder, Meta, RecordBatches, batches, drain


class CSVEncoder(Encoder):
    name = "csv"
    media_type = "text/csv"

    def encode(self, rows: RecordBatches, meta: Meta) -> Iterator[bytes]:
        sink = io.BytesIO()
        with pacsv.CSVWriter(sink, rows.schema) as writer:
            for batch in batches(rows):
                writer.write_batch(batch)
                yield drain(sink)
        yield drain(sink)
