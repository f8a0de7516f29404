"""A SQLite index of the entries on disk: for eviction, invalidation, listing and hit counts.

The index is advisory: the entry files are the truth. An entry whose index row is missing
(a crash between the rename and the insert) is indexed again when it is read, and by upkeep,
which also drops rows whose file is gone (``upkeep.py``). Hit counts are kept in memory and
written in batches, so a hit never waits for a database write.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    bytes INTEGER NOT NULL,
    created REAL NOT NULL,
    stale_until REAL NOT NULL,
    last_access REAL NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL,
    name TEXT NOT NULL,
    header TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_by_access ON entries (last_access);
CREATE INDEX IF NOT EXISTS entries_by_expiry ON entries (stale_until);
CREATE TABLE IF NOT EXISTS tags (
    tag TEXT NOT NULL,
    key TEXT NOT NULL REFERENCES entries (key) ON DELETE CASCADE,
    PRIMARY KEY (tag, key)
);
"""


class Index:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._pending: Counter[str] = Counter()
        self._accessed: dict[str, float] = {}
        with self._lock:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            # The log counts against the cache's size bound: fold it in every 64 pages
            # (256 KiB), not every 1000.
            self._db.execute("PRAGMA wal_autocheckpoint = 64")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.executescript(_SCHEMA)

    def record(self, key: str, size: int, header: dict[str, Any], tags: Iterable[str]) -> None:
        now = time.time()
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO entries (key, bytes, created, stale_until, last_access, source,"
                " name, header) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
                " bytes = excluded.bytes, created = excluded.created,"
                " stale_until = excluded.stale_until, last_access = excluded.last_access,"
                " source = excluded.source, name = excluded.name, header = excluded.header",
                (
                    key,
                    size,
                    header["created"],
                    header["stale_until"],
                    now,
                    header["source"],
                    header["name"],
                    orjson.dumps(header).decode(),
                ),
            )
            self._db.execute("DELETE FROM tags WHERE key = ?", (key,))
            self._db.executemany(
                "INSERT INTO tags (tag, key) VALUES (?, ?)", [(tag, key) for tag in set(tags)]
            )

    def known(self, key: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM entries WHERE key = ?", (key,)).fetchone()
        return row is not None

    def sizes(self) -> dict[str, int]:
        """Every indexed key with the bytes it is counted for."""
        with self._lock:
            return dict(self._db.execute("SELECT key, bytes FROM entries").fetchall())

    def set_bytes(self, key: str, size: int) -> None:
        with self._lock:
            self._db.execute("UPDATE entries SET bytes = ? WHERE key = ?", (size, key))

    def add_bytes(self, key: str, size: int) -> None:
        """Count a body file encoded later from the entry towards its size."""
        with self._lock:
            self._db.execute("UPDATE entries SET bytes = bytes + ? WHERE key = ?", (size, key))

    def hit(self, key: str) -> None:
        with self._lock:
            self._pending[key] += 1
            self._accessed[key] = time.time()

    def flush_hits(self) -> None:
        with self._lock:
            pending, accessed = self._pending, self._accessed
            self._pending, self._accessed = Counter(), {}
            if pending:
                self._db.executemany(
                    "UPDATE entries SET hits = hits + ?, last_access = max(last_access, ?)"
                    " WHERE key = ?",
                    [(count, accessed[key], key) for key, count in pending.items()],
                )

    def forget(self, keys: Iterable[str]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM entries WHERE key = ?", [(k,) for k in keys])

    def keys_tagged(self, tag: str) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT key FROM tags WHERE tag = ?", (tag,)).fetchall()
        return [key for (key,) in rows]

    def all_keys(self) -> list[str]:
        with self._lock:
            return [key for (key,) in self._db.execute("SELECT key FROM entries").fetchall()]

    def expired(self, now: float) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT key FROM entries WHERE stale_until < ?", (now,))
            return [key for (key,) in rows.fetchall()]

    def least_recently_used(self) -> list[tuple[str, int]]:
        with self._lock:
            rows = self._db.execute("SELECT key, bytes FROM entries ORDER BY last_access")
            return [(key, size) for key, size in rows.fetchall()]

    def total_bytes(self) -> int:
        with self._lock:
            (total,) = self._db.execute("SELECT coalesce(sum(bytes), 0) FROM entries").fetchone()
        return int(total)

    def listing(self) -> list[dict[str, Any]]:
        """Every entry with its header, hit count and size, most recently used first."""
        self.flush_hits()
        with self._lock:
            rows = self._db.execute(
                "SELECT key, bytes, hits, last_access, header FROM entries"
                " ORDER BY last_access DESC"
            ).fetchall()
        return [
            {
                **orjson.loads(header),
                "key": key,
                "bytes": size,
                "hits": hits,
                "last_access": last_access,
            }
            for key, size, hits, last_access, header in rows
        ]

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database and empty it, so the index takes no
        more room than its rows (it counts against the cache's size bound)."""
        with self._lock, contextlib.suppress(sqlite3.OperationalError):  # a full disk: later
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.flush_hits()
        with self._lock:
            self._db.close()
