"""The cache format interface: Arrow table to bytes and back, nothing else.

The cache wraps whatever a format writes in its own checked container (``cache.store``), so a
format only has to be fast and faithful. The format study benchmarks these same classes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import pyarrow as pa


class CacheFormat(ABC):
    name: ClassVar[str]

    @abstractmethod
    def dumps(self, table: pa.Table) -> bytes:
        """Serialise the whole table."""

    @abstractmethod
    def loads(self, data: memoryview) -> pa.Table:
        """Read a table back; ``data`` may be a memory map, so zero-copy reads are welcome."""
