"""Arrow IPC stream: the exact result, every type preserved, for clients that speak Arrow."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pyarrow as pa

from livedata.encoders.base import Encoder, Meta, RecordBatches, batches, drain


class ArrowEncoder(Encoder):
    name = "arrow"
    media_type = "application/vnd.apache.arrow.stream"

    def encode(self, rows: RecordBatches, meta: Meta) -> Iterator[bytes]:
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, rows.schema) as writer:
            for batch in batches(rows):
                writer.write_batch(batch)
                yield drain(sink)
        yield drain(sink)
