"""Arrow IPC stream: the exact result, every type preserved, for clients that speak Arrow.

The stream ends with an empty batch whose custom metadata holds the counts
(``livedata:rows``, ``livedata:truncated``): a stream has no footer, and the schema goes out
before the first row, so the last batch is where a streamed reader learns that it was cut
(pyarrow: ``read_next_batch_with_custom_metadata``). Readers of rows see nothing of it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pyarrow as pa

from livedata.encoders.base import Encoder, Meta, RecordBatches, batches, drain, footer


class ArrowEncoder(Encoder):
    name = "arrow"
    media_type = "application/vnd.apache.arrow.stream"

    def encode(self, rows: RecordBatches, meta: Meta) -> Iterator[bytes]:
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, rows.schema) as writer:
            for batch in batches(rows):
                writer.write_batch(batch)
                yield drain(sink)
            writer.write_batch(_empty(rows.schema), custom_metadata=footer(meta))
        yield drain(sink)


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=schema)
