"""Pages that stay consistent: every page of a cursor comes from the snapshot of the first,
through the real server, whatever the source, expiry or eviction do between pages."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from livedata.catalog import Catalog, TableConfig
from tests.cache.conftest import Postgres
from tests.cache.traffic import BOUND, HIT, STORED, Body, Clock, ask, fire, revalidate
from tests.cli_server import CliServer

ROWS = 250
PAGE = 100
TABLE = "livedata_paging_rows"
FIRST = {"table": "rows", "order_by": [{"column": "id"}], "limit": PAGE, "paginate": True}


@pytest.fixture
def rows(postgres: Postgres) -> Iterator[Postgres]:
    """A table of ``ROWS`` rows (id, version) the test may change between pages."""
    postgres.db.execute(f"DROP TABLE IF EXISTS {TABLE}")
    postgres.db.execute(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, version int NOT NULL)")
    postgres.db.execute(f"INSERT INTO {TABLE} SELECT n, 1 FROM generate_series(1, {ROWS}) AS n")
    yield postgres
    postgres.db.execute(f"DROP TABLE IF EXISTS {TABLE}")


def catalog(pg: Postgres, **fields: Any) -> Catalog:
    table = TableConfig.model_validate({"source": "pg", "table": TABLE, **fields})
    return Catalog(sources={"pg": pg.sample.config}, tables={"rows": table})


def walk(url: str, first: Body, between: Callable[[], object] = lambda: None) -> list[Any]:
    """Every row of every page, ``between`` run after the first page; checks the counts."""
    response = ask(url, first)
    assert response.status_code == 200, response.text
    rows, total = [], response.json()["meta"]["total"]
    between()
    while True:
        meta = response.json()["meta"]
        assert meta["total"] == total
        rows += response.json()["rows"]
        if meta["next"] is None:
            return rows
        assert response.headers["x-next-cursor"] == meta["next"]
        response = ask(url, {"table": first["table"], "cursor": meta["next"]})
        assert response.status_code == 200, response.text
        assert response.headers["cache-status"] == HIT


def change(pg: Postgres) -> None:
    """Rows deleted before and after the page boundary, rows inserted, every row updated."""
    pg.db.execute(f"DELETE FROM {TABLE} WHERE id % 7 = 0")
    pg.db.execute(f"INSERT INTO {TABLE} SELECT n, 1 FROM generate_series(1001, 1050) AS n")
    pg.db.execute(f"UPDATE {TABLE} SET version = 2")


def test_pages_stay_consistent_when_the_source_changes_between_them(
    serve: Callable[..., str], rows: Postgres
) -> None:
    url = serve(catalog(rows))
    first = ask(url, FIRST)
    assert first.headers["cache-status"] == STORED
    assert first.json()["meta"]["rows"] == PAGE

    paged = walk(url, FIRST, between=lambda: (change(rows), _invalidate(url)))

    assert paged == [[n, 1] for n in range(1, ROWS + 1)]  # none skipped, none repeated
    fresh = walk(url, FIRST)  # a new first page: a new snapshot, of the changed source
    assert fresh == [[n, 2] for n in [*range(1, ROWS + 1), *range(1001, 1051)] if n % 7 or n > ROWS]


def _invalidate(url: str) -> None:
    """Everything cached removed, as a change of the source would have it."""
    assert httpx.post(f"{url}/cache/invalidate", json={"all": True}).is_success


def test_an_open_cursor_outlives_the_expiry_and_eviction_of_its_entry(
    serve: Callable[..., str], rows: Postgres, tmp_path: Path
) -> None:
    clock = Clock()
    fresh = {"ttl": 10, "stale_while_revalidate": 0, "stale_if_error": 0}
    url = serve(catalog(rows, **fresh), clock=clock, cache_dir=tmp_path, cursor_ttl=100)
    page = ask(url, FIRST).json()["meta"]
    change(rows)
    clock.now += 60  # the entry expired long ago (ttl 10)...
    assert httpx.post(f"{url}/cache/purge").json() == {"removed": 1}  # ...and is removed
    ask(url, {**FIRST, "order_by": [{"column": "id", "desc": True}]})  # another entry

    second = ask(url, {"table": "rows", "cursor": page["next"]})

    assert second.status_code == 200, second.text
    assert second.json()["rows"] == [[n, 1] for n in range(PAGE + 1, 2 * PAGE + 1)]
    clock.now += 99  # within the cursor's 100 s of the second page
    assert ask(url, {"table": "rows", "cursor": second.json()["meta"]["next"]}).is_success
    clock.now += 101  # past it
    expired = ask(url, {"table": "rows", "cursor": second.json()["meta"]["next"]})
    assert expired.status_code == 410
    assert expired.json()["error"]["code"] == "cursor_expired"


def test_a_cursor_survives_eviction(
    serve: Callable[..., str], rows: Postgres, tmp_path: Path
) -> None:
    """The cache holds one snapshot at a time: the next snapshot evicts the first's entry."""
    url = serve(catalog(rows), cache_dir=tmp_path, cache_max_bytes=6_000)
    page = ask(url, FIRST).json()["meta"]
    other = ask(url, {**FIRST, "order_by": [{"column": "id", "desc": True}]})
    assert other.headers["cache-status"] == STORED
    assert len(list((tmp_path / "entries").rglob("*.entry"))) == 1  # the first one evicted

    second = ask(url, {"table": "rows", "cursor": page["next"]})

    assert second.status_code == 200, second.text
    assert second.json()["rows"] == [[n, 1] for n in range(PAGE + 1, 2 * PAGE + 1)]


