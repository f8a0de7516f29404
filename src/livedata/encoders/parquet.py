"""Parquet (zstd): compact files for notebooks and data tools. The footer comes last, so the
file is written row group by row group and streamed as it grows."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from livedata.encoders.base import Encoder, drain

ROW_GROUP_ROWS = 128 * 1024


class ParquetEncoder(Encoder):
    name = "parquet"
    media_type = "application/vnd.apache.parquet"

    def encode(self, table: pa.Table, meta: Mapping[str, Any]) -> Iterator[bytes]:
        sink = io.BytesIO()
        with pq.ParquetWriter(sink, table.schema, compression="zstd") as writer:
            for batch in table.to_batches(max_chunksize=ROW_GROUP_ROWS):
                writer.write_batch(batch)
                yield drain(sink)
        yield drain(sink)
