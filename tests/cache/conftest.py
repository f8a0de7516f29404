"""Fixtures for the cache suites: PostgreSQL as a witness, and the real `livedata serve`.

PostgreSQL counts what it ran, so "one execution" is read in the database itself:
``pg_stat_statements`` for statements that succeed, and for statements that fail (which
``pg_stat_statements`` never records) a row that the statement inserts through ``dblink``, in
a transaction of its own, before it fails.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from livedata.catalog import Catalog, QueryConfig
from livedata.connectors.postgres import PostgresSource
from tests.cache.traffic import Body, ask, same_data
from tests.cli_server import START_TIMEOUT
from tests.conftest import require_service
from tests.samples import PG_DSN, Sample

_DSN = PG_DSN
# What a statement runs to be counted even when it then fails (see the module docstring).
RUNS_TABLE = "livedata_test_runs"


# Each test's statement is told apart in pg_stat_statements by the name of its CTE: statements
# are grouped by their parse tree, where a CTE's name counts but a column alias does not.
PLAIN_SQL = """
WITH {marker} AS (SELECT alpha_3, name FROM world_country_list WHERE region = :region)
SELECT * FROM {marker} ORDER BY alpha_3
"""
# Half a second of work in PostgreSQL, so that concurrent requests really overlap.
SLOW_SQL = """
WITH {marker} AS (
    SELECT alpha_3, name, population FROM world_country_list
    WHERE region = :region AND (SELECT count(*) FROM pg_sleep(0.5)) = 1
)
SELECT * FROM {marker} ORDER BY alpha_3
"""
# Waits for advisory lock ``gate`` (taken shared, released when the statement ends), so a test
# holding that lock decides when the statement may finish.
GATED_SQL = """
WITH {marker} AS (
    SELECT alpha_3, name FROM world_country_list
    WHERE region = :region AND population >= :at_least
), gate AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared({gate}))
SELECT {marker}.* FROM {marker}, gate ORDER BY alpha_3
"""
REGION = {"region": {"type": "str"}}
GATED = {**REGION, "at_least": {"type": "int", "default": 0}}


def query(sql: str, **fields: Any) -> QueryConfig:
    """A named query on source ``pg`` with the parameters ``sql`` uses."""
    params = GATED if ":at_least" in sql else REGION
    return QueryConfig.model_validate({"source": "pg", "sql": sql, "params": params, **fields})


def counted_run(tag: str) -> str:
    """SQL (a FROM item) that records one run of the statement under ``tag``."""
    insert = f"INSERT INTO {RUNS_TABLE} (tag) VALUES (''{tag}'')"
    return f"dblink_exec('{_DSN}', '{insert}')"


class Postgres:
    """The test's own connection to the sample database, to count and to hold locks."""

    def __init__(self, sample: Sample) -> None:
        self.sample = sample
        self.db = psycopg.connect(_DSN, autocommit=True)

    def executions(self, marker: str) -> int:
        """Completed executions of statements whose text contains ``marker``."""
        row = self.db.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
            " WHERE query LIKE '%%' || %s || '%%' AND dbid ="
            " (SELECT oid FROM pg_database WHERE datname = current_database())",
            (marker,),
        ).fetchone()
        assert row is not None
        return int(row[0])

    def executions_since(self, marker: str, before: int, at_least: int = 1) -> int:
        """Executions of ``marker`` since the count was ``before``, once there are ``at_least``.

        PostgreSQL records an execution when the statement's transaction ends, just after it
        sent the rows: a client may hold them a moment earlier. So this waits, within a bound,
        for the record of what it already knows happened, then reports how many there are.
        """
        deadline = time.monotonic() + START_TIMEOUT
        while (count := self.executions(marker) - before) < at_least:
            if time.monotonic() > deadline:
                break
        return count

    def runs(self, tag: str) -> int:
        """Runs recorded by ``counted_run(tag)``, failed statements included."""
        row = self.db.execute(
            f"SELECT count(*) FROM {RUNS_TABLE} WHERE tag = %s", (tag,)
        ).fetchone()
        assert row is not None
        return int(row[0])

    def hold(self, gate: int) -> None:
        """Take advisory lock ``gate``: statements that take it (shared) wait for ``release``."""
        self.db.execute("SELECT pg_advisory_lock(%s)", (gate,))

    def release(self) -> None:
        """Let every held gate open (idempotent)."""
        try:
            self.db.execute("SELECT pg_advisory_unlock_all()")
        except psycopg.OperationalError:  # the server ended the session, and its locks with it
            self.reconnect()

    @contextmanager
    def gate(self, gate: int) -> Iterator[None]:
        self.hold(gate)
        try:
            yield
        finally:
            self.release()

    def reconnect(self) -> None:
        """A new connection, after PostgreSQL was restarted under the old one."""
        self.db.close()
        self.db = psycopg.connect(_DSN, autocommit=True)

    def waiting_at_gate(self, marker: str) -> int:
        """Statements containing ``marker`` that wait for an advisory lock right now."""
        row = self.db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'"
            " AND query LIKE '%%' || %s || '%%' AND pid <> pg_backend_pid()",
            (marker,),
        ).fetchone()
        assert row is not None
        return int(row[0])

    def catalog(self, **queries: QueryConfig) -> Catalog:
        """A catalog with the sample database as source ``pg`` and these queries."""
        return Catalog(sources={"pg": self.sample.config}, queries=queries)

    def catalog_toml(
        self, source: dict[str, object] | None = None, **queries: dict[str, object]
    ) -> str:
        """The same as a catalog file, for `livedata serve` (values are TOML literals);
        ``source`` adds fields to the source."""
        config: PostgresSource = self.sample.config
        lines = [
            "[sources.pg]",
            'kind = "postgres"',
            f'host = "{config.host}"',
            f"port = {config.port}",
            f'database = "{config.database}"',
            f'user = "{config.user}"',
            *(f"{key} = {_toml(value)}" for key, value in (source or {}).items()),
        ]
        for name, fields in queries.items():
            lines += ["", f"[queries.{name}]", 'source = "pg"']
            lines += [f"{key} = {_toml(value)}" for key, value in fields.items()]
        return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    if isinstance(value, str):
        return '"""\n' + value + '\n"""' if "\n" in value else orjson.dumps(value).decode()
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return repr(value)


