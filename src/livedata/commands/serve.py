"""``livedata serve``: check everything the server needs, then hand over to uvicorn."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from livedata.commands.startup import AuthFileOption, CatalogOption, access, load


def serve(
    catalog: CatalogOption = None,
    host: Annotated[
        str | None, typer.Option(metavar="ADDRESS", help="Address (default 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, metavar="PORT", help="Port (default 5000).")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, metavar="N", help="Worker processes.")] = 1,
    auth_file: AuthFileOption = None,
    allow_public_without_auth: Annotated[
        bool,
        typer.Option(
            "--allow-public-without-auth",
            help="Serve a non-loopback address with no access file (only behind a proxy "
            "that authenticates).",
        ),
    ] = False,
) -> None:
    """Serve the HTTP API.

    POST /query, GET /queries, /health, /ready, /docs and the cache endpoints; the
    settings, the catalog and the access file are checked before the first worker starts."""
    from livedata.auth.exposure import check_exposure

    # The workers read their settings from the environment, as this process does.
    overrides = {
        "LIVEDATA_CATALOG": catalog,
        "LIVEDATA_HOST": host,
        "LIVEDATA_PORT": port,
        "LIVEDATA_AUTH_FILE": auth_file,
        "LIVEDATA_ALLOW_PUBLIC_WITHOUT_AUTH": allow_public_without_auth or None,
    }
    os.environ.update({k: str(v) for k, v in overrides.items() if v is not None})
    settings, loaded = load()
    authenticator = access(settings.auth_file, loaded)  # before any worker starts
    check_exposure(settings.host, authenticator is not None, settings.allow_public_without_auth)

    import uvicorn

    uvicorn.run(
        "livedata.web.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level=settings.log_level,
        access_log=settings.access_log,
        server_header=False,
        # A worker that answers its supervisor's ping late under load is not dead: uvicorn's
        # 5 s default restarted busy workers in a loop on a loaded 2-core machine.
        timeout_worker_healthcheck=30,
    )
