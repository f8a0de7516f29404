"""A row stream frees what it holds on every path, whether it is closed in a worker thread
(a cap stopped the reading) or at once (the driver's batches ran out: the connection is back
in the pool already), with many streams at once."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.to_thread
import pytest

from livedata.connectors.sources import Sources
from livedata.connectors.stream import Caps
from livedata.sql import Statement
from tests.samples import Sample

COUNTRIES = Statement('SELECT * FROM "world_country_list" ORDER BY "alpha_3"', ())
AT_ONCE = 16  # more than the source's slots: most wait for one


def _sources(sample_of: Callable[[str], Sample]) -> Sources:
    config = sample_of("postgres").config
    return Sources.from_configs({"pg": config})


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("caps", "rows", "truncated"),
    [
        pytest.param(Caps(), 249, False, id="whole"),
        pytest.param(Caps(rows=10), 10, True, id="row-cap-reads-to-the-end"),
        pytest.param(Caps(bytes=1_000), None, True, id="byte-cap-stops-reading"),
    ],
)
async def test_many_streams_at_once_free_their_slots_and_connections(
    sample_of: Callable[[str], Sample], caps: Caps, rows: int | None, truncated: bool
) -> None:
    sources = _sources(sample_of)
    seen: list[tuple[int, bool]] = []

    async def one() -> None:
        stream = await sources.stream("pg", COUNTRIES, caps)
        try:
            await anyio.to_thread.run_sync(stream.read_all)
        finally:
            await stream.aclose()
        seen.append((stream.rows, stream.truncated))

    try:
        async with anyio.create_task_group() as tasks:
            for _ in range(AT_ONCE):
                tasks.start_soon(one)
        assert len(seen) == AT_ONCE
        assert all(t == truncated and (rows is None or r == rows) for r, t in seen), seen
        assert sources._slots["pg"].borrowed_tokens == 0
        # The result is one batch, read to its end before any cap is applied: every
        # connection went back to the pool, none was dropped as abandoned.
        assert sources["pg"]._idle.qsize() > 0
    finally:
        sources.close()
