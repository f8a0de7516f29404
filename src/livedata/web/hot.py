"""The hit fast path: repeated requests for a fresh cached result, answered from memory.

A hit through the full stack pays for FastAPI's routing, body validation, planning and a
thread hop, which caps it far below what the server can do. Yet a request's raw bytes (its
body, or a GET's query string, and the headers that choose the representation) determine
its plan, hence its cache key and response body, for the life of the process. So once the
slow path has answered a request from a stored entry, the same raw request is answered
here, before FastAPI, with the same bytes, for as long as the entry is fresh and its file
unchanged.

Unchanged means the same inode, size and modification time as when the slow path read and
verified it: a refresh, an invalidation, an eviction or any write to the file sends the next
request down the slow path again, which verifies the file before serving it.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livedata.service import Memo
from livedata.web.audit import record
from livedata.web.browser import cacheable

# Requests that must see the slow path: cache directives and conditional requests change
# the answer. The credential is part of the memo: who asks decides what they may see, and one
# credential always names the same caller (authentication, outside, refuses expired ones).
_SLOW_HEADERS = {b"cache-control", b"if-none-match", b"cookie"}
_MEMO_HEADERS = (b"content-type", b"accept", b"accept-encoding", b"authorization")


@dataclass(frozen=True)
class HotBody:
    body: bytes
    memo: Memo  # the entry's key and lifetimes (never the entry: it holds an open file)
    headers: tuple[tuple[bytes, bytes], ...]  # those that do not change while it is fresh
    audit: Mapping[str, Any]  # what the audit log says of a hit on it


def file_identity(path: str) -> tuple[int, int, int] | None:
    """What ``Store`` recorded when it verified the file; any change means read it again."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class HotBodies:
    """Bodies by raw request, least recently used dropped beyond ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[bytes, HotBody] = OrderedDict()
        self._bytes = 0

    def get(self, memo: bytes) -> HotBody | None:
        hot = self._items.get(memo)
        if hot is not None:
            self._items.move_to_end(memo)
        return hot

    def put(self, memo: bytes, hot: HotBody) -> None:
        if len(hot.body) > self.max_bytes // 4:
            return  # one huge body would push out everything else
        self.forget(memo)
        self._items[memo] = hot
        self._bytes += len(hot.body)
        while self._bytes > self.max_bytes:
            _, dropped = self._items.popitem(last=False)
            self._bytes -= len(dropped.body)

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0

    def forget(self, memo: bytes) -> None:
        dropped = self._items.pop(memo, None)
        if dropped is not None:
            self._bytes -= len(dropped.body)


def memo_key(body: bytes, headers: dict[bytes, bytes]) -> bytes:
    return b"\0".join([body, *(headers.get(name, b"") for name in _MEMO_HEADERS)])


class HotPath:
    """ASGI middleware in front of the app; sets ``scope["state"]["hot_memo"]`` for the
    slow path, which records what it answered from the cache under that memo.

    Authentication, outside, has put the caller in ``scope["state"]``; ``admit`` takes its
    request from that caller's rate limit as the slow path would. When the limit refuses, the
    request goes down the slow path, which refuses it in the JSON error shape.
    """

    def __init__(
        self,
        app: ASGIApp,
        hot: HotBodies,
        clock: Callable[[], float],
        max_body_bytes: int,
        admit: Callable[[str], Awaitable[bool]],
        count_hit: Callable[[Memo], None],
    ) -> None:
        self.app = app
        self.hot = hot
        self.clock = clock
        self.max_body_bytes = max_body_bytes
        self.admit = admit
        self.count_hit = count_hit  # counts the hit where the slow path would have

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/query":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        headers = dict(scope["headers"])
        if method not in ("GET", "POST") or not _SLOW_HEADERS.isdisjoint(headers):
            await self.app(scope, receive, send)
            return
        messages, body = await _read(receive, self.max_body_bytes)
        if body is not None:
            # A GET carries its request in the URL (the JavaScript client's requests).
            request = b"GET?" + scope["query_string"] if method == "GET" else body
            memo = memo_key(request, headers)
            hot = self.hot.get(memo)
            if hot is not None and await self._answer(hot, scope, send):
                return
            if hot is not None:
                self.hot.forget(memo)
            scope.setdefault("state", {})["hot_memo"] = memo
        await self.app(scope, _replay(messages, receive), send)

    async def _answer(self, hot: HotBody, scope: Scope, send: Send) -> bool:
        now, memo = self.clock(), hot.memo
        if now >= memo.fresh_until or file_identity(memo.entry_path) != memo.identity:
            return False
        if not await self.admit(scope["state"]["caller"].id):
            return False
        self.count_hit(memo)
        record(scope).update(hot.audit)
        lifetime = f"max-age={int(memo.fresh_until - now)}"
        if scope["method"] == "GET":  # HTTP caches may keep it: the slow path says the same
            lifetime = cacheable(lifetime, scope["state"]["caller"])
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    *hot.headers,
                    (b"content-length", str(len(hot.body)).encode()),
                    (b"cache-status", b"livedata; hit"),
                    (b"cache-control", lifetime.encode()),
                    (b"age", str(int(max(0.0, now - memo.created))).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": hot.body})
        return True


async def _read(receive: Receive, limit: int) -> tuple[list[Message], bytes | None]:
    """The request's messages, and its body unless it is over ``limit`` (the slow path
    then answers 413) or the client left."""
    messages, size = [], 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if size > limit:
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay
