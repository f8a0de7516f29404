"""The connector contract: every kind of source answers the same questions the same way.

Expected values come from the bundled Parquet files, never from the source under test.
"""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pymysql
import pytest

from livedata import sql
from livedata.connectors.base import Connector
from livedata.errors import QueryFailed, SourceUnavailable, StatementTimeout
from livedata.sample.load import DATA
from livedata.sql import Filter, Options, Statement
from tests.samples import PASSWORD_ENV, PG_DSN, TEST_DATABASE, Sample

COUNTRIES = pq.read_table(DATA / "world_country_list.parquet")
LINEITEM = pq.read_table(DATA / "tpch_lineitem.parquet").sort_by(
    [("l_orderkey", "ascending"), ("l_linenumber", "ascending")]
)
KEYS = {"world_country_list": ["alpha_3"], "tpch_lineitem": ["l_orderkey", "l_linenumber"]}
DATA_OF = {"world_country_list": COUNTRIES, "tpch_lineitem": LINEITEM}

# Where a source cannot hold the Parquet type; every other column must come back as written.
_DECIMALS = ("l_quantity", "l_extendedprice", "l_discount", "l_tax")
_DATES = ("l_shipdate", "l_commitdate", "l_receiptdate")
LINEITEM_TYPES: dict[str, dict[str, pa.DataType]] = {
    "mysql": {"l_linenumber": pa.int64()},  # every MySQL integer arrives as int64
    "sqlite": {
        "l_linenumber": pa.int64(),
        **dict.fromkeys(_DECIMALS, pa.float64()),  # stored as REAL
        **dict.fromkeys(_DATES, pa.string()),  # stored as ISO text
    },
}
# SQLite types values, not columns: with no row there is no type to report.
UNTYPED_WHEN_EMPTY = {"sqlite"}

_COMPARE = {"eq": pc.equal, "lt": pc.less, "gt": pc.greater, "ge": pc.greater_equal}
BINDINGS = [
    pytest.param("world_country_list", Filter("population", "ge", 100_000_000), id="int"),
    pytest.param("world_country_list", Filter("area_km2", "gt", 2_000_000.5), id="float"),
    pytest.param("world_country_list", Filter("alpha_3", "eq", "FRA"), id="str"),
    pytest.param("tpch_lineitem", Filter("l_shipdate", "eq", dt.date(1996, 3, 13)), id="date"),
    pytest.param(
        "tpch_lineitem", Filter("l_shipdate", "lt", dt.datetime(1992, 2, 1, 12)), id="datetime"
    ),
]
PAYLOADS = [
    pytest.param("FRA'; DROP TABLE world_country_list; --", id="quote"),
    pytest.param("FRA\\'; DROP TABLE world_country_list; --", id="backslash"),
    pytest.param("FRA' OR '1'='1", id="tautology"),
    pytest.param("%s $1 ? :x %%", id="placeholders"),
]
WRITES = [
    pytest.param("CREATE TABLE livedata_probe (a INT)", id="create"),
    pytest.param(
        "INSERT INTO world_country_list (alpha_2, alpha_3, numeric_code, name)"
        " VALUES ('XX', 'XXX', '999', 'Nowhere')",
        id="insert",
    ),
    pytest.param("DELETE FROM world_country_list", id="delete"),
    pytest.param("DROP TABLE world_country_list", id="drop"),
]


def select(connector: Connector[Any], table: str, **options: Any) -> pa.Table:
    return connector.fetch(build(connector, table, Options(**options)))


def build(connector: Connector[Any], table: str, options: Options) -> Statement:
    return sql.select_table(
        table, None, options, dialect=connector.dialect, style=connector.paramstyle
    )


def keys(table: pa.Table, name: str) -> list[tuple[Any, ...]]:
    return sorted(zip(*(table.column(k).to_pylist() for k in KEYS[name]), strict=True))


