"""Response bodies: encoded once per stored entry and variant, or as rows arrive for one
live result. Encoding runs in worker threads, never on the event loop."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterator

import anyio.to_thread

from livedata.cache.entries import EntryHeader, ResultCache
from livedata.connectors.stream import RowStream
from livedata.encoders.base import Encoder
from livedata.encoders.compression import compress
from livedata.results import StoredResult, meta

BLOCK_BYTES = 256 << 10  # a live body goes to the event loop in blocks of about this


def stored_body(
    cache: ResultCache, result: StoredResult, encoder: Encoder, coding: str | None
) -> memoryview:
    """A stored result's body (``coding``: gzip, br or zstd), encoded on first use, then kept
    beside its entry. Blocking: call it in a worker thread."""
    entry = result.entry
    plain = cache.body(
        entry,
        encoder.name,
        lambda: encoder.encode(cache.table(entry).to_reader(), lambda: meta(entry.header)),
    )
    if coding is None:
        return plain
    return cache.body(entry, f"{encoder.name}.{coding}", lambda: (compress(plain, coding),))


def blocks(chunks: Iterator[bytes], size: int = BLOCK_BYTES) -> Iterator[bytes]:
    """``chunks`` joined into blocks of about ``size`` bytes (the last may be smaller)."""
    while block := next_block(chunks, size):
        yield block


def next_block(chunks: Iterator[bytes], size: int = BLOCK_BYTES) -> bytes:
    """The next chunks joined up to ``size`` bytes (empty at the end): one thread hop sends a
    small result whole, and a big one in pieces worth a hop each."""
    taken, total = [], 0
    for chunk in chunks:
        taken.append(chunk)
        total += len(chunk)
        if total >= size:
            break
    return b"".join(taken)


async def live_body(
    stream: RowStream, encoder: Encoder, header: Callable[[], EntryHeader]
) -> AsyncGenerator[bytes]:
    """``stream`` encoded as it arrives; closing the body (or reaching its end) closes the
    stream and frees the source."""
    chunks = encoder.encode(stream, lambda: meta(header()))
    try:
        while True:
            block = await anyio.to_thread.run_sync(next_block, chunks)
            if block:
                yield block
            if len(block) < BLOCK_BYTES:  # the chunks ran out: no hop only to learn that
                return
    finally:
        await stream.aclose()
