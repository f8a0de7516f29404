"""Requests as the cache suites send them: one at a time, or all at once, and what to compare."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson

Body = dict[str, Any]
STORED = "livedata; fwd=miss; stored"
COLLAPSED = "livedata; fwd=miss; collapsed"
HIT = "livedata; hit"
BOUND = 60.0  # seconds any bounded wait may last before the test fails; never a pace


class Clock:
    """Seconds since the epoch, moved forward only by the test."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def ask(url: str, body: Body, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/query", json=body, headers=headers, timeout=BOUND)


def revalidate(url: str, body: Body, etag: str, **headers: str) -> httpx.Response:
    """Ask again with ``If-None-Match`` as HTTP wants it: ``GET /query`` (a POST gets 412)."""
    q = orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()
    conditional = {"if-none-match": etag, **headers}
    return httpx.get(f"{url}/query", params={"q": q}, headers=conditional, timeout=BOUND)


def fire(url: str, bodies: list[Body], connections: int, **headers: str) -> list[httpx.Response]:
    """Send every body at once over ``connections`` connections; the responses, in order."""

    async def send_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=BOUND) as client:
            return list(
                await asyncio.gather(
                    *(client.post("/query", json=body, headers=headers) for body in bodies)
                )
            )

    return asyncio.run(send_all())


def statuses(responses: list[httpx.Response]) -> list[str]:
    return sorted(r.headers["cache-status"] for r in responses)


def same_data(response: httpx.Response) -> Any:
    """What must not change between two answers to one request: all but the fetch times."""
    if response.headers["content-type"] != "application/json":
        return response.content
    body = orjson.loads(response.content)
    for volatile in ("fetched_at", "fresh_until", "timings_ms"):
        body["meta"].pop(volatile, None)
    return body
