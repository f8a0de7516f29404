"""Newline-delimited JSON: one object per row, the same value encodings as the JSON format."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson
import pyarrow as pa

from livedata.encoders.base import BATCH_ROWS, Encoder
from livedata.encoders.json import json_columns


class NDJSONEncoder(Encoder):
    name = "ndjson"
    media_type = "application/x-ndjson"

    def encode(self, table: pa.Table, meta: Mapping[str, Any]) -> Iterator[bytes]:
        names = table.schema.names
        for batch in table.to_batches(max_chunksize=BATCH_ROWS):
            columns = json_columns(batch)
            yield b"".join(
                orjson.dumps(dict(zip(names, row, strict=True)), option=orjson.OPT_APPEND_NEWLINE)
                for row in zip(*columns, strict=True)
            )
