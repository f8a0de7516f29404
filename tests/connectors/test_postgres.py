"""PostgreSQL's conversion of what the driver sends is worked out once per schema: results
that Arrow types alike but PostgreSQL does not (an enum and a text, a date and an infinite
one) must each keep their own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pytest

from livedata.connectors.base import CAST, Connector
from livedata.sql import Statement
from tests.samples import PG_DSN, Sample

ENUM = """DO $$ BEGIN CREATE TYPE shape_mood AS ENUM ('ok');
EXCEPTION WHEN duplicate_object THEN NULL; END $$"""


@pytest.fixture
def connector(sample_of: Callable[[str], Sample]) -> Iterator[Connector[Any]]:
    with psycopg.connect(PG_DSN, autocommit=True) as db:
        db.execute(ENUM)
    connector = sample_of("postgres").connector()
    yield connector
    connector.close()


def _field(connector: Connector[Any], expression: str) -> pa.Field:
    return connector.fetch(Statement(f"SELECT {expression} AS v", ())).schema.field("v")


def test_an_enum_and_a_text_keep_their_own_fields(connector: Connector[Any]) -> None:
    """Both arrive as strings; only the enum's field names the type a filter casts to."""
    for _ in range(2):  # each answered after the other's schema was worked out
        assert _field(connector, "'ok'::text").metadata is None
        assert _field(connector, "'ok'::shape_mood").metadata == {CAST: b"shape_mood"}


def test_infinite_dates_are_rewritten_after_finite_ones(connector: Connector[Any]) -> None:
    """The same schema; only the values differ, so the conversion must look at each batch."""
    for _ in range(2):
        finite = connector.fetch(Statement("SELECT '2024-01-01'::date AS v", ()))
        infinite = connector.fetch(Statement("SELECT 'infinity'::date AS v", ()))
        assert finite.column("v").to_pylist()[0].year == 2024
        assert infinite.column("v").cast(pa.int32()).to_pylist() == [2**31 - 1]
