"""Python's pickle (protocol 5) of the Arrow table: fast and faithful, and never for the cache.

Unpickling runs whatever the file says; the cache's checksum catches damage, not a file
written by someone else with access to the cache directory.
"""

from __future__ import annotations

import pickle

import pyarrow as pa

from livedata.cache.formats.base import CacheFormat


class Pickle(CacheFormat):
    name = "pickle"
    in_place = True
    description = "pickle protocol 5 of the Arrow table"
    runs_code = True

    def dumps(self, table: pa.Table) -> bytes:
        return pickle.dumps(table, protocol=5)

    def loads(self, data: memoryview) -> pa.Table:
        table = pickle.loads(data)  # noqa: S301  # study only: runs_code keeps it out of the cache
        if not isinstance(table, pa.Table):
            raise TypeError(f"the pickle holds a {type(table).__name__}, not an Arrow table")
        return table
