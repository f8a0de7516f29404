"""``create_app``: the whole service wired together; nothing happens before it is called."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, NoReturn

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from livedata import __version__, filters
from livedata.auth.caller import Caller
from livedata.auth.credentials import Authenticator
from livedata.auth.exposure import check_exposure
from livedata.bounds import RequestBounds
from livedata.catalog import Catalog, load_catalog
from livedata.errors import RateLimited
from livedata.plan import QueryRequest
from livedata.quota.rate import RateLimiter
from livedata.service import Memo, QueryService
from livedata.settings import Settings
from livedata.web import admin, audit, metrics, openapi, pages
from livedata.web.auth import (
    ADMIN_ONLY,
    UNAUTHENTICATED,
    Authentication,
    caller_for,
    require_admin,
)
from livedata.web.browser import SecurityHeaders, secured, through_cors, with_cors
from livedata.web.errors import HANDLERS
from livedata.web.hot import Counter, Headers, HotBodies, HotLane
from livedata.web.observed import Observed, Witness
from livedata.web.routes import router

log = logging.getLogger("livedata.cache")


class Livedata(FastAPI):
    """FastAPI with a hot lane in front: a repeated request for a fresh cached result is
    answered before any middleware (``web/hot.py``); everything else goes through them."""

    lane: HotLane | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.lane
        if lane is not None and scope["type"] == "http" and scope["path"] == "/query":
            await lane(scope, receive, send, super().__call__)
        else:
            await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    catalog: Catalog | None = None,
    clock: Callable[[], float] = time.time,
) -> Livedata:
    """Build the ASGI app. Loads the catalog now, so a broken one fails before serving."""
    settings = settings or Settings()
    catalog = catalog or load_catalog(settings.catalog)
    catalog.check_secrets()
    authenticator = Authenticator.from_file(settings.auth_file, catalog, clock)
    check_exposure(settings.host, authenticator is not None, settings.allow_public_without_auth)
    if authenticator is None:
        logging.getLogger("livedata.auth").warning(
            "No credentials configured (LIVEDATA_AUTH_FILE): every caller may run everything "
            "and manage the cache, so serve a loopback address only (%s).",
            settings.host,
        )
    service = QueryService.create(catalog, settings, clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tier = service.tier
        await service.cluster.start()
        try:
            async with anyio.create_task_group() as background:
                background.start_soon(service.sources.warn_of_privileges)
                if tier is not None:
                    background.start_soon(
                        maintain_forever,
                        lambda: tier.upkeep(service.clock()),
                        settings.cache_maintenance_interval,
                    )
                yield
                background.cancel_scope.cancel()  # waits for a round in progress to end
        finally:
            if writer is not None:  # lines of requests answered so far, written before exit
                await anyio.to_thread.run_sync(writer.drain)
            await service.fills.drain()
            await service.cluster.close()
            await service.quota.close()
            service.close()

    app = Livedata(
        title="livedata",
        version=__version__,
        description="Named, typed queries over your databases, answered as JSON or Arrow. "
        "Clients never send SQL.",
        lifespan=lifespan,
        default_response_class=Response,
        openapi_url=None,  # served by livedata.web.openapi: per caller, and public
        docs_url=None,
        redoc_url=None,
        # Off: our traces are the audit log's traceparent, our metrics Prometheus's. On, FastAPI
        # looks for global OpenTelemetry providers on every request: a hit from memory took 12%
        # more instructions (bench/hit_instructions.py: 303k, now 269k).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.service = service
    app.state.catalog = catalog
    app.state.authenticator = authenticator
    app.state.describe = lambda caller: _describe(catalog, service, caller)
    app.state.bounds = RequestBounds(settings.max_request_depth, settings.max_request_items)
    limiter = RateLimiter(service.quota, settings.rate_limit, settings.rate_limit_burst, clock)
    app.state.rate_limiter = limiter
    app.include_router(router, responses=UNAUTHENTICATED)
    app.include_router(openapi.router)
    app.include_router(pages.router)
    app.mount(pages.STATIC_PATH, pages.static_files())
    for admin_router in (admin.router, metrics.router):
        app.include_router(
            admin_router, dependencies=[Depends(require_admin)], responses=ADMIN_ONLY
        )
    endpoints = (router, openapi.router, admin.router, metrics.router)
    paths = frozenset(getattr(route, "path", "") for r in endpoints for route in r.routes)
    app.state.metrics = metrics.Metrics(service, paths)
    for exc_class, handler in HANDLERS.items():
        app.add_exception_handler(exc_class, handler)
    vary_origin = bool(settings.cors_origins)
    hits = app.state.metrics

    def hit_counter(memo: Memo, headers: Headers) -> Counter:
        served, answered = service.hit_counter(memo), hits.hit_counter(headers)

        def count(method: str, size: int, seconds: float) -> None:
            served()
            answered(method, size, seconds)

        return count

    app.state.hot = HotBodies(
        settings.cache_memory_bytes,
        seal=lambda headers: tuple(secured(headers, vary_origin)),
        counter=hit_counter,
    )
    # An invalidation anywhere in the cluster (or a lost subscription) may make any
    # remembered body stale: forget them all; the slow path checks each entry again.
    service.cluster.listeners.append(app.state.hot.clear)

    async def admit(caller_id: str) -> bool:
        try:
            await limiter.admit(caller_id)
        except RateLimited:
            return False
        return True

    # Added innermost first: the request id and audit line outermost, so that every answer,
    # authentication's refusals included, carries and logs one.
    app.add_middleware(Authentication, authenticator=authenticator)
    app.add_middleware(with_cors, settings=settings)
    app.add_middleware(SecurityHeaders, vary_origin=vary_origin)
    writer = app.state.audit = audit.configure(settings.audit_log)
    if writer is not None:
        writer.on_full = app.state.metrics.audit_queue_full.inc
        writer.on_lost = app.state.metrics.audit_lines_lost.inc
    witness = Witness(app.state.metrics, writer)
    app.add_middleware(Observed, witness=witness)
    app.lane = HotLane(
        hot=app.state.hot,
        clock=service.clock,
        max_body_bytes=settings.max_body_bytes,
        authenticate=functools.partial(caller_for, authenticator),
        admit=admit,
        witness=witness,
        cross_origin=through_cors(settings),
    )
    app.openapi = lambda: openapi.build_openapi(app, catalog)  # type: ignore[method-assign]
    return app


async def maintain_forever(round_: Callable[[], None], interval: float) -> NoReturn:
    """Run ``round_`` in a worker thread (it does file and SQLite I/O) every ``interval``
    seconds. A failing round is logged and the next one runs anyway: a disk that is full now
    may have room later, and serving never depends on upkeep."""
    while True:
        await anyio.sleep(interval)
        try:
            await anyio.to_thread.run_sync(round_)
        except Exception:
            log.exception("cache maintenance failed; trying again in %s s", interval)


async def _describe(catalog: Catalog, service: QueryService, caller: Caller) -> dict[str, Any]:
    async def columns(kind: str, name: str) -> list[dict[str, Any]] | None:
        """``nullable`` as the source declares it, omitted where it cannot tell rather than
        guessed (a named query's columns: drivers report every result column nullable)."""
        request = QueryRequest(table=name) if kind == "table" else QueryRequest(query=name)
        target = service.planner.resolve(request)
        schema = await service.schemas.visible(target, caller.id)
        if schema is None:
            return None
        nullable = await service.schemas.nullable(target, caller.id)
        config = catalog.tables[name] if kind == "table" else catalog.queries[name]
        described = filters.describe(schema)
        for column in described:
            if column["name"] in nullable:
                column["nullable"] = nullable[column["name"]]
            if column["name"] in config.column_descriptions:
                column["description"] = config.column_descriptions[column["name"]]
        return described

    tables = {
        name: {
            "source": t.source,
            "description": t.description,
            "columns": await columns("table", name),
        }
        for name, t in catalog.tables.items()
        if caller.allows("table", name)
    }
    queries = {
        name: {
            "source": q.source,
            "description": q.description,
            "params": {p: spec.describe() for p, spec in q.params.items()},
            "columns": await columns("query", name),
        }
        for name, q in catalog.queries.items()
        if caller.allows("query", name)
    }
    return {"tables": tables, "queries": queries}
