"""Parquet (zstd): compact files for notebooks and data tools. The footer comes last, so the
file is written row group by row group and streamed as it grows."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pyarrow.parquet as pq

from livedata.encoders.base import Encoder, Meta, RecordBatches, batches, drain

ROW_GROUP_ROWS = 128 * 1024


class ParquetEncoder(Encoder):
    name = "parquet"
    media_type = "application/vnd.apache.parquet"

    def encode(self, rows: RecordBatches, meta: Meta) -> Iterator[bytes]:
        sink = io.BytesIO()
        with pq.ParquetWriter(sink, rows.schema, compression="zstd") as writer:
            for batch in batches(rows, ROW_GROUP_ROWS):
                writer.write_batch(batch)
                yield drain(sink)
        yield drain(sink)
