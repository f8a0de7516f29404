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

import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livedata.auth.caller import Caller
from livedata.service import Memo
from livedata.web import audit, tracing
from livedata.web.browser import Pairs, cacheable
from livedata.web.observed import Witness

log = logging.getLogger("livedata.web")
_FAILED = "the hot lane failed; the full stack answers instead"

# Requests that must see the slow path: cache directives and conditional requests change
# the answer. The credential is part of the memo: who asks decides what they may see, and one
# credential always names the same caller (the lane authenticates every request; an expired
# credential goes down the full stack, which refuses it).
_SLOW_HEADERS = {b"cache-control", b"if-none-match", b"cookie"}
_MEMO_HEADERS = (b"content-type", b"accept", b"accept-encoding", b"authorization")


Headers = Pairs
# Origins whose headers a remembered body keeps: a deployment's dashboards come from a few; a
# request from any other gets its headers worked out again each time.
MAX_ORIGINS = 16
# Counts one hit from memory wherever the slow path would have (method, bytes sent, seconds).
Counter = Callable[[str, int, float], None]


@dataclass(frozen=True)
class HotBody:
    body: bytes
    memo: Memo  # the entry's key and lifetimes (never the entry: it holds an open file)
    headers: Headers  # all that do not change while it is fresh (the browser's, its length)
    plain: Headers  # the same before the browser's: a cross-origin answer gets them otherwise
    line: audit.Template  # the audit log's line of a hit on it
    count: Counter
    # ``plain`` as the CORS and security-header layers seal it, by the Origin asked from.
    origins: dict[bytes, Headers] = field(default_factory=dict)


