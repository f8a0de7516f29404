"""What every request gets first and last: an id, its metrics and a line in the audit log.

One layer asks each owner in turn (``tracing`` for the id, ``metrics`` for the counts,
``audit`` for the line) rather than three layers each wrapping ``send``: a hit from memory
took 5% more instructions through three (bench/hit_instructions.py: 250k, now 237k).
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livedata.web import audit, tracing
from livedata.web.metrics import Metrics


class Observed:
    """Outermost of our layers, so that the hot path's answers and authentication's refusals
    are tagged, counted and logged like any other response."""

    def __init__(self, app: ASGIApp, metrics: Metrics, writer: audit.AuditWriter | None) -> None:
        self.app = app
        self.metrics = metrics
        self.writer = writer  # None: the audit log is off

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        state["audit"] = {}  # the layers inside fill it; errors note their code there
        request_id = tracing.tag(scope)
        status: int = 500  # unless a response starts
        headers: list[tuple[bytes, bytes]] = []
        sent, counted = 0, False

        def count() -> None:
            nonlocal counted
            counted = True
            self.metrics.answered(scope, status, headers, sent, time.perf_counter() - started)

        async def send_observed(message: Message) -> None:
            nonlocal status, headers, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message["headers"] = [*message.get("headers", ()), request_id]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
                if not message.get("more_body", False):
                    count()  # before the client can have it all: a scrape after sees it
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            if not counted:  # no response, or the client left before its end
                count()
            if self.writer is not None:
                seconds = time.perf_counter() - started
                await self.writer.write(audit.line(scope, status, seconds))
