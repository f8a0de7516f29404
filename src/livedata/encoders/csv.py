"""CSV with a header row, written by Arrow's own writer (RFC 4180 quoting).

A cell holds Arrow's text for numbers, strings, dates and times. Types CSV has no text for
take the JSON format's encoding, the same from every connector: binary as base64, uuids,
durations and intervals as in JSON, and lists, structs, maps and json values as their JSON
text (``[1,"2"]``).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv

from livedata.encoders.base import Encoder, Meta, RecordBatches, batches, drain
from livedata.encoders.json import json_columns


class CSVEncoder(Encoder):
    name = "csv"
    media_type = "text/csv"

    def encode(self, rows: RecordBatches, meta: Meta) -> Iterator[bytes]:
        schema = pa.schema(
            [pa.field(f.name, pa.string()) if _as_json(f.type) else f for f in rows.schema]
        )
        sink = io.BytesIO()
        with pacsv.CSVWriter(sink, schema) as writer:
            for batch in batches(rows):
                writer.write_batch(_cells(batch, schema))
                yield drain(sink)
        yield drain(sink)


def _as_json(kind: pa.DataType) -> bool:
    """Whether Arrow's CSV writer has no faithful text for ``kind`` (it refuses lists, and
    writes binary as raw bytes)."""
    if pa.types.is_dictionary(kind):
        return _as_json(kind.value_type)
    return bool(
        pa.types.is_nested(kind)
        or isinstance(kind, pa.BaseExtensionType)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
        or pa.types.is_binary_view(kind)
        or pa.types.is_duration(kind)
        or pa.types.is_interval(kind)
    )


def _cells(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    if batch.schema == schema:
        return batch
    text = [
        i for i, (f, target) in enumerate(zip(batch.schema, schema, strict=True)) if f != target
    ]
    columns = batch.columns
    for i, values in zip(text, json_columns(batch.select(text)), strict=True):
        columns[i] = pa.array([_cell(v) for v in values], pa.string())
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _cell(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()