def test_many_clients_page_one_snapshot_at_once(serve: Callable[..., str], rows: Postgres) -> None:
    url = serve(catalog(rows))
    start = ask(url, {**FIRST, "limit": 10}).json()["meta"]["next"]

    assert page_together(url, start, 8) == [[[n, 1] for n in range(11, ROWS + 1)]] * 8


def page_together(url: str, start: str, clients: int) -> list[list[Any]]:
    """Every row after cursor ``start``, as each of ``clients`` paging at once saw it."""

    async def page_to_the_end(client: httpx.AsyncClient) -> list[Any]:
        seen, cursor = [], start
        while cursor is not None:
            response = await client.post("/query", json={"table": "rows", "cursor": cursor})
            assert response.status_code == 200, response.text
            seen += response.json()["rows"]
            cursor = response.json()["meta"]["next"]
        return seen

    async def everyone() -> list[list[Any]]:
        async with httpx.AsyncClient(base_url=url, timeout=BOUND) as client:
            return list(await asyncio.gather(*(page_to_the_end(client) for _ in range(clients))))

    return asyncio.run(everyone())


def test_other_formats_carry_the_cursor_in_headers(
    serve: Callable[..., str], rows: Postgres
) -> None:
    url = serve(catalog(rows))
    first = ask(url, {**FIRST, "format": "csv"})
    assert first.headers["x-total-count"] == str(ROWS)
    assert first.text.splitlines()[1:3] == ["1,1", "2,1"]

    cursor = first.headers["x-next-cursor"]
    last = ask(url, {"table": "rows", "cursor": cursor, "limit": 200, "format": "csv"})

    assert last.text.splitlines()[1] == f"{PAGE + 1},1"
    assert len(last.text.splitlines()) == 1 + ROWS - PAGE  # a header line, then the rest
    assert "x-next-cursor" not in last.headers  # the last page


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param({"cursor": "nonsense"}, 400, "invalid_cursor", id="garbage"),
        pytest.param({"cursor": "flip"}, 400, "invalid_cursor", id="forged"),
        pytest.param({"cursor": "next", "filters": []}, 200, None, id="empty-shaping-allowed"),
        pytest.param(
            {"cursor": "next", "order_by": [{"column": "id"}]}, 422, "invalid_option", id="reshaped"
        ),
        pytest.param({"paginate": True, "limit": None}, 422, "invalid_option", id="no-page-size"),
        pytest.param({"paginate": True, "limit": 0}, 422, "invalid_option", id="empty-pages"),
    ],
)
def test_cursors_refused_with_a_clear_error(
    serve: Callable[..., str], rows: Postgres, body: Body, status: int, code: str | None
) -> None:
    url = serve(catalog(rows))
    token = ask(url, FIRST).json()["meta"]["next"]
    if body.get("cursor") == "next":
        body = {**body, "cursor": token}
    elif body.get("cursor") == "flip":  # one character of the signed payload changed
        body = {**body, "cursor": ("B" if token[5] == "A" else "A").join((token[:5], token[6:]))}

    response = ask(url, {**FIRST, "paginate": False, **body, "order_by": body.get("order_by", [])})

    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["error"]["code"] == code


def test_a_cursor_pages_only_its_own_target(serve: Callable[..., str], rows: Postgres) -> None:
    cat = catalog(rows)
    cat = Catalog(sources=cat.sources, tables={**cat.tables, "again": cat.tables["rows"]})
    url = serve(cat)
    token = ask(url, FIRST).json()["meta"]["next"]

    response = ask(url, {"table": "again", "cursor": token})

    assert response.status_code == 400
    assert "table:rows" in response.json()["error"]["message"]


def keyset_walk(url: str, first: Body, between: Callable[[], object] = lambda: None) -> list[Any]:
    """Every row of every keyset page, ``between`` run after the first; checks each page
    says how it pages and that it is neither counted nor kept."""
    rows: list[Any] = []
    response = ask(url, first)
    while True:
        assert response.status_code == 200, response.text
        meta = response.json()["meta"]
        assert (meta["paging"], meta["total"]) == ("keyset", None)
        assert response.headers["x-paging"] == "keyset"
        assert response.headers["cache-control"] == "no-store"
        assert "etag" not in response.headers
        rows += response.json()["rows"]
        if meta["next"] is None:
            return rows
        if len(rows) == len(response.json()["rows"]):
            between()
        response = ask(url, {"table": first["table"], "cursor": meta["next"]})


