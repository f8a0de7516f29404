"""SQL building: identifiers quoted, values only as parameters, in each driver's style."""

from __future__ import annotations

import pytest

from livedata import sql
from livedata.sql import Filter, Options, ParamStyle

STYLES: list[tuple[ParamStyle, str, str]] = [
    ("dollar", "postgres", "$1"),
    ("qmark", "duckdb", "?"),
    ("format", "mysql", "%s"),
]


@pytest.mark.parametrize(("style", "dialect", "mark"), STYLES, ids=[s[0] for s in STYLES])
def test_values_become_parameters_in_text_order(style: ParamStyle, dialect: str, mark: str) -> None:
    options = Options(
        columns=["name"],
        filters=[Filter("region", "eq", "Europe"), Filter("alpha_3", "in", ["FRA", "DEU"])],
        limit=10,
    )
    statement = sql.select_table("world_country_list", None, options, dialect=dialect, style=style)
    assert statement.params == ("Europe", "FRA", "DEU")
    assert "Europe" not in statement.text
    assert statement.text.count(mark[0]) >= 3


@pytest.mark.parametrize(
    "name",
    ['a"; DROP TABLE x; --', "a`b", "a'b", "a\\b", "--", "a b"],
)
def test_identifiers_are_quoted_whatever_they_hold(name: str) -> None:
    statement = sql.select_table(
        "t", None, Options(columns=[name], order_by=[(name, True)]), dialect="postgres",
        style="dollar",
    )  # fmt: skip
    quoted = '"' + name.replace('"', '""') + '"'
    assert statement.text.count(quoted) == 2
    assert statement.params == ()


def test_a_percent_sign_survives_client_side_formatting() -> None:
    statement = sql.select_table(
        "t", None, Options(filters=[Filter("c", "contains", "50%")]), dialect="mysql",
        style="format",
    )  # fmt: skip
    assert statement.params == ("50%",)
    assert "%s" in statement.text


def test_an_empty_in_list_matches_nothing() -> None:
    statement = sql.select_table(
        "t", None, Options(filters=[Filter("c", "in", [])]), dialect="duckdb", style="qmark"
    )
    assert "IN (NULL)" in statement.text
    assert statement.params == ()


def test_a_cast_filter_casts_each_bound_value_never_the_column() -> None:
    options = Options(
        filters=[Filter("u", "eq", "x", cast="uuid"), Filter("m", "in", ["a", "b"], cast="mood")]
    )
    statement = sql.select_table("t", None, options, dialect="postgres", style="dollar")
    assert statement.text == (
        'SELECT * FROM "t" WHERE "u" = CAST($1 AS UUID)'
        ' AND "m" IN (CAST($2 AS mood), CAST($3 AS mood))'
    )
    assert statement.params == ("x", "a", "b")


def test_a_named_query_keeps_its_own_order_when_only_limited() -> None:
    named = sql.parse_named_query("SELECT a FROM t WHERE b = :b ORDER BY a", "mysql")
    statement = sql.select_named(named, {"b": 1}, Options(limit=5), dialect="mysql", style="format")
    assert statement.text.startswith("SELECT a FROM t WHERE b = %s ORDER BY a LIMIT 5")
    wrapped = sql.select_named(
        named, {"b": 1}, Options(columns=["a"], limit=5), dialect="mysql", style="format"
    )
    assert "AS q" in wrapped.text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("SELECT 1; SELECT 2", "exactly one", id="two-statements"),
        pytest.param("DELETE FROM t", "exactly one", id="not-a-query"),
        pytest.param("SELECT * FROM t WHERE a = ?", "named parameters", id="positional"),
        pytest.param("SELECT __ld_0__", "reserved", id="marker"),
        pytest.param("SELEC 1", "does not parse", id="syntax"),
    ],
)
def test_builder_sql_is_checked(text: str, problem: str) -> None:
    with pytest.raises(sql.SQLError, match=problem):
        sql.parse_named_query(text, "postgres")


def test_tables_read_leaves_ctes_out() -> None:
    named = sql.parse_named_query(
        "WITH c AS (SELECT * FROM a) SELECT * FROM c JOIN b ON 1=1", "duckdb"
    )
    assert sql.tables_read(named.expression) == {"a", "b"}


@pytest.mark.parametrize(
    ("dialect", "nullable", "not_null"),
    [
        ("mysql", "ORDER BY CASE WHEN `a` IS NULL THEN 1 ELSE 0 END, `a` ASC", "ORDER BY `a` ASC"),
        ("sqlite", 'ORDER BY "a" ASC NULLS LAST', 'ORDER BY "a" ASC'),
        ("duckdb", 'ORDER BY "a" DESC NULLS FIRST', 'ORDER BY "a" DESC'),
    ],
)
def test_nulls_sort_largest_everywhere_but_not_null_columns_keep_a_plain_order(
    dialect: str, nullable: str, not_null: str
) -> None:
    """Nulls last ascending, first descending, in every source; a column declared NOT NULL
    is ordered as written, so a source may still order it by an index."""
    descending = dialect == "duckdb"  # where each dialect's own rule differs
    order = Options(order_by=[("a", descending)])
    marked = Options(order_by=[("a", descending)], not_null=frozenset({"a"}))
    assert nullable in sql.select_table("t", None, order, dialect=dialect, style="qmark").text
    assert sql.select_table("t", None, marked, dialect=dialect, style="qmark").text.endswith(
        not_null
    )


def test_the_keyset_predicate_tests_nulls_only_where_they_may_be() -> None:
    after = Options(order_by=[("a", False), ("b", False)], after=[1, 2], not_null=frozenset("a"))
    statement = sql.select_table("t", None, after, dialect="postgres", style="dollar")
    assert statement.text.startswith(
        'SELECT * FROM "t" WHERE "a" > $1 OR ("a" = $2 AND ("b" > $3 OR "b" IS NULL))'
    )
    assert statement.params == (1, 1, 2)