def lineitem_schema(kind: str) -> pa.Schema:
    differences = LINEITEM_TYPES.get(kind, {})
    return pa.schema([(f.name, differences.get(f.name, f.type)) for f in LINEITEM.schema])


def test_ping(connector: Connector[Any]) -> None:
    connector.ping()


@pytest.mark.parametrize("table", ["world_country_list", "tpch_lineitem"])
def test_every_row_arrives(connector: Connector[Any], table: str) -> None:
    assert select(connector, table, columns=KEYS[table][:1]).num_rows == DATA_OF[table].num_rows


def test_countries_round_trip_with_their_types(connector: Connector[Any]) -> None:
    got = select(connector, "world_country_list", order_by=[("alpha_3", False)])
    assert got.column_names == COUNTRIES.column_names
    assert got.schema.types == COUNTRIES.schema.types
    assert got.to_pylist() == COUNTRIES.to_pylist()


def test_lineitem_round_trips_as_the_source_can_hold_it(
    sample: Sample, connector: Connector[Any]
) -> None:
    schema = lineitem_schema(sample.kind)
    order = [("l_orderkey", False), ("l_linenumber", False)]
    got = select(connector, "tpch_lineitem", order_by=order, limit=2000)
    assert got.schema == schema
    assert got.equals(LINEITEM.slice(0, 2000).cast(schema))


def test_an_empty_result_keeps_its_schema(sample: Sample, connector: Connector[Any]) -> None:
    got = select(connector, "tpch_lineitem", filters=[Filter("l_orderkey", "lt", 0)])
    if sample.kind in UNTYPED_WHEN_EMPTY:
        assert got.schema == pa.schema([(name, pa.null()) for name in LINEITEM.column_names])
    else:
        assert got.schema == lineitem_schema(sample.kind)


@pytest.mark.parametrize(("table", "where"), BINDINGS)
def test_scalar_parameters_bind(connector: Connector[Any], table: str, where: Filter) -> None:
    data = DATA_OF[table]
    value = pa.scalar(where.value)
    expected = data.filter(_COMPARE[where.op](data.column(where.column).cast(value.type), value))
    got = select(connector, table, columns=KEYS[table], filters=[where])
    assert expected.num_rows > 0
    assert keys(got, table) == keys(expected, table)


@pytest.mark.parametrize("flag", [True, False], ids=["true", "false"])
def test_bool_parameter_binds(connector: Connector[Any], flag: bool) -> None:
    named = sql.parse_named_query(
        "SELECT alpha_3 FROM world_country_list WHERE (population >= 1000000000) = :big",
        connector.dialect,
    )
    statement = sql.select_named(
        named, {"big": flag}, Options(), dialect=connector.dialect, style=connector.paramstyle
    )
    big = pc.greater_equal(COUNTRIES.column("population"), 1_000_000_000)
    expected = COUNTRIES.filter(big if flag else pc.invert(big))
    assert keys(connector.fetch(statement), "world_country_list") == keys(
        expected, "world_country_list"
    )


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_value_is_only_a_value(connector: Connector[Any], payload: str) -> None:
    def lookup(value: str) -> Statement:
        where = Filter("alpha_3", "eq", value)
        return build(connector, "world_country_list", Options(columns=["alpha_3"], filters=[where]))

    attack = lookup(payload)
    assert attack.text == lookup("FRA").text
    assert attack.params == (payload,)
    assert connector.fetch(attack).num_rows == 0
    assert select(connector, "world_country_list", columns=["alpha_3"]).num_rows == len(COUNTRIES)


def test_statement_timeout_is_enforced(sample: Sample) -> None:
    connector = sample.connector(statement_timeout=0.2)
    try:
        with pytest.raises(StatementTimeout, match=r"cancelled the query after 0\.2 s"):
            connector.fetch(Statement(sample.slow_sql, ()))
        connector.ping()  # the connection that timed out is still good
    finally:
        connector.close()


