"""Turning results into HTTP responses: format negotiation, headers, streaming."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import orjson
from starlette.concurrency import iterate_in_threadpool
from starlette.responses import Response, StreamingResponse

from livedata.encoders.base import Encoder
from livedata.encoders.registry import DEFAULT_FORMAT, ENCODERS
from livedata.errors import NotAcceptable
from livedata.service import Result

STREAM_ABOVE_BYTES = 1 << 20  # smaller results are encoded at once and sent with a length
_BY_MEDIA_TYPE = {e.media_type: e for e in ENCODERS.values()}


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
    ranked = sorted(_parse_accept(accept), key=lambda item: -item[1])  # stable: header order
    for media_range, quality in ranked:
        if quality <= 0:
            continue
        encoder = _match(media_range)
        if encoder is not None:
            return encoder
    raise NotAcceptable(
        f"None of the accepted types ({accept}) is available; offered: "
        f"{', '.join(_BY_MEDIA_TYPE)}.",
        media_types=list(_BY_MEDIA_TYPE),
    )


def _parse_accept(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for part in accept.split(","):
        media_range, *parameters = (p.strip() for p in part.split(";"))
        quality = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media_range:
            ranges.append((media_range.lower(), quality))
    return ranges


def _match(media_range: str) -> Encoder | None:
    if media_range in ("*/*", "application/*"):
        return ENCODERS[DEFAULT_FORMAT]
    if media_range.endswith("/*"):
        prefix = media_range[:-1]
        return next((e for t, e in _BY_MEDIA_TYPE.items() if t.startswith(prefix)), None)
    return _BY_MEDIA_TYPE.get(media_range)


async def result_response(result: Result, encoder: Encoder, meta: dict[str, Any]) -> Response:
    headers = {
        "Server-Timing": f"source;dur={meta['timings_ms']['source']}",
        "X-Row-Count": str(result.table.num_rows),
        "X-Truncated": str(result.truncated).lower(),
        "Vary": "Accept",
    }
    chunks = encoder.encode(result.table, meta)
    if result.table.nbytes <= STREAM_ABOVE_BYTES:
        body = await anyio.to_thread.run_sync(b"".join, chunks)
        return Response(body, media_type=encoder.media_type, headers=headers)
    return StreamingResponse(
        iterate_in_threadpool(chunks), media_type=encoder.media_type, headers=headers
    )
