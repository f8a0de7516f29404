"""Who is calling: every request gets a ``Caller`` on ``request.state.caller``, or a 401.

Deny by default: with an access file configured, every path needs credentials except the
few a load balancer or a developer's browser must reach without them (``PUBLIC``); those
still take credentials when sent, and show more with them. Without an access file every
caller is ``ANONYMOUS`` (full access), which is why the server then serves loopback only.

All authentication failures get one body and one challenge; the reason goes to the log.
Two or more ``Authorization`` fields are a malformed request (400), not a failure to
authenticate: a proxy in front may have judged the request by the other one.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from livedata.auth.caller import ANONYMOUS, NOBODY, Caller
from livedata.auth.credentials import Authenticator
from livedata.errors import Forbidden, MalformedHeader, Unauthenticated
from livedata.web.errors import CHALLENGE, error_response, status_for
from livedata.web.models import ErrorBody

log = logging.getLogger("livedata.auth")

PUBLIC = {"/health", "/ready", "/openapi.json", "/docs", "/"}
PUBLIC_PREFIX = "/static/"  # the pages' scripts and styles: a <script src> sends no credentials
# For the OpenAPI document: any endpoint answers 401 to bad credentials, admin ones 403.
UNAUTHENTICATED: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody}}
ADMIN_ONLY: dict[int | str, dict[str, Any]] = {**UNAUTHENTICATED, 403: {"model": ErrorBody}}
# Query-string names that carry credentials elsewhere: URLs end up in logs and histories.
_URL_CREDENTIALS = {"access_token", "token", "api_key", "apikey", "key", "jwt", "auth"}


class Authentication:
    """ASGI middleware, inside the request id (its 401s carry one) and outside the hot path
    and FastAPI."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator | None) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        try:
            state["caller"] = self._caller(scope)
        except Unauthenticated as exc:
            challenge = {"WWW-Authenticate": CHALLENGE}
            await _refuse(exc, exc.reason, challenge, scope, receive, send)
            return
        except MalformedHeader as exc:
            await _refuse(exc, exc.message, None, scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _caller(self, scope: Scope) -> Caller:
        if self.authenticator is None:
            return ANONYMOUS
        raw_query = scope.get("query_string", b"")
        query = parse_qsl(raw_query.decode("latin-1")) if raw_query else []
        if any(name.lower() in _URL_CREDENTIALS for name, _ in query):
            raise Unauthenticated("credentials in the URL query string")
        # From the raw pairs (ASGI names are lower case): building a Headers and parsing an
        # empty query string cost a hit from memory 4% (callgrind: 361k instructions, 346k).
        fields = [v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"]
        if len(fields) > 1:
            raise MalformedHeader(
                f"Send one Authorization header, not {len(fields)}: credentials name one caller.",
                header="authorization",
                count=len(fields),
            )
        caller = self.authenticator.authenticate(fields[0] if fields else None)
        if caller is not None:
            return caller
        if scope["path"] in PUBLIC or scope["path"].startswith(PUBLIC_PREFIX):
            return NOBODY
        raise Unauthenticated("no Authorization header")


def caller_for(authenticator: Authenticator | None, authorization: bytes | None) -> Caller | None:
    """The caller a ``/query`` request's one Authorization field names, for the hot lane
    (``web/hot.py``); None where ``Authentication`` would refuse the request."""
    if authenticator is None:
        return ANONYMOUS
    try:
        return authenticator.authenticate(
            None if authorization is None else authorization.decode("latin-1")
        )
    except Unauthenticated:
        return None


async def _refuse(
    exc: Unauthenticated | MalformedHeader,
    reason: str,
    headers: dict[str, str] | None,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    """Answer in the JSON error shape; the log says why, never with the credential."""
    log.warning(
        "request %s to %r: authentication failed: %s",
        scope["state"].get("request_id"),
        scope["path"],
        reason,
    )
    response = error_response(
        Request(scope), status_for(exc), exc.code, exc.message, exc.details, headers=headers
    )
    await response(scope, receive, send)


def caller_of(request: Request) -> Caller:
    caller: Caller = request.state.caller
    return caller


async def require_admin(request: Request) -> None:
    """A dependency of the cache and metrics routers."""
    if not caller_of(request).admin:
        raise Forbidden("This endpoint needs credentials with the admin scope.")
