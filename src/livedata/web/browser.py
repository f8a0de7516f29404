"""What browsers are told: which origins may read (CORS), headers that stop a response
being sniffed, framed or leaking the page address that asked for it, and which caches may
keep an answer.

API responses get a Content-Security-Policy that allows nothing (they are data, never a
page). HTML pages (``/``, ``/docs``) load every script and style from this origin
(``livedata.web.pages``); their policy allows this origin and exactly the inline scripts of
the page being sent, by hash, so nothing injected could run. Inline styles stay allowed:
Swagger UI sets them.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable, Iterable

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livedata.auth.caller import ANONYMOUS, Caller
from livedata.settings import Settings

API_POLICY = "default-src 'none'; frame-ancestors 'none'"
_PAGE_POLICY = (
    "default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)
# As raw ASGI pairs, added to the response's own list: through MutableHeaders a hit from
# memory took 9% more instructions (callgrind, 200 in-process hits: 368k each, now 338k).
_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_API_POLICY = (b"content-security-policy", API_POLICY.encode())
# Request headers a page may send beyond the CORS-safelisted ones, and response headers it
# may read beyond the safelisted ones.
ALLOWED_HEADERS = ["Authorization", "Content-Type", "Cache-Control", "If-None-Match"]
EXPOSED_HEADERS = [
    "X-Request-Id",
    "Cache-Status",
    "ETag",
    "Age",
    "Retry-After",
    "Server-Timing",
    "X-Row-Count",
    "X-Truncated",
    "X-Next-Cursor",
    "X-Total-Count",
]


def with_cors(app: ASGIApp, settings: Settings) -> ASGIApp:
    """``app`` behind Starlette's CORS middleware when origins are configured; as it is
    otherwise (no CORS headers: browsers keep other origins from reading anything)."""
    return _cors(app, settings) if settings.cors_origins else app


Pairs = tuple[tuple[bytes, bytes], ...]  # a response's headers, as ASGI has them


def through_cors(settings: Settings) -> Callable[[Pairs, Scope], Awaitable[Pairs]] | None:
    """For the hot lane: what the full stack's CORS layer and then its security headers make
    of a response's ``headers`` for a request (``scope``) that names its ``Origin``; None
    without CORS. It depends on the origin alone: a request with cookies, the one other
    thing CORS looks at, never takes the hot lane."""
    if not settings.cors_origins:
        return None
    cors = _cors(_only_its_send, settings)

    async def seal(headers: Pairs, scope: Scope) -> Pairs:
        sealed: list[tuple[bytes, bytes]] = []

        async def keep(message: Message) -> None:
            sealed.extend(secured(message["headers"], vary_origin=True))

        start = {"type": "http.response.start", "status": 200, "headers": list(headers)}
        await cors.send(start, keep, Headers(scope=scope))
        return tuple(sealed)

    return seal


def _cors(app: ASGIApp, settings: Settings) -> CORSMiddleware:
    return CORSMiddleware(
        app,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=ALLOWED_HEADERS,
        allow_credentials=settings.cors_allow_credentials,
        expose_headers=EXPOSED_HEADERS,
        max_age=settings.cors_max_age,
    )


async def _only_its_send(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("the hot lane uses the CORS layer's send, never the layer")


class SecurityHeaders:
    """Adds the headers above to every response; ``vary_origin`` when CORS is on, so a
    shared cache never hands one origin's answer (or a no-CORS one) to another."""

    def __init__(self, app: ASGIApp, vary_origin: bool) -> None:
        self.app = app
        self.vary_origin = vary_origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message["headers"] = secured(message.get("headers", ()), self.vary_origin)
                if _is_page(headers):
                    held.append(message)  # its policy needs the page's inline scripts
                    return
            elif held and message["type"] == "http.response.body":
                held.append(message)
                if message.get("more_body", False):
                    return
                await _send_page(held, send)
                held.clear()
                return
            await send(message)

        await self.app(scope, receive, send_with_headers)


def secured(headers: Iterable[tuple[bytes, bytes]], vary_origin: bool) -> list[tuple[bytes, bytes]]:
    """``headers`` (raw ASGI pairs, names in lower case) with what every response gets, and
    an API response's policy unless it has one; ``Origin`` added to ``Vary`` when CORS is on.
    A page's own policy is added once its body is known (``SecurityHeaders``)."""
    headers = list(headers)
    present = dict(headers)
    headers += [pair for pair in _ALWAYS if pair[0] not in present]
    if not _is_page(headers) and b"content-security-policy" not in present:
        headers.append(_API_POLICY)
    vary = present.get(b"vary", b"")
    if vary_origin and b"origin" not in vary.lower():
        headers = [pair for pair in headers if pair[0] != b"vary"]
        headers.append((b"vary", vary + b", Origin" if vary else b"Origin"))
    return headers


def _is_page(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(k == b"content-type" and v.startswith(b"text/html") for k, v in headers)


async def _send_page(messages: list[Message], send: Send) -> None:
    start, *bodies = messages
    page = b"".join(m.get("body", b"") for m in bodies)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(page)
    )
    MutableHeaders(scope=start)["Content-Security-Policy"] = _PAGE_POLICY.format(hashes=hashes)
    await send(start)
    await send({"type": "http.response.body", "body": page})


def cacheable(directives: str, caller: Caller) -> str:
    """``Cache-Control`` of an answer HTTP caches may keep: an authenticated caller's is
    theirs alone (``private``), since another caller may be answered otherwise."""
    return directives if caller is ANONYMOUS else f"private, {directives}"