def file_identity(path: str) -> tuple[int, int, int] | None:
    """What ``Store`` recorded when it verified the file; any change means read it again."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class HotBodies:
    """Bodies by raw request, least recently used dropped beyond ``max_bytes``. What a hit
    on one needs is worked out once, when it is put: ``seal`` gives its headers what every
    response of the API gets (``browser``), ``counter`` finds what counts its hits."""

    def __init__(
        self,
        max_bytes: int,
        seal: Callable[[Headers], Headers],
        counter: Callable[[Memo, Headers], Counter],
    ) -> None:
        self.max_bytes = max_bytes
        self.seal = seal
        self.counter = counter
        self._items: OrderedDict[bytes, HotBody] = OrderedDict()
        self._bytes = 0

    def get(self, memo: bytes) -> HotBody | None:
        hot = self._items.get(memo)
        if hot is not None:
            self._items.move_to_end(memo)
        return hot

    def put(
        self, memo: bytes, body: bytes, entry: Memo, headers: Headers, line: audit.Template
    ) -> None:
        """Remember ``body``, sent with ``headers``, from the stored result ``entry``."""
        if len(body) > self.max_bytes // 4:
            return  # one huge body would push out everything else
        self.forget(memo)
        count = self.counter(entry, headers)
        plain = (*headers, (b"content-length", str(len(body)).encode()))
        self._items[memo] = HotBody(body, entry, self.seal(plain), plain, line, count)
        self._bytes += len(body)
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


class HotLane:
    """Answers a repeated request for a fresh entry before FastAPI and every middleware, and
    hands anything else to the full stack (``app``), its body replayed and its memo noted in
    ``scope["state"]["hot_memo"]`` for the slow path to record what it answers from the cache.

    Through the middlewares (request id, security headers, CORS, authentication, then this as
    a middleware), a hit from memory took ~233k instructions against a bare Starlette app's
    118k (bench/hit_instructions.py). Here it does what they would, asking each owner once:
    ``authenticate`` (credentials remembered until they expire), ``admit`` (the caller's rate
    limit), ``tracing`` for the id, the entry's headers and counter made once (``HotBodies``),
    and ``witness`` to log it. Whatever it cannot answer itself (a refusal, a repeated header
    field, cache directives) goes down the full stack, which answers it as it would any request.
    """

    def __init__(
        self,
        hot: HotBodies,
        clock: Callable[[], float],
        max_body_bytes: int,
        authenticate: Callable[[bytes | None], Caller | None],
        admit: Callable[[str], Awaitable[bool]],
        witness: Witness,
        cross_origin: Callable[[Headers, Scope], Awaitable[Headers]] | None,
    ) -> None:
        self.hot = hot
        self.clock = clock
        self.max_body_bytes = max_body_bytes
        self.authenticate = authenticate  # None: refused, or no credentials where they are due
        self.admit = admit
        self.witness = witness
        # Under CORS, what the CORS and security-header layers make of a cross-origin answer.
        self.cross_origin = cross_origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        started = time.perf_counter()
        method, raw_headers = scope["method"], scope["headers"]
        headers = dict(raw_headers)
        if (
            method not in ("GET", "POST")
            or len(headers) != len(raw_headers)  # a field sent twice: the full stack judges it
            or not _SLOW_HEADERS.isdisjoint(headers)
        ):
            await app(scope, receive, send)
            return
        # Before the body is read, as authentication would. The memo holds the credential, and
        # the same raw request of a caller it names passed every other check when the slow path
        # answered it (no credential in the URL; the grant, which lasts as long as the process).
        try:
            caller = self.authenticate(headers.get(b"authorization"))
        except Exception:  # a bug: the full stack answers it, as a JSON 500 with an id
            log.exception(_FAILED)
            caller = None
        if caller is None:  # authentication refuses it
            await app(scope, receive, send)
            return
        messages, body = await _read(receive, self.max_body_bytes)
        if body is not None:
            # A GET carries its request in the URL (the JavaScript client's requests).
            request = b"GET?" + scope["query_string"] if method == "GET" else body
            memo = memo_key(request, headers)
            hot, now = self.hot.get(memo), self.clock()
            if hot is not None and not _unchanged(hot.memo, now):
                self.hot.forget(memo)  # the slow path reads the entry again, or fetches
            elif hot is not None and await self._answered(
                hot, now, caller, scope, headers, send, started
            ):
                return
            scope.setdefault("state", {})["hot_memo"] = memo
        await app(scope, _replay(messages, receive), send)

    async def _answered(
        self,
        hot: HotBody,
        now: float,
        caller: Caller,
        scope: Scope,
        headers: dict[bytes, bytes],
        send: Send,
        started: float,
    ) -> bool:
        """Answer from ``hot`` unless the caller's rate limit refuses; False (nothing sent)
        then, and the full stack refuses it in the JSON error shape."""
        try:
            admitted = await self.admit(caller.id)
        except Exception:  # a shared quota store gone: the full stack says so
            log.exception(_FAILED)
            return False
        if not admitted:
            return False
        memo = hot.memo
        scope.setdefault("state", {})["caller"] = caller
        request_id = tracing.tag(scope, headers)
        lifetime = f"max-age={int(memo.fresh_until - now)}"
        if scope["method"] == "GET":  # HTTP caches may keep it: the slow path says the same
            lifetime = cacheable(lifetime, caller)
        origin, seal, sealed = headers.get(b"origin"), self.cross_origin, hot.headers
        if origin is not None and seal is not None:
            sealed = await _cross_origin(hot, origin, scope, seal)
        response = [
            *sealed,
            (b"cache-status", b"livedata; hit"),
            (b"cache-control", lifetime.encode()),
            (b"age", str(int(max(0.0, now - memo.created))).encode()),
            request_id,
        ]
        await send({"type": "http.response.start", "status": 200, "headers": response})
        # Before the last byte leaves: a scrape after the client has it all sees it.
        hot.count(scope["method"], len(hot.body), time.perf_counter() - started)
        await send({"type": "http.response.body", "body": hot.body})
        await self.witness.log(scope, 200, started, hot.line)
        return True


async def _cross_origin(
    hot: HotBody,
    origin: bytes,
    scope: Scope,
    seal: Callable[[Headers, Scope], Awaitable[Headers]],
) -> Headers:
    """``hot``'s headers for a request from ``origin``, worked out once per origin: through
    the CORS layer for each request, a cross-origin hit took ~1.4x the CPU of another."""
    sealed = hot.origins.get(origin)
    if sealed is None:
        sealed = await seal(hot.plain, scope)
        if len(hot.origins) < MAX_ORIGINS:  # the origin is the client's to choose
            hot.origins[origin] = sealed
    return sealed


def _unchanged(memo: Memo, now: float) -> bool:
    """Fresh, and its file the one the slow path read and verified."""
    return now < memo.fresh_until and file_identity(memo.entry_path) == memo.identity


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
