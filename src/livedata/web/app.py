"""``create_app``: the whole service wired together; nothing happens before it is called."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livedata import __version__
from livedata.catalog import Catalog, load_catalog
from livedata.encoders.json import describe_columns
from livedata.service import QueryService
from livedata.settings import Settings
from livedata.web.errors import HANDLERS
from livedata.web.openapi import build_openapi
from livedata.web.routes import router


def create_app(
    settings: Settings | None = None,
    catalog: Catalog | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """Build the ASGI app. Loads the catalog now, so a broken one fails before serving."""
    settings = settings or Settings()
    catalog = catalog or load_catalog(settings.catalog)
    catalog.check_secrets()
    service = QueryService.create(catalog, settings, clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        service.close()

    app = FastAPI(
        title="livedata",
        version=__version__,
        description="Named, typed queries over your databases, answered as JSON or Arrow. "
        "Clients never send SQL.",
        lifespan=lifespan,
        default_response_class=Response,
    )
    app.state.settings = settings
    app.state.service = service
    app.state.describe = lambda: _describe(catalog, service)
    app.include_router(router)
    for exc_class, handler in HANDLERS.items():
        app.add_exception_handler(exc_class, handler)
    app.add_middleware(RequestIdMiddleware)
    app.openapi = lambda: build_openapi(app, catalog)  # type: ignore[method-assign]
    return app


class RequestIdMiddleware:
    """Tag every request so a client can quote it and the log can be searched for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        await self.app(scope, receive, send_with_id)


async def _describe(catalog: Catalog, service: QueryService) -> dict[str, Any]:
    async def columns(kind: str, name: str) -> list[dict[str, str]] | None:
        schema = await service.planner.columns(kind, name)
        return None if schema is None else describe_columns(schema)

    tables = {
        name: {
            "source": t.source,
            "description": t.description,
            "columns": await columns("table", name),
        }
        for name, t in catalog.tables.items()
    }
    queries = {
        name: {
            "source": q.source,
            "description": q.description,
            "params": {p: spec.describe() for p, spec in q.params.items()},
            "columns": await columns("query", name),
        }
        for name, q in catalog.queries.items()
    }
    return {"tables": tables, "queries": queries}
