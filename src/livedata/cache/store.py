"""Entries on disk: checked containers written so that a crash never leaves a wrong one.

Every file the cache writes (a result's data, or a response body encoded from it) is a
container::

    MAGIC | u32 header length | header (JSON, space-padded) | u64 xxh3 of the header | payload

and the header records the payload's length and xxh3-128 digest. The payload starts at a
multiple of 64 bytes, so Arrow data mapped from it is aligned as Arrow wants. A reader
checks all of it before trusting a byte, so a truncated, corrupted or foreign file is never
served: it counts as a miss, is removed, logged and counted. xxh3 checks 15 MB in about a
millisecond, cheap enough to verify on every hit.

Files are written to ``tmp/``, fsynced, then renamed over their final name, then the
directory is fsynced. The rename is the commit point: before it readers see the old entry (or
none), after it the complete new one; a crash in between leaves only a ``tmp/`` leftover,
removed at start-up. Readers map files into memory; replacing or evicting an entry unlinks
the name but never the inode a reader already holds, so a response being streamed is never
cut off.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import xxhash

log = logging.getLogger("livedata.cache")

MAGIC = b"LDCACHE\x01"
_LENGTH = struct.Struct("<I")
_CHECK = struct.Struct("<Q")
WRITE_FAILURE_LOG_INTERVAL = 60.0  # seconds between two log lines about failing writes
# Room for a header's numbers (row count, times, length, digest) to grow between its first
# and its final version: a few hundred bytes at most.
HEADER_SLACK = 1024
PAYLOAD_ALIGNMENT = 64


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

    def body_path(self, key: str, version: str, variant: str) -> Path:
        return self.root / "bodies" / key[:2] / f"{key}.{version}.{variant}"

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
        return self.write_stream(path, lambda sink: sink.write(payload), lambda: header)

    def write_stream(
        self, path: Path, fill: Callable[[Sink], object], header: Callable[[], dict[str, Any]]
    ) -> Stored | None:
        """Like ``write``, for a payload that ``fill`` writes piece by piece (a result as its
        rows arrive), so it never sits in memory whole. ``header`` is asked for twice: first
        to size the room left for it before the payload, then, once the payload is written,
        for the final values, which may differ only in its numbers (see HEADER_SLACK)."""
        try:
            writer = self.writer(path, header())
        except OSError as exc:
            self.write_failed(exc)
            return None
        try:
            fill(writer.sink)
            return writer.commit(header())
        except OSError as exc:
            self.write_failed(exc)
            return None
        finally:
            writer.abort()

    def writer(self, path: Path, header: dict[str, Any]) -> Writer:
        """A container for ``path`` written in ``tmp/``, room left for a header like
        ``header``; nothing shows at ``path`` before ``Writer.commit``. Raises OSError."""
        path.parent.mkdir(parents=True, exist_ok=True)
        start = _payload_offset(len(orjson.dumps(header)) + HEADER_SLACK)
        return Writer(self, path, self.scratch(path.name), start)

    def scratch(self, name: str) -> Path:
        """A temporary file name in ``tmp/`` for ``name`` (removed at start-up if left)."""
        return self.tmp / f"{name}.{os.getpid()}.{time.monotonic_ns()}"

    def adopt(self, scratch: Path, path: Path) -> Stored | None:
        """Move a container written elsewhere (another node's, downloaded to ``scratch``)
        to ``path`` once it has been checked like any file read; None when it is damaged
        (then it is gone) or the disk refuses."""
        stored = self.read(scratch)
        if stored is None:
            return None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(scratch, path)
            _fsync_directory(path.parent)
        except OSError as exc:
            self.write_failed(exc)
            scratch.unlink(missing_ok=True)
            return None
        return Stored(path, stored.header, stored.payload, stored.identity)

    def _map(self, path: Path, header: dict[str, Any], start: int) -> Stored:
        """A file this process has just written and checked as it wrote."""
        with open(path, "rb") as file:
            st = os.fstat(file.fileno())
            mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        payload = memoryview(mapped)[start:]
        return Stored(path, header, payload, (st.st_ino, st.st_size, st.st_mtime_ns))

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


class Writer:
    """One container being written: payload bytes go to a temporary file as they come; the
    header is written last and the file renamed into place at ``commit``, the commit point.
    ``abort`` (also after a commit) leaves nothing of an uncommitted write behind."""

    def __init__(self, store: Store, path: Path, tmp: Path, start: int) -> None:
        self.path = path
        self._store = store
        self._tmp = tmp
        self._start = start
        self._file: BinaryIO | None = open(tmp, "w+b")  # noqa: SIM115  # closed by commit/abort
        self._file.seek(start)
        self.sink = Sink(self._file)

    @property
    def length(self) -> int:
        return self.sink.length

    def commit(self, header: dict[str, Any]) -> Stored:
        """Make the file visible at its path, checked and durable; raises OSError."""
        assert self._file is not None, "a container is committed once"
        file, self._file = self._file, None
        with file:
            final = {**header, "length": self.sink.length, "digest": self.sink.digest.hexdigest()}
            file.seek(0)
            file.write(_head(orjson.dumps(final), self._start))
            file.flush()
            os.fsync(file.fileno())
        os.replace(self._tmp, self.path)  # the commit point (see the module docstring)
        _fsync_directory(self.path.parent)
        return self._store._map(self.path, final, self._start)

    def abort(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            with contextlib.suppress(OSError):  # flushing what is discarded may fail too
                file.close()
        self._tmp.unlink(missing_ok=True)


class Sink:
    """Where a payload is written: counts and digests the bytes on their way to the file.
    Arrow's writers take it as a file (they need ``write``, ``tell`` and ``closed``)."""

    closed = False

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.length = 0
        self.digest = xxhash.xxh3_128()

    def write(self, data: bytes | memoryview) -> int:
        self.file.write(data)
        self.digest.update(data)
        self.length += len(data)
        return len(data)

    def write_all(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def tell(self) -> int:
        return self.length

    def flush(self) -> None:
        pass


class _Damaged(Exception):
    pass


def _payload_offset(header_room: int) -> int:
    """Where the payload starts: after the header's room, 64-byte aligned as Arrow prefers."""
    end = len(MAGIC) + _LENGTH.size + header_room + _CHECK.size
    return -(-end // PAYLOAD_ALIGNMENT) * PAYLOAD_ALIGNMENT


def _head(header: bytes, start: int) -> bytes:
    """Everything before the payload; the header JSON is padded with spaces to fill its room."""
    room = start - len(MAGIC) - _LENGTH.size - _CHECK.size
    if len(header) > room:
        raise OSError(f"cache header of {len(header)} bytes outgrew its {room}-byte room")
    header = header.ljust(room)
    return MAGIC + _LENGTH.pack(room) + header + _CHECK.pack(xxhash.xxh3_64_intdigest(header))


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