def test_down_source_is_unavailable(
    sample: Sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "s3cret-pa55word")
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    missing = tmp_path / "no-such-database"
    connector = sample.unreachable(port, missing)
    try:
        with pytest.raises(SourceUnavailable) as caught:
            connector.ping()
    finally:
        connector.close()
    message = str(caught.value)
    assert f"Source {sample.kind!r} is unavailable" in message
    for secret in ("s3cret-pa55word", str(port), "127.0.0.1", str(missing)):
        assert secret not in message


@pytest.mark.parametrize("write", WRITES)
def test_session_refuses_writes(connector: Connector[Any], write: str) -> None:
    with pytest.raises(QueryFailed):
        connector.fetch(Statement(write, ()))
    with pytest.raises(QueryFailed):
        connector.fetch(Statement("SELECT * FROM livedata_probe", ()))
    assert select(connector, "world_country_list", columns=["alpha_3"]).num_rows == len(COUNTRIES)


@pytest.mark.parametrize(
    "text", ["SELEC 1", "SELECT * FROM no_such_table", "SELECT no_such_column FROM tpch_lineitem"]
)
def test_bad_sql_is_query_failed(sample: Sample, connector: Connector[Any], text: str) -> None:
    with pytest.raises(QueryFailed, match=f"^Source '{sample.kind}' rejected the query: .+"):
        connector.fetch(Statement(text, ()))


@pytest.mark.parametrize("sample", [pytest.param("mysql", id="mysql")], indirect=True)
def test_a_refusal_does_not_name_the_account(sample: Sample) -> None:
    """MySQL names the account in permission errors ('app'@'10.0.0.5'); the message must not."""
    account = "'livedata_reader'@'%'"
    config = sample.config
    with pymysql.connect(host=config.host, port=config.port, user=config.user) as admin:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE USER IF NOT EXISTS {account}")
            cursor.execute(f"GRANT SELECT ON {TEST_DATABASE}.world_country_list TO {account}")
        reader = sample.connector(user="livedata_reader")
        try:
            with pytest.raises(QueryFailed) as caught:
                reader.fetch(Statement("SELECT * FROM tpch_lineitem", ()))
        finally:
            reader.close()
            with admin.cursor() as cursor:
                cursor.execute(f"DROP USER {account}")
    assert "denied" in str(caught.value)
    for secret in ("livedata_reader", config.host):
        assert secret not in str(caught.value)


def _kill_postgres(session: int) -> None:
    with psycopg.connect(PG_DSN, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (session,))


def _kill_mysql(session: int) -> None:
    admin = pymysql.connect(host="127.0.0.1", user="root", database=TEST_DATABASE)
    with admin, admin.cursor() as cursor:
        cursor.execute(f"KILL {int(session)}")


SESSIONS = {
    "postgres": ("SELECT pg_backend_pid()", _kill_postgres),
    "mysql": ("SELECT CONNECTION_ID()", _kill_mysql),
}


@pytest.mark.parametrize("sample", list(SESSIONS), indirect=True)  # servers only
def test_a_pooled_connection_the_server_dropped_is_replaced(
    sample: Sample, connector: Connector[Any]
) -> None:
    which, kill = SESSIONS[sample.kind]
    session = connector.fetch(Statement(which, ())).column(0)[0].as_py()
    kill(session)  # the pooled connection is now dead, as after a server restart
    assert connector.fetch(Statement("SELECT 1", ())).num_rows == 1
    assert connector.fetch(Statement(which, ())).column(0)[0].as_py() != session


def test_the_idle_pool_keeps_one_connection_per_slot(sample: Sample) -> None:
    """A burst (readiness probes, say) must not leave connections open at the source."""
    connector = sample.connector(max_concurrent_queries=1)
    try:
        burst = [connector.stream(Statement("SELECT 1 AS one", ())) for _ in range(4)]
        for cursor in burst:  # each gives its connection back once read to its end
            assert sum(batch.num_rows for batch in cursor.batches) == 1
        assert connector._idle.qsize() == 2  # one per query slot, one for pings
    finally:
        connector.close()
