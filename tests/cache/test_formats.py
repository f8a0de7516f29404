"""Every cache format against its claims: lossless ones give back exactly what they were
given (through the cache's own checked, memory-mapped files), lossy ones really do lose
something, and the cache's setting accepts only the faithful, safe ones."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pytest

from livedata.cache.formats.base import CacheFormat, FormatUnavailable
from livedata.cache.formats.registry import ALL_FORMATS, DEFAULT_FORMAT, FORMATS, cache_format
from livedata.cache.store import Store
from livedata.study.fidelity import compare
from livedata.study.shapes import strings_table, tricky_table, wide_table

TABLES = {
    "tricky": tricky_table(70),
    "strings": strings_table(300),
    "wide": wide_table(20, 210),
    "empty": tricky_table(70).slice(0, 0),
}


def _formats(lossless: bool) -> list[object]:
    return [pytest.param(f, id=name) for name, f in ALL_FORMATS.items() if f.lossless is lossless]


def _installed(fmt: CacheFormat) -> bool:
    """False for a format whose optional library is absent, after checking that it then
    says what to install (Lance and Vortex are big: a machine may well go without them)."""
    if fmt.available():
        return True
    assert fmt.library is not None
    with pytest.raises(FormatUnavailable, match=f"pip install {fmt.library[1]}"):
        fmt.dumps(pa.table({"x": [1]}))
    return False


@pytest.mark.parametrize("table_name", list(TABLES))
@pytest.mark.parametrize("fmt", _formats(lossless=True))
def test_a_lossless_format_gives_back_every_column_exactly(
    fmt: CacheFormat, table_name: str
) -> None:
    if not _installed(fmt):
        return
    table = TABLES[table_name]
    back = fmt.loads(memoryview(fmt.dumps(table)))
    assert compare(table, back) == dict.fromkeys(table.schema.names, "exact")
    assert back.schema == table.schema


@pytest.mark.parametrize("fmt", _formats(lossless=False))
def test_a_lossy_format_really_loses_something(fmt: CacheFormat) -> None:
    if not _installed(fmt):
        return
    table = TABLES["tricky"]
    try:
        back = fmt.loads(memoryview(fmt.dumps(table)))
    except Exception:
        return  # cannot even store it: lossy indeed
    assert set(compare(table, back).values()) != {"exact"}


@pytest.mark.parametrize("fmt", [pytest.param(f, id=n) for n, f in FORMATS.items()])
def test_a_cache_format_reads_back_from_a_checked_mapped_file(
    fmt: CacheFormat, tmp_path: Path
) -> None:
    """The cache's own path: container written, fsynced, mapped, verified, then ``loads``."""
    if not _installed(fmt):
        return
    store = Store(tmp_path)
    path = store.entry_path("ab" * 32)
    table = TABLES["tricky"]
    assert store.write(path, fmt.dumps(table), {"format": fmt.name}) is not None
    stored = store.read(path)
    assert stored is not None
    assert compare(table, fmt.loads(stored.payload)) == dict.fromkeys(table.schema.names, "exact")


def test_the_cache_takes_only_lossless_formats_that_run_no_code() -> None:
    assert DEFAULT_FORMAT in FORMATS
    assert all(f.lossless and not f.runs_code for f in FORMATS.values())
    assert {"csv", "json", "pickle"}.isdisjoint(FORMATS)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param("csv", "does not keep every type", id="lossy"),
        pytest.param("pickle", "may run code", id="runs-code"),
        pytest.param("arow", "Did you mean 'arrow'", id="typo"),
    ],
)
def test_the_cache_setting_refuses_with_the_usable_names(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        cache_format(name)
    assert "arrow" in str(refused.value)


def test_a_format_without_its_library_says_what_to_install() -> None:
    class Missing(CacheFormat):
        name = "missing"
        description = "a format whose library is not installed"
        library: ClassVar[tuple[str, str] | None] = ("livedata_no_such_module", "no-such-package")

        def dumps(self, table: pa.Table) -> bytes:
            raise NotImplementedError

        def loads(self, data: memoryview) -> pa.Table:
            raise NotImplementedError

    assert not Missing().available()
    with pytest.raises(FormatUnavailable, match="pip install no-such-package"):
        Missing().check_installed()
