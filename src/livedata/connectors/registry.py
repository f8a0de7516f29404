"""Source kinds: each names the connector class that serves it, imported on first use.

A kind is one line in ``CONNECTORS`` (or one ``register`` call from outside the package):
its connector class as "module:Class" and the package its driver comes from. The class names
everything else (its config model, dialect, parameter style and error table).

Why lazy, by kind: a connector module imports its driver at the top, because its type map
and error table are written with the driver's own constants and exception classes, so the
drivers are most of the import cost. ``python -X importtime``, medians of 15 runs: ``import
livedata.catalog`` takes 0.37 s and imports no driver; the four connector modules would add
0.63 s. Reading a catalog imports only the modules of the kinds it uses (+0.36 s for DuckDB,
+0.45 s for PostgreSQL, which the server pays anyway when it connects), and a missing driver
is a CatalogError naming the package to install, raised while the catalog is read rather
than at the first query.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from livedata.errors import CatalogError

if TYPE_CHECKING:  # the base module imports pyarrow, which reading a catalog does not need
    from livedata.connectors.base import Connector
    from livedata.connectors.config import SourceBase

CONNECTORS: dict[str, tuple[str, str]] = {
    "duckdb": ("livedata.connectors.duckdb:DuckDBConnector", "duckdb"),
    "postgres": ("livedata.connectors.postgres:PostgresConnector", "adbc-driver-postgresql"),
    "mysql": ("livedata.connectors.mysql:MySQLConnector", "pymysql"),
    "sqlite": ("livedata.connectors.sqlite:SQLiteConnector", "sqlite3 (Python standard library)"),
}


def register(kind: str, target: str, package: str) -> None:
    """Serve source kind ``kind`` with the class ``target`` ("module:Class"), whose driver
    ``package`` provides; a kind registered before is replaced. Nothing is imported yet."""
    CONNECTORS[kind] = (target, package)


def kinds() -> list[str]:
    """Every source kind a catalog may use."""
    return list(CONNECTORS)


def connector_class(kind: str) -> type[Connector[Any]]:
    """The class serving ``kind``, its module imported now. CatalogError when no class serves
    ``kind`` or its driver is not installed."""
    if kind not in CONNECTORS:
        raise CatalogError(f"unknown source kind {kind!r}; use one of {', '.join(CONNECTORS)}")
    target, package = CONNECTORS[kind]
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CatalogError(
            f"source kind {kind!r} needs the {package} package: pip install {package}"
        ) from exc
    cls: type[Connector[Any]] = getattr(module, class_name)
    if cls.kind != kind:  # a registration mistake, not the catalog's
        raise TypeError(f"{target} serves source kind {cls.kind!r}, not {kind!r}")
    return cls


def create_connector(name: str, config: SourceBase) -> Connector[Any]:
    """The connector for source ``name``, configured by ``config``."""
    try:
        cls = connector_class(config.kind)
    except CatalogError as exc:
        raise CatalogError(f"Source {name!r}: {exc.message}") from exc
    return cls(name, config)