@pytest.fixture(scope="session")
def postgres(sample_of: Callable[[str], Sample]) -> Iterator[Postgres]:
    """PostgreSQL with the sample tables, pg_stat_statements and dblink (see .ci/run)."""
    sample = sample_of("postgres")
    pg = Postgres(sample)

    def ready() -> None:
        pg.db.execute("SELECT 1 FROM pg_stat_statements LIMIT 1")
        if pg.db.execute("SELECT 1 FROM pg_extension WHERE extname = 'dblink'").fetchone() is None:
            raise LookupError("extension dblink is not installed")

    try:
        require_service(
            "pg_stat_statements and dblink in database test (`.ci/run` enables both)", ready
        )
        pg.db.execute(f"CREATE TABLE IF NOT EXISTS {RUNS_TABLE} (tag text NOT NULL)")
        yield pg
    finally:  # also when skipped; after a restart, the connection of the moment
        pg.db.close()


def directory_bytes(root: Path) -> int:
    """Bytes of every file under ``root``, as the size bound counts them."""
    total = 0
    for path in root.rglob("*"):
        with contextlib.suppress(FileNotFoundError):  # removed meanwhile
            total += path.stat().st_size if path.is_file() else 0
    return total


def leftovers(cache_dir: Path) -> list[str]:
    return sorted(p.name for p in (cache_dir / "tmp").iterdir())


def held_locks(cache_dir: Path) -> tuple[int, int]:
    """(held, waited for) flock locks on the cache's lock files, from ``/proc/locks``."""
    inodes = {str(p.stat().st_ino) for p in (cache_dir / "locks").iterdir()}
    held = waiting = 0
    for line in Path("/proc/locks").read_text().splitlines():
        fields = re.split(r"\s+", line.replace("->", " -> ").strip())
        if "FLOCK" not in fields:
            continue
        where = fields[fields.index("FLOCK") + 4]  # major:minor:inode
        if where.rsplit(":", 1)[-1] in inodes:
            if "->" in fields:
                waiting += 1
            else:
                held += 1
    return held, waiting


@pytest.fixture(scope="session")
def reference(serve: Callable[..., str]) -> Callable[[Body], Any]:
    """The bundled catalog's answer from a server with no cache at all, one request each."""
    url = serve(cache_ttl=0)
    seen: dict[bytes, Any] = {}

    def of(body: Body) -> Any:
        key = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        if key not in seen:
            response = ask(url, body)
            assert response.status_code == 200, response.text
            assert response.headers["cache-status"] == "livedata; fwd=bypass"
            seen[key] = same_data(response)
        return seen[key]

    return of
