"""The two quota primitives, the same in this process and in Redis: a token bucket, and
window counters that refuse, all or nothing, once spent. Time is an argument."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import redis

from livedata.quota.store import QuotaStore, Spend, open_store
from tests.conftest import require_service

REDIS_URL = "redis://127.0.0.1:6379/0"
T = TypeVar("T")


@pytest.fixture(params=["memory", "redis"])
def url(request: pytest.FixtureRequest) -> str | None:
    """Where the store keeps its counts: this process, or Redis."""
    if request.param == "memory":
        return None
    require_service("Redis on 127.0.0.1:6379", lambda: redis.Redis.from_url(REDIS_URL).ping())
    return REDIS_URL


def run(url: str | None, scenario: Callable[[QuotaStore], Awaitable[T]]) -> T:
    """``scenario`` on a store opened and closed in one event loop (a Redis client is bound
    to the loop it was made in)."""

    async def main() -> T:
        store = open_store(url)
        try:
            return await scenario(store)
        finally:
            await store.close()

    return asyncio.run(main())


@pytest.fixture
def key() -> Callable[[str], str]:
    """Keys of this test only: the machine's Redis is shared."""
    run = uuid.uuid4().hex
    return lambda name: f"test:{run}:{name}"


def test_a_bucket_gives_its_burst_then_says_when(
    url: str | None, key: Callable[[str], str]
) -> None:
    async def scenario(store: QuotaStore) -> list[float]:
        waits = [await store.take(key("b"), 2.0, 3.0, 100.0) for _ in range(4)]
        waits.append(await store.take(key("b"), 2.0, 3.0, 100.5))  # one token back
        return waits

    waits = run(url, scenario)
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(0.5)  # rate 2/s: half a second to the next token
    assert waits[4] == 0.0


def test_spending_is_all_or_nothing(url: str | None, key: Callable[[str], str]) -> None:
    queries = Spend(key("queries"), 1, 2, window_end=200.0)
    seconds = Spend(key("seconds"), 0, 1.5, window_end=200.0)

    async def scenario(store: QuotaStore) -> list[Spend | None]:
        answers = [await store.spend([queries, seconds], 100.0) for _ in range(3)]
        answers.append(await store.spend([Spend(key("seconds"), 2, None, 200.0)], 100.0))
        answers.append(await store.spend([seconds, queries], 100.0))
        return answers

    first, second, third, unlimited, spent = run(url, scenario)
    assert (first, second) == (None, None)
    assert third == queries  # two queries counted: the third is refused, nothing added
    assert unlimited is None
    assert spent == seconds  # the first counter at its limit is the one named
