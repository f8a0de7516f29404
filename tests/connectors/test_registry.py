"""Source kinds are plug-ins: a kind is its connector's module plus one registry line.

A connector class names its kind, its config model, its dialect, its parameter style and its
error table; the catalog, the planner and the service find all of them through the registry,
and a kind's driver is imported only when a catalog uses that kind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import httpx
import pytest
from sqlglot.dialects.dialect import Dialect

from livedata.catalog import load_catalog
from livedata.connectors import registry
from livedata.connectors.base import ErrorTable
from livedata.connectors.config import SourceBase
from livedata.connectors.sqlite import SQLiteConnector, SQLiteSource
from livedata.errors import CatalogError
from livedata.sql import ParamStyle
from tests.samples import Sample

BUILT_IN = registry.kinds()  # read before any test registers a kind of its own
DRIVERS = ("duckdb", "pymysql", "adbc_driver_postgresql", "adbc_driver_manager")


@pytest.mark.parametrize("kind", BUILT_IN)
def test_a_connector_class_names_everything_its_kind_needs(kind: str) -> None:
    cls = registry.connector_class(kind)
    assert cls.kind == kind
    assert issubclass(cls.config_model, SourceBase)
    assert typing.get_args(cls.config_model.model_fields["kind"].annotation) == (kind,)
    assert Dialect.get_or_raise(cls.dialect) is not None
    assert cls.paramstyle in typing.get_args(ParamStyle)
    assert isinstance(cls.errors, ErrorTable)


def _imported(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    report = "import json, sys; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def _connectors_and_drivers(modules: set[str]) -> set[str]:
    return {
        name
        for name in modules
        if name.split(".")[0] in DRIVERS
        or (name.startswith("livedata.connectors.") and name.split(".")[2] in BUILT_IN)
    }


def test_importing_the_catalog_imports_no_connector_and_no_driver() -> None:
    modules = _imported("import livedata.catalog")
    assert _connectors_and_drivers(modules) == set()
    assert "pyarrow" not in modules


def test_a_catalog_imports_only_the_connectors_of_its_kinds(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text('[sources.file]\nkind = "sqlite"\npath = "shop.sqlite"\n')
    modules = _imported(
        "from pathlib import Path\nfrom livedata.catalog import load_catalog\n"
        f"load_catalog(Path({str(path)!r}), environ={{}})"
    )
    assert _connectors_and_drivers(modules) == {"livedata.connectors.sqlite"}


class CopySource(SQLiteSource):
    """A new kind's config model: SQLite's, under the new kind's name."""

    kind: Literal["sqlite_copy"]  # each kind narrows `kind` to its own name


class CopyConnector(SQLiteConnector):
    """A new kind: SQLite's connector, serving sources of kind "sqlite_copy"."""

    kind = "sqlite_copy"
    config_model = CopySource


@pytest.fixture
def copy_kind(monkeypatch: pytest.MonkeyPatch) -> str:
    """The kind "sqlite_copy", registered for this test only."""
    monkeypatch.setattr(registry, "CONNECTORS", dict(registry.CONNECTORS))
    registry.register("sqlite_copy", f"{__name__}:CopyConnector", "sqlite3 (standard library)")
    return "sqlite_copy"


def test_a_new_kind_is_its_module_and_one_registry_line(
    copy_kind: str,
    tmp_path: Path,
    sample_of: Callable[[str], Sample],
    serve: Callable[..., str],
) -> None:
    """Registered from here, without a change to the catalog, the planner or the service."""
    database = os.path.relpath(sample_of("sqlite").config.path, tmp_path)
    path = tmp_path / "catalog.toml"
    path.write_text(
        f'[sources.copy]\nkind = "{copy_kind}"\npath = "{database}"\nmax_rows = 3\n\n'
        '[tables.countries]\nsource = "copy"\ntable = "world_country_list"\n\n'
        '[queries.country]\nsource = "copy"\n'
        'sql = "SELECT name FROM world_country_list WHERE alpha_3 = :code"\n'
        '[queries.country.params.code]\ntype = "str"\n'
    )
    catalog = load_catalog(path, environ={})
    source = catalog.sources["copy"]
    assert isinstance(source, CopySource)
    assert source.path.resolve() == sample_of("sqlite").config.path.resolve()  # was relative
    assert catalog.dialect("copy") == "sqlite"

    url = serve(catalog, cache_ttl=0)
    named = httpx.post(f"{url}/query", json={"query": "country", "params": {"code": "FRA"}})
    assert named.status_code == 200, named.text
    assert named.json()["rows"] == [["France"]]
    table = httpx.post(f"{url}/query", json={"table": "countries", "columns": ["alpha_3"]})
    assert table.status_code == 200, table.text
    assert len(table.json()["rows"]) == 3  # the kind's own max_rows applies

    with pytest.raises(CatalogError, match="one of duckdb, postgres, mysql, sqlite, sqlite_copy"):
        registry.connector_class("sqlite_cpy")


def test_a_class_registered_under_another_kind_is_refused(copy_kind: str) -> None:
    registry.register("sqlite", f"{__name__}:CopyConnector", "sqlite3 (standard library)")
    with pytest.raises(TypeError, match="serves source kind 'sqlite_copy', not 'sqlite'"):
        registry.connector_class("sqlite")
