"""Storing one fetch as it is read: the entry's rows and the bodies encoded on the way
(``entries.py`` holds what is stored)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import pyarrow as pa

from livedata.cache.entries import Entry, EntryHeader, ResultCache
from livedata.cache.formats.base import BatchWriter
from livedata.cache.store import Writer

log = logging.getLogger("livedata.cache")


class EntryWriter:
    """One fetch being stored: the entry's rows as they arrive, and bodies encoded from them
    on the way, committed together (entry first) or not at all. A disk that refuses, or a
    result larger than the whole cache, ends the writing, never the reading: rows keep
    flowing to whoever reads them (``failed`` then says so)."""

    def __init__(self, cache: ResultCache, key: str, provisional: EntryHeader) -> None:
        self.cache = cache
        self.key = key
        self.version = provisional.version
        provisional = replace(provisional, format=cache.format.name)
        self.failed = False
        self._entry: Writer | None = None
        self._rows: BatchWriter | None = None
        self._bodies: dict[str, Writer] = {}
        self._store = cache.store
        try:
            self._entry = self._store.writer(self._store.entry_path(key), provisional.to_json())
        except OSError as exc:
            self._fail(exc)

    def rows(
        self, schema: pa.Schema, batches: Iterable[pa.RecordBatch]
    ) -> Iterator[pa.RecordBatch]:
        """``batches``, each written to the entry before it is passed on."""
        if self._entry is not None:
            try:
                self._rows = self.cache.format.writer(schema, self._entry.sink)
            except OSError as exc:
                self._fail(exc)
        for batch in batches:
            if self._rows is not None:
                try:
                    self._rows.write_batch(batch)
                except OSError as exc:
                    self._fail(exc)
                self._check_size()
            yield batch

    def body(self, variant: str, chunk: bytes) -> None:
        """Add ``chunk`` to the body ``variant`` being encoded from these rows."""
        if self.failed:
            return
        try:
            writer = self._bodies.get(variant)
            if writer is None:
                path = self._store.body_path(self.key, self.version, variant)
                writer = self._bodies[variant] = self._store.writer(
                    path, self._body_header(variant)
                )
            writer.sink.write(chunk)
        except OSError as exc:
            self._fail(exc)
        self._check_size()

    def commit(self, header: EntryHeader) -> Entry | None:
        """Make the entry, then its bodies, visible; None when the writing failed."""
        if self._rows is not None and not self.failed:
            try:
                self._rows.close()
            except OSError as exc:
                self._fail(exc)
        if self.failed or self._entry is None:
            self.abort()
            return None
        header = replace(header, version=self.version, format=self.cache.format.name)
        try:
            stored = self._entry.commit(header.to_json())
            for variant, writer in self._bodies.items():
                writer.commit(self._body_header(variant))
        except OSError as exc:
            self._fail(exc)
            self.abort()
            return None
        entry = Entry(self.key, header, stored)
        self.cache.settle(entry)
        return entry

    def _body_header(self, variant: str) -> dict[str, Any]:
        return {"entry": self.key, "version": self.version, "variant": variant}

    def abort(self) -> None:
        """Drop whatever is not committed (idempotent)."""
        for writer in (self._entry, *self._bodies.values()):
            if writer is not None:
                writer.abort()

    def _check_size(self) -> None:
        written = sum(w.length for w in (self._entry, *self._bodies.values()) if w is not None)
        if not self.failed and written > self.cache.max_bytes:
            self.failed = True
            self._store.counters["oversized"] += 1
            log.info("result %s is larger than the cache (%d bytes); not stored", self.key, written)
            self.abort()

    def _fail(self, exc: OSError) -> None:
        if not self.failed:
            self.failed = True
            self._store.write_failed(exc)
            self.abort()
