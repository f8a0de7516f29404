"""Every response format the API offers, by name; the web layer negotiates among these."""

from __future__ import annotations

from livedata.encoders.arrow import ArrowEncoder
from livedata.encoders.base import Encoder
from livedata.encoders.csv import CSVEncoder
from livedata.encoders.json import JSONEncoder
from livedata.encoders.ndjson import NDJSONEncoder
from livedata.encoders.parquet import ParquetEncoder

ENCODERS: dict[str, Encoder] = {
    e.name: e
    for e in (JSONEncoder(), NDJSONEncoder(), CSVEncoder(), ArrowEncoder(), ParquetEncoder())
}
DEFAULT_FORMAT = "json"
