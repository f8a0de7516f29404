"""Parquet (zstd): compact files for notebooks and data tools. The footer comes last, so the
file is written row group by row group and streamed as it grows, and the footer's key-value
metadata holds the counts (``livedata:rows``, ``livedata:truncated``)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from livedata.encoders.base import Encoder, Meta, RecordBatches, batches, drain, footer
from livedata.errors import UnsupportedType

ROW_GROUP_ROWS = 128 * 1024


class ParquetEncoder(Encoder):
    name = "parquet"
    media_type = "application/vnd.apache.parquet"

    def encode(self, rows: RecordBatches, meta: Meta) -> Iterator[bytes]:
        for field in rows.schema:
            if pa.types.is_interval(field.type):
                raise UnsupportedType.for_column(
                    field.name,
                    "interval",
                    "Parquet has no type for months, days and nanoseconds (JSON, CSV and "
                    "Arrow carry it)",
                    "cast it to text",
                )
        sink = io.BytesIO()
        with pq.ParquetWriter(sink, rows.schema, compression="zstd") as writer:
            for batch in batches(rows, ROW_GROUP_ROWS):
                writer.write_batch(batch)
                yield drain(sink)
            writer.add_key_value_metadata(footer(meta))
        yield drain(sink)
