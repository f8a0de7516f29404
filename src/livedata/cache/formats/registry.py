"""Every cache format by name; ``LIVEDATA_CACHE_FORMAT`` picks one (default: the study's).

``ALL_FORMATS`` is what the format study compares; ``FORMATS`` only those the cache may use:
lossless, and safe to read from a file someone else could have written. Formats whose
library is optional (``library``) import it on first use and say what to install.
"""

from __future__ import annotations

import difflib

from livedata.cache.formats.arrow_ipc import ArrowIPC, ArrowIPCLZ4, ArrowIPCZstd
from livedata.cache.formats.avro import Avro
from livedata.cache.formats.base import CacheFormat
from livedata.cache.formats.csv import CSV
from livedata.cache.formats.duckdb_file import DuckDBFile
from livedata.cache.formats.json import NDJSON, JSONRecords
from livedata.cache.formats.lance import Lance
from livedata.cache.formats.msgpack import MessagePack
from livedata.cache.formats.orc import ORC
from livedata.cache.formats.parquet import ParquetNone, ParquetSnappy, ParquetZstd
from livedata.cache.formats.pickled import Pickle
from livedata.cache.formats.sqlite import SQLite
from livedata.cache.formats.vortex import Vortex

ALL_FORMATS: dict[str, CacheFormat] = {
    f.name: f
    for f in (
        ArrowIPC(),
        ArrowIPCLZ4(),
        ArrowIPCZstd(),
        ParquetNone(),
        ParquetSnappy(),
        ParquetZstd(),
        ORC(),
        Vortex(),
        Lance(),
        DuckDBFile(),
        SQLite(),
        Avro(),
        MessagePack(),
        Pickle(),
        CSV(),
        JSONRecords(),
        NDJSON(),
    )
}
FORMATS: dict[str, CacheFormat] = {n: f for n, f in ALL_FORMATS.items() if f.cacheable}
DEFAULT_FORMAT = "arrow"


def cache_format(name: str) -> CacheFormat:
    """The format the ``cache_format`` setting names; a ValueError says why not, and what to use."""
    if name in FORMATS:
        chosen = FORMATS[name]
        chosen.check_installed()
        return chosen
    usable = ", ".join(FORMATS)
    if name in ALL_FORMATS:
        refused = ALL_FORMATS[name]
        why = "may run code when read" if refused.runs_code else "does not keep every type"
        raise ValueError(
            f"cache format {name!r} {why}, so the cache cannot use it; use one of {usable}."
        )
    close = difflib.get_close_matches(name, FORMATS, n=2)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"no cache format {name!r}.{hint} Use one of {usable}.")
