"""What every request gets first and last: an id, its metrics and a line in the audit log.

One layer asks each owner in turn (``tracing`` for the id, ``metrics`` for the counts,
``audit`` for the line) rather than three layers each wrapping ``send``: a hit from memory
took 5% more instructions through three (bench/hit_instructions.py: 250k, now 237k). The hot
lane (``web/hot.py``), which answers before this layer, logs through the same ``Witness`` and
counts through instruments found once per remembered body.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livedata.web import audit, tracing
from livedata.web.metrics import Metrics


class Witness:
    """Counts and logs each request once it is answered, whichever way it was."""

    def __init__(self, metrics: Metrics, writer: audit.AuditWriter | None) -> None:
        self.metrics = metrics
        self.writer = writer  # None: the audit log is off

    def count(
        self,
        scope: Scope,
        status: int,
        headers: list[tuple[bytes, bytes]],
        sent: int,
        started: float,
    ) -> None:
        """Before the last byte leaves: a scrape after the client has it all sees it."""
        self.metrics.answered(scope, status, headers, sent, time.perf_counter() - started)

    async def log(
        self, scope: Scope, status: int, started: float, template: audit.Template | None = None
    ) -> None:
        """``template``: the line's, when known ahead (else it is made from the state)."""
        if self.writer is None:
            return
        seconds = time.perf_counter() - started
        if template is None:
            line = audit.line(scope, status, seconds)
        else:
            state = scope["state"]
            line = template.line(state["request_id"], state["traceparent"], status, seconds)
        await self.writer.write(line)


class Observed:
    """Outermost of our layers, so that authentication's refusals and every answer of the
    full stack are tagged, counted and logged."""

    def __init__(self, app: ASGIApp, witness: Witness) -> None:
        self.app = app
        self.witness = witness

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        state["audit"] = {}  # the layers inside fill it; errors note their code there
        request_id = tracing.tag(scope, dict(scope["headers"]))
        status: int = 500  # unless a response starts
        headers: list[tuple[bytes, bytes]] = []
        sent, counted = 0, False

        def count() -> None:
            nonlocal counted
            counted = True
            self.witness.count(scope, status, headers, sent, started)

        async def send_observed(message: Message) -> None:
            nonlocal status, headers, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message["headers"] = [*message.get("headers", ()), request_id]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
                if not message.get("more_body", False):
                    count()
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            if not counted:  # no response, or the client left before its end
                count()
            await self.witness.log(scope, status, started)
