"""The audit log: one JSON line per request on logger ``livedata.audit``.

Each line says which request (its id, the caller's own ``X-Request-Id`` when well-formed;
the caller's W3C ``traceparent`` when valid, else null), who asked (the caller id, never a
credential), for what (table or query and a digest of the converted parameters, never their
values), how it was answered (cache status, rows, source milliseconds, what it cost against
budgets), the status code and the duration. No other header is logged, so never an
Authorization header. The hot path and the error handlers fill in the same fields as the
route, so every request is counted.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livedata.results import Result, StoredResult
from livedata.status import Status

log = logging.getLogger("livedata.audit")
_HANDLER_MARK = "_livedata_audit"  # tags the handler this module installed


def configure(destination: str) -> bool:
    """Send audit lines to ``destination`` ("stderr", a file, or "off"); True unless off.
    Replaces the handler installed before, so several apps in one process log once."""
    for handler in [h for h in log.handlers if getattr(h, _HANDLER_MARK, False)]:
        log.removeHandler(handler)
        handler.close()
    if destination == "off":
        return False
    handler = (
        logging.StreamHandler(sys.stderr)
        if destination == "stderr"
        else logging.FileHandler(Path(destination), encoding="utf-8")
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    setattr(handler, _HANDLER_MARK, True)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # the line is the record; the root logger's format would wrap it
    return True


def params_digest(params: Mapping[str, Any]) -> str:
    """Equal for equal converted parameters, without writing them down."""
    canonical = orjson.dumps(params, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(canonical, digest_size=8).hexdigest()


def record(scope: Scope) -> dict[str, Any]:
    """This request's audit fields, for the layers inside to fill (a throwaway when off)."""
    audit: dict[str, Any] = scope.get("state", {}).get("audit", {})
    return audit


def describe(result: Result, status: Status | None = None) -> dict[str, Any]:
    """The audit fields of an answered query (``status``: as it was answered, if not as it
    was obtained). Only a fetch costs: hits cost nothing."""
    status = result.status if status is None else status
    header = result.header if isinstance(result, StoredResult) else result.header()
    target = result.plan.target
    source_ms = header.source_ms if status.asked_source else 0.0
    return {
        target.kind: target.name,
        "source": target.source,
        "params_digest": params_digest(header.params),
        "cache": str(status),
        "rows": header.rows,
        "truncated": header.truncated,
        "source_ms": source_ms,
        "cost": {
            "queries": int(status.asked_source),
            "source_seconds": round(source_ms / 1000, 6),
        },
    }


class AuditLog:
    """Outside the hot path, so that its answers are logged too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        audit: dict[str, Any] = {}
        state["audit"] = audit
        status = 500  # unless a response starts

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            described = audit.pop("described", None)
            if described is not None:
                audit.update(described())
            line = {
                "request_id": state.get("request_id"),
                "traceparent": state.get("traceparent"),
                "method": scope["method"],
                "path": scope["path"],
                # No caller: authentication refused the request (or it never got that far).
                "caller": getattr(state.get("caller"), "id", None),
                **audit,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            }
            log.info(orjson.dumps(line).decode())
