"""A peer for benchmarks, not product code: the endpoint a user writes instead of livedata.

FastAPI, a psycopg async connection pool, ``SELECT *`` and ``orjson.dumps`` of the rows, in
livedata's JSON shape (``columns``, ``rows``). It answers ``POST /query`` with a body such as
``{"table": "world_country_list"}`` for the tables in ``TABLES`` and nothing else, as a
hand-written endpoint would. ``bench/small_miss.py`` runs it under the same uvicorn settings
as ``livedata serve``:

    PEER_POSTGRES_URI=postgresql://postgres@127.0.0.1/test \\
        uvicorn --app-dir bench peer_fastapi:create_app --factory
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI, HTTPException, Request, Response
from psycopg_pool import AsyncConnectionPool

URI_ENV = "PEER_POSTGRES_URI"
POOL_SIZE = 4  # livedata's default max_concurrent_queries: both hold as many connections
TABLES = {"world_country_list": "SELECT * FROM world_country_list"}


def create_app() -> FastAPI:
    pool = AsyncConnectionPool(os.environ[URI_ENV], min_size=POOL_SIZE, max_size=POOL_SIZE,
                               open=False)  # fmt: skip

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.open(wait=True)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/query")
    async def query(request: Request) -> Response:
        sql = TABLES.get(orjson.loads(await request.body()).get("table"))
        if sql is None:
            raise HTTPException(404, f"tables: {', '.join(TABLES)}")
        async with pool.connection() as conn:
            cursor = await conn.execute(sql)
            rows = await cursor.fetchall()
            columns = [column.name for column in cursor.description or ()]
        return Response(orjson.dumps({"columns": columns, "rows": rows}),
                        media_type="application/json")  # fmt: skip

    return app
