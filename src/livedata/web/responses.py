"""Turning results into HTTP responses: negotiation, caching headers, bodies."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import anyio.to_thread
import orjson
from starlette.concurrency import iterate_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import Response, StreamingResponse

from livedata.encoders.base import Encoder
from livedata.encoders.compression import available
from livedata.encoders.registry import DEFAULT_FORMAT, ENCODERS
from livedata.errors import NotAcceptable
from livedata.service import CacheControl, QueryService, Result
from livedata.web.audit import describe
from livedata.web.hot import HotBodies, HotBody

# What changes a /query response besides its body: the format and coding asked for, the
# caller (its restrictions and allow-list), the cache directives. CORS adds Origin.
VARY = "Accept, Accept-Encoding, Authorization, Cache-Control"
STREAM_ABOVE_BYTES = 1 << 20  # unstored results smaller than this are sent with a length
CODINGS = available()
_BY_MEDIA_TYPE = {e.media_type: e for e in ENCODERS.values()}
# RFC 9211 Cache-Status for each way a result was obtained.
_CACHE_STATUS = {
    "hit": "livedata; hit",
    "stale": "livedata; hit; detail=stale-while-revalidate",
    "stale-if-error": "livedata; hit; detail=stale-if-error",
    "miss": "livedata; fwd=miss; stored",
    "coalesced": "livedata; fwd=miss; collapsed",
    "unstored": "livedata; fwd=miss; detail=not-stored",
    "bypass": "livedata; fwd=bypass",
}


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def choose_encoder(format_name: str | None, accept: str | None) -> Encoder:
    """The ``format`` field wins; otherwise the Accept header's best q-value, JSON by default."""
    if format_name is not None:
        if format_name not in ENCODERS:
            raise NotAcceptable(
                f"Unknown format {format_name!r}; use one of {', '.join(ENCODERS)}.",
                formats=list(ENCODERS),
            )
        return ENCODERS[format_name]
    if not accept:
        return ENCODERS[DEFAULT_FORMAT]
    for media_range, quality in _ranked(accept):
        encoder = _match(media_range) if quality > 0 else None
        if encoder is not None:
            return encoder
    raise NotAcceptable(
        f"None of the accepted types ({accept}) is available; offered: "
        f"{', '.join(_BY_MEDIA_TYPE)}.",
        media_types=list(_BY_MEDIA_TYPE),
    )


def choose_coding(accept_encoding: str | None) -> str | None:
    """The content coding to use: the client's best q-value, our preference among equals."""
    if not accept_encoding:
        return None
    accepted = dict(_ranked(accept_encoding))
    return max(
        (c for c in CODINGS if accepted.get(c, accepted.get("*", 0)) > 0),
        key=lambda c: accepted.get(c, accepted.get("*", 0)),
        default=None,
    )


def cache_control(headers: Headers) -> CacheControl:
    directives = {}
    for part in headers.get("cache-control", "").split(","):
        name, _, value = part.strip().lower().partition("=")
        directives[name] = value.strip('"')
    max_age = directives.get("max-age", "")
    return CacheControl(
        no_cache="no-cache" in directives,
        max_age=float(max_age) if max_age.isdigit() else None,
        only_if_cached="only-if-cached" in directives,
    )


def _ranked(header: str) -> list[tuple[str, float]]:
    """Header values with their q-values, best first, header order among equals."""
    ranges = []
    for part in header.split(","):
        value, *parameters = (p.strip() for p in part.split(";"))
        quality = 1.0
        for parameter in parameters:
            key, _, number = parameter.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(number)
                except ValueError:
                    quality = 0.0
        if value:
            ranges.append((value.lower(), quality))
    return sorted(ranges, key=lambda item: -item[1])


def _match(media_range: str) -> Encoder | None:
    if media_range in ("*/*", "application/*"):
        return ENCODERS[DEFAULT_FORMAT]
    if media_range.endswith("/*"):
        prefix = media_range[:-1]
        return next((e for t, e in _BY_MEDIA_TYPE.items() if t.startswith(prefix)), None)
    return _BY_MEDIA_TYPE.get(media_range)


async def result_response(
    service: QueryService,
    result: Result,
    encoder: Encoder,
    coding: str | None,
    request_headers: Headers,
    total_ms: float,
) -> Response:
    headers = {
        "Server-Timing": f"source;dur={result.header['source_ms']}, total;dur={total_ms:.3f}",
        "X-Row-Count": str(result.rows),
        "X-Truncated": str(result.truncated).lower(),
        "Vary": VARY,
        "Cache-Status": _CACHE_STATUS[result.status],
    }
    if result.entry is None:
        headers["Cache-Control"] = "no-store"
        chunks = service.chunks(result, encoder)
        if service.table(result).nbytes <= STREAM_ABOVE_BYTES:
            body = await anyio.to_thread.run_sync(b"".join, chunks)
            return Response(body, media_type=encoder.media_type, headers=headers)
        return StreamingResponse(
            iterate_in_threadpool(chunks), media_type=encoder.media_type, headers=headers
        )
    variant = encoder.name if coding is None else f"{encoder.name}.{coding}"
    headers["ETag"] = f'"{result.entry.version}.{variant}"'
    headers["Cache-Control"] = f"max-age={max(0, int(result.fresh_for))}"
    headers["Age"] = str(int(result.age))
    if headers["ETag"] in _etags(request_headers.get("if-none-match")):
        return Response(status_code=304, headers=headers)
    stored = await anyio.to_thread.run_sync(service.body, result, encoder, coding)
    if coding is not None:
        headers["Content-Encoding"] = coding
    return Response(stored, media_type=encoder.media_type, headers=headers)


def _etags(header: str | None) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in (header or "").split(",")}


_STATIC_HEADERS = {
    b"content-type",
    b"etag",
    b"vary",
    b"x-row-count",
    b"x-truncated",
    b"content-encoding",
}


def remember(
    hot: HotBodies, memo: bytes | None, service: QueryService, result: Result, response: Response
) -> None:
    """Let the fast path answer this raw request again while the entry stays fresh."""
    entry = result.entry
    if memo is None or entry is None or response.status_code != 200:
        return
    if result.status not in ("hit", "miss", "coalesced") or result.fresh_for <= 0:
        return
    hot.put(
        memo,
        HotBody(
            body=bytes(response.body),
            entry_path=str(entry.stored.path),
            identity=entry.stored.identity,
            fresh_until=float(result.header["fresh_until"]),
            created=float(result.header["created"]),
            headers=(
                *((k, v) for k, v in response.raw_headers if k in _STATIC_HEADERS),
                (b"server-timing", f"source;dur={result.header['source_ms']}".encode()),
            ),
            on_hit=lambda: service.count_hit(result),
            audit=describe(replace(result, status="hit")),
        ),
    )
