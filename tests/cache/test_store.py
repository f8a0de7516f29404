"""Containers written piece by piece: header sized before the payload, final after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from livedata.cache.store import HEADER_SLACK, PAYLOAD_ALIGNMENT, Sink, Store
from livedata.errors import QueryFailed

CHUNKS = [b"a" * 1000, b"b" * 77, b"c" * 5]


def test_a_streamed_payload_is_aligned_and_its_final_header_kept(tmp_path: Path) -> None:
    store = Store(tmp_path)
    path = store.entry_path("ab" * 16)
    rows = [0]

    def fill(sink: Sink) -> None:
        for chunk in CHUNKS:
            sink.write(chunk)
            rows[0] += 1_000_000_000  # the number grows by many digits between the two asks

    written = store.write_stream(path, fill, lambda: {"rows": rows[0]})
    assert written is not None
    read = store.read(path)
    assert read is not None
    assert bytes(read.payload) == b"".join(CHUNKS)
    assert read.header["rows"] == 3_000_000_000
    assert (path.stat().st_size - len(read.payload)) % PAYLOAD_ALIGNMENT == 0


def test_a_header_that_outgrows_its_room_is_a_failed_write(tmp_path: Path) -> None:
    store = Store(tmp_path)
    path = store.entry_path("cd" * 16)
    asked = iter(["", "x" * (2 * HEADER_SLACK)])
    written = store.write_stream(path, lambda sink: sink.write(b"data"), lambda: {"n": next(asked)})
    assert written is None
    assert store.counters["write_failures"] == 1
    assert not path.exists()
    assert list(store.tmp.iterdir()) == []


def test_a_source_failing_half_way_leaves_nothing_behind(tmp_path: Path) -> None:
    store = Store(tmp_path)
    path = store.entry_path("ef" * 16)

    def fill(sink: Sink) -> None:
        sink.write(b"first rows")
        raise QueryFailed("the source went away", source="db")

    with pytest.raises(QueryFailed):
        store.write_stream(path, fill, dict)
    assert not path.exists()
    assert list(store.tmp.iterdir()) == []
    assert store.counters["write_failures"] == 0
