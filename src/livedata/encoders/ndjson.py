"""Newline-delimited JSON: one object per row, the same value encodings as the JSON format.

A result cut at the source's ``max_rows`` (or ``max_bytes``) ends with one more line,
``{"$meta": {"rows": N, "truncated": true}}``; a complete one has no such line, so rows read
line by line stay rows.
"""

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
        counts = meta()
        if counts["truncated"]:
            marker = {"$meta": {"rows": counts["rows"], "truncated": True}}
            yield orjson.dumps(marker, option=orjson.OPT_APPEND_NEWLINE)
