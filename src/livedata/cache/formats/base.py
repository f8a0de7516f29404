"""The cache format interface: Arrow table to bytes and back, nothing else.

The cache wraps whatever a format writes in its own checked container (``cache.store``), so a
format only has to be fast and faithful. The format study (``livedata.study``) benchmarks
these same classes, including formats the cache refuses: a format serves as the cache's
format only when it gives back exactly the table it was given (``lossless``) and reading a
file cannot run code (``runs_code``). ``tests/cache/test_formats.py`` holds every format to
its ``lossless`` claim on a table of tricky types.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pyarrow as pa

# Formats whose library reads and writes only named files work in RAM-backed scratch files,
# so that the study measures the format, not a disk the cache never touches for them.
SCRATCH_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108  # private subdirectories


class BatchWriter(Protocol):
    """Rows written as they arrive (``pyarrow.ipc``'s writers are such)."""

    def write_batch(self, batch: pa.RecordBatch) -> None: ...

    def close(self) -> None: ...


class FormatUnavailable(ImportError):
    """The format's library is not installed; the message says what to install."""


class CacheFormat(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    lossless: ClassVar[bool] = True  # round-trips every Arrow type exactly (tested)
    runs_code: ClassVar[bool] = False  # reading may execute code (pickle): never cache with it
    in_place: ClassVar[bool] = False  # ``loads`` reads ``data`` where it lies (mapping helps)
    library: ClassVar[tuple[str, str] | None] = None  # (module, PyPI package) when optional

    @abstractmethod
    def dumps(self, table: pa.Table) -> bytes:
        """Serialise the whole table."""

    def writer(self, schema: pa.Schema, sink: Any) -> BatchWriter:
        """Something to write rows to a file object as they arrive. Formats that can append
        batches do so; the others keep them and write the whole table at ``close``."""
        return _WholeTable(self, schema, sink)

    @abstractmethod
    def loads(self, data: memoryview) -> pa.Table:
        """Read a table back; ``data`` may be a memory map, so zero-copy reads are welcome."""

    @property
    def cacheable(self) -> bool:
        """May be the cache's format: faithful, and safe on a file someone else wrote."""
        return self.lossless and not self.runs_code

    def available(self) -> bool:
        try:
            self.check_installed()
        except FormatUnavailable:
            return False
        return True

    def check_installed(self) -> None:
        if self.library is not None:
            require(*self.library)


def require(module: str, package: str) -> Any:
    """Import an optional library, or say which package brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise FormatUnavailable(
            f"this cache format needs the {package} package: pip install {package}"
        ) from exc


@contextmanager
def scratch_file(suffix: str, data: bytes | memoryview | None = None) -> Iterator[Path]:
    """A scratch file (holding ``data`` when given), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="livedata-format-", dir=SCRATCH_DIR) as folder:
        path = Path(folder) / f"data{suffix}"
        if data is not None:
            path.write_bytes(data)
        yield path


def through_file(suffix: str, write: Callable[[Path], None]) -> bytes:
    """What ``write`` puts in a scratch file, for libraries that only write named files."""
    with scratch_file(suffix) as path:
        write(path)
        return path.read_bytes()


class _WholeTable:
    """For formats that can only write a whole table: keep the batches until the last."""

    def __init__(self, cache_format: CacheFormat, schema: pa.Schema, sink: Any) -> None:
        self._format = cache_format
        self._schema = schema
        self._sink = sink
        self._batches: list[pa.RecordBatch] = []

    def write_batch(self, batch: pa.RecordBatch) -> None:
        self._batches.append(batch)

    def close(self) -> None:
        table = pa.Table.from_batches(self._batches, self._schema)
        self._sink.write(self._format.dumps(table))
