"""``livedata serve``: check everything the server needs, then hand over to uvicorn."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
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

    with _metrics_folder(workers):
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


@contextmanager
def _metrics_folder(workers: int) -> Iterator[None]:
    """With several workers, a folder where each writes its metrics so that a scrape of any
    of them sums them all (prometheus_client's multiprocess mode; read by every worker from
    ``PROMETHEUS_MULTIPROC_DIR``). One given is emptied first, as prometheus_client requires;
    one made here is removed at the end."""
    if workers == 1:
        yield
        return
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    folder = Path(given) if given else Path(tempfile.mkdtemp(prefix="livedata-metrics-"))
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):  # the last run's numbers would be added to this one's
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    try:
        yield
    finally:
        if not given:
            shutil.rmtree(folder, ignore_errors=True)
