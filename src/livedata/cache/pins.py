"""Snapshots kept for open paging cursors, whatever happens to their entries meanwhile.

A pin is a hard link to one fetch of an entry (``pins/<key>.<version>.entry``): a refresh,
an eviction or an invalidation unlinks the entry's own name, and the pinned inode stays.
The time it may go is the mtime of an empty marker beside it (``.until``; not the link's
own, which is the entry's inode too); each page pushes it on, and upkeep removes pins past
it. Pins count against the cache's size bound with the other files no entry accounts for.

Each process keeps the tables of a few pins open (mapped, so they cost page cache, not heap):
reading page k then slices a table already open, instead of checking the whole file again.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pyarrow as pa

from livedata.cache.formats.base import CacheFormat
from livedata.cache.store import Store, Stored

OPEN_PINS = 16  # pinned tables each process keeps open, least recently paged out


Pinned = tuple[dict[str, Any], pa.Table]  # the entry's header, as stored, and its rows


class Pins:
    def __init__(self, store: Store, cache_format: CacheFormat) -> None:
        self.store = store
        self.format = cache_format
        self.root = store.root / "pins"
        self.root.mkdir(exist_ok=True)
        self._open: OrderedDict[tuple[str, str], Pinned] = OrderedDict()
        self._lock = threading.Lock()  # pages are read in worker threads

    def path(self, key: str, version: str, suffix: str = "entry") -> Path:
        return self.root / f"{key}.{version}.{suffix}"

    def pin(self, key: str, version: str, stored: Stored, until: float) -> Pinned | None:
        """Keep the fetch ``version`` of ``key`` (verified as ``stored``) until ``until`` at
        least. The marker comes first, so upkeep elsewhere never takes the link for a pin a
        crash left without one; None if it swept the pin all the same (within a moment)."""
        self.path(key, version, "until").touch()
        self.renew(key, version, until)
        path = self.path(key, version)
        if not path.exists():
            self._link(path, stored)
        return self.read(key, version)

    def _link(self, path: Path, stored: Stored) -> None:
        """A hard link to the very file that was verified. If the entry's name already points
        to a newer fetch (a refresh renamed over it), the old one is copied from its mapping
        instead: the pin must hold the rows the first page came from."""
        with contextlib.suppress(FileExistsError):  # another worker pinned it first
            try:
                os.link(stored.path, path)
            except FileNotFoundError:
                pass  # evicted meanwhile: copied below
            else:
                if path.stat().st_ino == stored.identity[0]:
                    return
                path.unlink()
            if self.store.write(path, bytes(stored.payload), stored.header) is None:
                raise OSError(f"could not pin {path.name}")

    def renew(self, key: str, version: str, until: float) -> bool:
        """Push the pin's end to ``until`` (never back); False when it is gone, or out of
        reach (a failing disk): either way no page may count on it."""
        path = self.path(key, version, "until")
        try:
            if path.stat().st_mtime < until:
                os.utime(path, (until, until))
        except OSError:
            return False
        return True

    def read(self, key: str, version: str) -> Pinned | None:
        """The pinned fetch, or None when no such pin is kept (expired, or never here)."""
        name = (key, version)
        with self._lock:
            pinned = self._open.pop(name, None)
        if pinned is None:
            stored = self.store.read(self.path(key, version))
            if stored is None:
                return None
            pinned = (stored.header, self.format.loads(stored.payload))
        with self._lock:
            self._open[name] = pinned  # most recently paged last
            if len(self._open) > OPEN_PINS:
                self._open.popitem(last=False)
        return pinned

    def sweep(self, now: float) -> int:
        """Remove the pins past their end; how many."""
        removed = 0
        for marker in self.root.glob("*.until"):
            with contextlib.suppress(FileNotFoundError):  # another process swept it
                if marker.stat().st_mtime < now:
                    key, version = marker.name.split(".", 2)[:2]
                    self.store.remove(self.path(key, version))
                    marker.unlink()
                    with self._lock:
                        self._open.pop((key, version), None)
                    removed += 1
        for path in self.root.glob("*.entry"):  # a crash between the link and its marker
            key, version = path.name.split(".", 2)[:2]
            if not self.path(key, version, "until").exists():
                self.store.remove(path)
        return removed
