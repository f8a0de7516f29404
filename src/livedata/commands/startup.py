"""What commands read first: the settings, the catalog, the access file, and the options that
choose them. Each raises the error naming the variable or file, the field and the fix;
``livedata.cli.main`` prints it and exits 2."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from livedata.auth.credentials import Authenticator
    from livedata.catalog import Catalog
    from livedata.settings import Settings

CatalogOption = Annotated[
    Path | None,
    typer.Option(
        "--catalog",
        "-c",
        metavar="FILE",
        help="Catalog file (default: LIVEDATA_CATALOG, else the bundled sample).",
        envvar="LIVEDATA_CATALOG",
        show_envvar=False,
        dir_okay=False,
    ),
]
AuthFileOption = Annotated[
    Path | None,
    typer.Option(
        "--auth-file",
        metavar="FILE",
        help="Access file: API keys and token keys (default: LIVEDATA_AUTH_FILE; "
        "none: no authentication).",
        envvar="LIVEDATA_AUTH_FILE",
        show_envvar=False,
        dir_okay=False,
    ),
]


def read_settings(catalog: Path | None = None) -> Settings:
    """The settings from the environment; ``catalog``, the file a command line option chose,
    decides which catalog override names exist."""
    from livedata.cache.formats.base import FormatUnavailable
    from livedata.cache.formats.registry import cache_format
    from livedata.environ import read_settings
    from livedata.errors import SettingsError

    settings = read_settings(catalog=catalog)
    for name, value in (
        ("LIVEDATA_CACHE_FORMAT", settings.cache_format),
        ("LIVEDATA_CACHE_SHARED_FORMAT", settings.cache_shared_format),
    ):
        try:
            cache_format(value)
        except (ValueError, FormatUnavailable) as exc:
            raise SettingsError(f"{name}: {exc}") from exc
    return settings


def load(catalog: Path | None = None) -> tuple[Settings, Catalog]:
    """The settings and the catalog they name (or ``catalog``), its secrets resolved."""
    from livedata.catalog import load_catalog

    settings = read_settings(catalog)
    loaded = load_catalog(catalog or settings.catalog)
    loaded.check_secrets()
    return settings, loaded


def access(path: Path | None, catalog: Catalog) -> Authenticator | None:
    """The access file, when one is set (None: no authentication)."""
    from livedata.auth.credentials import Authenticator

    return Authenticator.from_file(path, catalog)
