"""Source kind -> connector class, imported on first use so a missing driver says how to fix it."""

from __future__ import annotations

import importlib
from typing import Any

from livedata.connectors.base import Connector
from livedata.errors import CatalogError

CONNECTORS = {
    "duckdb": ("livedata.connectors.duckdb:DuckDBConnector", "duckdb"),
    "postgres": ("livedata.connectors.postgres:PostgresConnector", "adbc-driver-postgresql"),
    "mysql": ("livedata.connectors.mysql:MySQLConnector", "pymysql"),
    "sqlite": ("livedata.connectors.sqlite:SQLiteConnector", "sqlite3 (Python standard library)"),
}


def create_connector(name: str, config: Any) -> Connector[Any]:
    target, package = CONNECTORS[config.kind]
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CatalogError(
            f"Source {name!r} needs the {package} package: pip install {package}"
        ) from exc
    connector: Connector[Any] = getattr(module, class_name)(name, config)
    return connector
