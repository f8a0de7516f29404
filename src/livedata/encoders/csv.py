"""CSV with a header row, written by Arrow's own writer (RFC 4180 quoting).

Integers, text, booleans and times of day are written by Arrow as they are; every other cell
holds the JSON format's encoding, the same from every connector: its strings bare (floats
and decimals with every digit, "NaN", "infinity", dates, timestamps, base64, ISO 8601
durations), lists, structs, maps and json values as their JSON text (``[1,"2"]``).
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
    says_truncated = False  # no room in a CSV body: its headers say it

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
    """Whether a cell takes the JSON encoding's text. Arrow's CSV writer refuses lists,
    writes binary as raw bytes, tiny decimals as 1E-10, NaN as nan and cannot write the
    infinities of dates; only integers, text, booleans and times of day are written as is."""
    if pa.types.is_dictionary(kind):
        return _as_json(kind.value_type)
    return not (
        pa.types.is_integer(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_null(kind)
        or pa.types.is_time(kind)
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
