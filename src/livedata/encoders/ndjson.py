"""Newline-delimited JSON: one object per row, the same value encodings as the JSON format."""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from livedata.encoders.base import Encoder, Meta, RecordBatches, batches
from livedata.encoders.json import json_columns


class NDJSONEncoder(Encoder):
    name = "ndjson"
    media_type = "application/x-ndjson"

    def encode(self, rows: RecordBatches, meta: Meta) -> Iterator[bytes]:
        names = rows.schema.names
        for batch in batches(rows):
            columns = json_columns(batch)
            yield b"".join(
                orjson.dumps(dict(zip(names, row, strict=True)), option=orjson.OPT_APPEND_NEWLINE)
                for row in zip(*columns, strict=True)
            )