def test_uncached_targets_page_the_live_source_by_keyset(
    serve: Callable[..., str], rows: Postgres
) -> None:
    """Nothing cached, so no snapshot: each page starts after the last row sent, in the
    source as it now is. Rows changed after the first page are seen changed; none is
    skipped or repeated."""
    url = serve(catalog(rows, ttl=0))

    paged = keyset_walk(url, FIRST, between=lambda: change(rows))

    after_first = [n for n in [*range(PAGE + 1, ROWS + 1), *range(1001, 1051)] if n % 7 or n > ROWS]
    assert paged == [[n, 1] for n in range(1, PAGE + 1)] + [[n, 2] for n in after_first]


def test_many_clients_page_by_keyset_at_once(serve: Callable[..., str], rows: Postgres) -> None:
    url = serve(catalog(rows, ttl=0))
    start = ask(url, {**FIRST, "limit": 10}).json()["meta"]["next"]

    assert page_together(url, start, 8) == [[[n, 1] for n in range(11, ROWS + 1)]] * 8


@pytest.mark.parametrize(
    ("body", "says"),
    [
        pytest.param({"order_by": []}, "order_by", id="no-order"),
        pytest.param({"order_by": [{"column": "version"}]}, "same order_by values", id="tie"),
    ],
)
def test_keyset_paging_refuses_an_order_that_cannot_tell_rows_apart(
    serve: Callable[..., str], rows: Postgres, body: Body, says: str
) -> None:
    """A tie across a page boundary would skip or repeat rows: refused, never cut."""
    url = serve(catalog(rows, ttl=0))

    response = ask(url, {**FIRST, **body})

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "cursors_need_order"
    assert says in response.json()["error"]["message"]


def test_keyset_pages_pass_nulls_in_the_order(serve: Callable[..., str], rows: Postgres) -> None:
    """Nulls sort as the largest value, and the predicate after a page knows it: a null in
    any ordered column neither stops the pages nor loses a row."""
    rows.db.execute(f"ALTER TABLE {TABLE} ALTER COLUMN version DROP NOT NULL")
    rows.db.execute(f"UPDATE {TABLE} SET version = NULLIF(id % 4, 0)")  # a quarter null
    url = serve(catalog(rows, ttl=0))
    for descending in (False, True):
        order = [{"column": "version", "desc": descending}, {"column": "id"}]

        paged = keyset_walk(url, {**FIRST, "limit": 7, "order_by": order})

        versions = [1, 2, 3, None] if not descending else [None, 3, 2, 1]
        expected = [[n, v] for v in versions for n in range(1, ROWS + 1) if (n % 4 or None) == v]
        assert paged == expected


def test_a_page_the_client_has_is_answered_304_with_a_renewed_cursor(
    serve: Callable[..., str], rows: Postgres
) -> None:
    """A page of a snapshot never changes; only its cursor's expiry does (a weak ETag)."""
    url = serve(catalog(rows))
    for body in (FIRST, {"table": "rows", "cursor": ask(url, FIRST).json()["meta"]["next"]}):
        page = ask(url, body)
        assert page.headers["etag"].startswith('W/"')

        again = revalidate(url, body, page.headers["etag"])

        assert again.status_code == 304
        assert again.headers["etag"] == page.headers["etag"]
        assert again.headers["x-next-cursor"]  # signed now: good for LIVEDATA_CURSOR_TTL more
        assert again.headers["x-total-count"] == str(ROWS)


def test_a_snapshot_the_disk_cannot_pin_is_a_clear_error_not_a_500(
    serve: Callable[..., str], rows: Postgres, tmp_path: Path
) -> None:
    """A pin that cannot be written (here: its folder replaced by a file) once failed the
    request with a 500."""
    url = serve(catalog(rows), cache_dir=tmp_path)
    (tmp_path / "pins").rmdir()
    (tmp_path / "pins").write_bytes(b"not a folder")

    response = ask(url, FIRST)

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "cursors_need_cache"
    assert "disk" in response.json()["error"]["message"]
    assert ask(url, {**FIRST, "paginate": False}).status_code == 200  # the rest still works


def test_workers_sharing_a_cache_directory_accept_each_others_cursors(
    rows: Postgres, cli_server: Callable[..., CliServer], tmp_path: Path
) -> None:
    """With no secret and no access file, each worker once signed with a key of its own: a
    cursor answered by another worker than the one that issued it was refused."""
    catalog_file = tmp_path / "catalog.toml"
    catalog_file.write_text(
        rows.catalog_toml() + f'\n[tables.rows]\nsource = "pg"\ntable = "{TABLE}"\n'
    )
    server = cli_server(tmp_path / "cache", "--catalog", str(catalog_file), workers=2)
    first = ask(server.url, FIRST).json()["meta"]["next"]

    pages = fire(server.url, [{"table": "rows", "cursor": first}] * 20, connections=20)

    assert [p.status_code for p in pages] == [200] * 20  # both workers answered some
