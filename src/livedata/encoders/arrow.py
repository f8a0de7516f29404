"""Arrow IPC stream: the exact result, every type preserved, for clients that speak Arrow."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa

from livedata.encoders.base import BATCH_ROWS, Encoder, drain


class ArrowEncoder(Encoder):
    name = "arrow"
    media_type = "application/vnd.apache.arrow.stream"

    def encode(self, table: pa.Table, meta: Mapping[str, Any]) -> Iterator[bytes]:
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            for batch in table.to_batches(max_chunksize=BATCH_ROWS):
                writer.write_batch(batch)
                yield drain(sink)
        yield drain(sink)
