"""Entries on disk: checked containers written so that a crash never leaves a wrong one.

Every file the cache writes (a result's data, or a response body encoded from it) is a
container::

    MAGIC | u32 header length | header (JSON) | u64 xxh3 of the header | payload

and the header records the payload's length and xxh3-128 digest. A reader checks all of it
before trusting a byte, so a truncated, corrupted or foreign file is never served: it counts as
a miss, is removed, logged and counted. xxh3 checks 15 MB in about a millisecond, cheap enough
to verify on every hit.

Files are written to ``tmp/``, fsynced, then renamed over their final name, then the
directory is fsynced. The rename is the commit point: before it readers see the old entry (or
none), after it the complete new one; a crash in between leaves only a ``tmp/`` leftover,
removed at start-up. Readers map files into memory; replacing or evicting an entry unlinks
the name but never the inode a reader already holds, so a response being streamed is never
cut off.
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import xxhash

log = logging.getLogger("livedata.cache")

MAGIC = b"LDCACHE\x01"
_LENGTH = struct.Struct("<I")
_CHECK = struct.Struct("<Q")
WRITE_FAILURE_LOG_INTERVAL = 60.0  # seconds between two log lines about failing writes


@dataclass(frozen=True)
class Stored:
    """A verified file: its header and a zero-copy view of its payload."""

    path: Path
    header: dict[str, Any]
    payload: memoryview
    identity: tuple[int, int, int]  # inode, size, mtime_ns of the file that was verified

    @property
    def digest(self) -> str:
        return str(self.header["digest"])


class Store:
    """The directory layout and the container format; knows nothing of freshness or keys."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.counters: Counter[str] = Counter()
        self._last_write_failure_log = -WRITE_FAILURE_LOG_INTERVAL
        for folder in (self.root / "entries", self.root / "bodies", self.tmp):
            folder.mkdir(parents=True, exist_ok=True)

    def entry_path(self, key: str, suffix: str = "entry") -> Path:
        return self.root / "entries" / key[:2] / f"{key}.{suffix}"

    def body_path(self, digest: str, variant: str) -> Path:
        return self.root / "bodies" / digest[:2] / f"{digest}.{variant}"

    def read(self, path: Path) -> Stored | None:
        """The verified file, or None when absent or damaged (then it is removed)."""
        try:
            with open(path, "rb") as file:
                st = os.fstat(file.fileno())
                if st.st_size == 0:
                    raise _Damaged("empty file")
                mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            return None
        except (OSError, _Damaged) as exc:
            self._discard(path, str(exc))
            return None
        try:
            header, payload = _open_container(memoryview(mapped))
        except _Damaged as exc:
            self._discard(path, str(exc))
            return None
        return Stored(path, header, payload, (st.st_ino, st.st_size, st.st_mtime_ns))

    def read_header(self, path: Path) -> dict[str, Any] | None:
        """Only the checked header: enough to answer If-None-Match without reading data."""
        try:
            with open(path, "rb") as file:
                head = file.read(len(MAGIC) + _LENGTH.size)
                if len(head) < len(MAGIC) + _LENGTH.size or head[: len(MAGIC)] != MAGIC:
                    return None
                (length,) = _LENGTH.unpack(head[len(MAGIC) :])
                rest = file.read(length + _CHECK.size)
        except OSError:
            return None
        try:
            return _check_header(memoryview(head + rest))[0]
        except _Damaged:
            return None

    def write(self, path: Path, payload: bytes, header: dict[str, Any]) -> Stored | None:
        """Write atomically; on any OS error log (at most once a minute), count, return None."""
        header = {**header, "length": len(payload), "digest": xxhash.xxh3_128_hexdigest(payload)}
        header_bytes = orjson.dumps(header)
        tmp = self.tmp / f"{path.name}.{os.getpid()}.{time.monotonic_ns()}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as file:
                file.write(MAGIC + _LENGTH.pack(len(header_bytes)) + header_bytes)
                file.write(_CHECK.pack(xxhash.xxh3_64_intdigest(header_bytes)))
                file.write(payload)
                file.flush()
                os.fsync(file.fileno())
                st = os.fstat(file.fileno())  # the rename keeps the inode, size and mtime
            os.replace(tmp, path)  # the commit point (see the module docstring)
            _fsync_directory(path.parent)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            self.write_failed(exc)
            return None
        return Stored(path, header, memoryview(payload), (st.st_ino, st.st_size, st.st_mtime_ns))

    def remove(self, path: Path) -> int:
        """Unlink ``path``; return the bytes freed (0 when it was already gone)."""
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def remove_leftovers(self) -> int:
        """Delete what crashed writers left in ``tmp/``; called at start-up, before serving.

        Temporary names end in ``.<pid>.<ns>``: a file whose writer still runs (another
        worker sharing the directory) is left alone.
        """
        removed = 0
        for leftover in self.tmp.iterdir():
            if not _writer_alive(leftover.name):
                leftover.unlink(missing_ok=True)
                removed += 1
        return removed

    def _discard(self, path: Path, why: str) -> None:
        self.counters["integrity_failures"] += 1
        log.warning("cache file %s failed its integrity check (%s); removed", path.name, why)
        path.unlink(missing_ok=True)

    def write_failed(self, exc: OSError) -> None:
        """Count a failed write and log it at most once a minute."""
        self.counters["write_failures"] += 1
        now = time.monotonic()
        if now - self._last_write_failure_log >= WRITE_FAILURE_LOG_INTERVAL:
            self._last_write_failure_log = now
            log.error(
                "cache write failed (%s); results are served uncached (%d failures so far)",
                exc.strerror or exc,
                self.counters["write_failures"],
            )


class _Damaged(Exception):
    pass


def _check_header(data: memoryview) -> tuple[dict[str, Any], int]:
    """The header and where the payload starts; raises _Damaged."""
    if data[: len(MAGIC)] != MAGIC:
        raise _Damaged("not a livedata cache file")
    start = len(MAGIC) + _LENGTH.size
    if len(data) < start:
        raise _Damaged("truncated header")
    (header_length,) = _LENGTH.unpack(data[len(MAGIC) : start])
    end = start + header_length
    if len(data) < end + _CHECK.size:
        raise _Damaged("truncated header")
    header_bytes = data[start:end]
    (check,) = _CHECK.unpack(data[end : end + _CHECK.size])
    if xxhash.xxh3_64_intdigest(header_bytes) != check:
        raise _Damaged("header checksum mismatch")
    return orjson.loads(header_bytes), end + _CHECK.size


def _open_container(data: memoryview) -> tuple[dict[str, Any], memoryview]:
    header, offset = _check_header(data)
    payload = data[offset:]
    if len(payload) != header["length"]:
        raise _Damaged(f"payload is {len(payload)} bytes, header says {header['length']}")
    if xxhash.xxh3_128_hexdigest(payload) != header["digest"]:
        raise _Damaged("payload checksum mismatch")
    return header, payload


def _writer_alive(name: str) -> bool:
    parts = name.rsplit(".", 2)
    if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) == os.getpid():
        return False  # not ours to judge, or our own from before a restart: a leftover
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _fsync_directory(folder: Path) -> None:
    """Make the rename itself durable: without it a power cut can forget the new name."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
