"""``livedata query``: a table or named query from the shell, through the same service and
encoders as ``POST /query``, so ``--format json`` writes the bytes the API sends.

Options mirror the request body: ``-p name=value`` (a list parameter as JSON, ``-p
'codes=["FRA","JPN"]'``, or the option repeated), ``--columns``, ``--filter COLUMN:OP:VALUE``
(the API's ``op`` names), ``--order-by COLUMN[:desc]``, ``--limit``, ``--offset``. Values
are converted by the catalog's declared types, as over HTTP.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer

from livedata.commands.startup import CatalogOption, load

if TYPE_CHECKING:
    import pyarrow as pa

    from livedata.cache.entries import EntryHeader
    from livedata.encoders.base import Encoder
    from livedata.params import ParamSpec
    from livedata.plan import QueryRequest
    from livedata.results import Result
    from livedata.service import QueryService


class Format(StrEnum):
    TABLE = "table"  # text for a terminal (``livedata.commands.views``)
    JSON = "json"
    NDJSON = "ndjson"
    CSV = "csv"
    ARROW = "arrow"
    PARQUET = "parquet"


BINARY = (Format.ARROW, Format.PARQUET)
OPS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "is_null", "contains", "has")  # sql.FILTER_OPS


def query(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="A named query, or a table with --table.")
    ],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            metavar="NAME=VALUE",
            help='A parameter as name=value; a list as JSON (-p \'codes=["FRA","JPN"]\') or '
            "the option repeated.",
        ),
    ] = None,
    table: Annotated[bool, typer.Option("--table", help="NAME is an exposed table.")] = False,
    columns: Annotated[
        list[str] | None,
        typer.Option(
            "--columns", metavar="A,B", help="Only these columns, in this order: a,b (or repeated)."
        ),
    ] = None,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            metavar="COLUMN:OP:VALUE",
            help="COLUMN:OP:VALUE, all must hold; OP one of eq ne lt le gt ge in is_null "
            'contains; VALUE as JSON or text (population:gt:1000000, code:in:["FRA","JPN"], '
            "capital:is_null).",
        ),
    ] = None,
    order_by: Annotated[
        list[str] | None,
        typer.Option(
            "--order-by", metavar="COLUMN[:desc]", help="COLUMN or COLUMN:desc (repeat for more)."
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=0, metavar="N", help="Most rows.")] = None,
    offset: Annotated[
        int, typer.Option(min=0, metavar="N", help="Rows to skip (after ordering).")
    ] = 0,
    output_format: Annotated[
        Format,
        typer.Option(
            "--format",
            "-f",
            help="table: text for a terminal; the others are the bytes POST /query sends.",
        ),
    ] = Format.TABLE,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write to FILE (default: stdout).",
            dir_okay=False,
        ),
    ] = None,
    vertical: Annotated[
        bool | None,
        typer.Option(
            "--vertical/--no-vertical",
            "-x",
            help="One block per row (default: when the table is wider than the terminal).",
        ),
    ] = None,
    null: Annotated[
        str, typer.Option(metavar="TEXT", help="How table output shows NULL.")
    ] = "NULL",
    catalog: CatalogOption = None,
) -> None:
    """Run a named query or a table; print its rows or write them.

    The table view shows NULL apart from text, and one block per row when the rows are wider
    than the terminal; --format json, ndjson, csv, arrow or parquet writes what the HTTP API
    sends."""
    import anyio

    from livedata.encoders.registry import ENCODERS
    from livedata.plan import QueryRequest
    from livedata.service import QueryService

    if output_format in BINARY and output is None and sys.stdout.isatty():
        raise typer.BadParameter(
            f"{output_format} is binary: give -o FILE or pipe it", param_hint="'--format'"
        )
    settings, loaded = load(catalog)
    specs = {} if table or name not in loaded.queries else loaded.queries[name].params
    shaping: dict[str, Any] = {
        "columns": _columns(columns),
        "filters": [_filter(item) for item in filters or []],
        "order_by": [_order(item) for item in order_by or []],
        "limit": limit,
        "offset": offset,
    }
    request = (
        QueryRequest(table=name, **shaping)
        if table
        else QueryRequest(query=name, params=_params(param or [], specs), **shaping)
    )
    encoder = ENCODERS["arrow" if output_format is Format.TABLE else output_format.value]
    view = output_format is Format.TABLE
    service = QueryService.create(loaded, settings)
    try:
        with _sink(output) as sink:
            with _progress() as progress:  # ends before the table view writes to the terminal
                result, header, rows = anyio.run(
                    _fetch, service, request, encoder, None if view else sink, progress
                )
            if rows is not None:
                _show(rows, sink, vertical, null, terminal=output is None and sys.stdout.isatty())
    finally:
        service.close()
    truncated = " (truncated)" if header.truncated else ""
    print(
        f"{header.rows} row(s) from {header.source} ({result.status}, source "
        f"{header.source_ms:.1f} ms){truncated}",
        file=sys.stderr,
    )


async def _fetch(
    service: QueryService,
    request: QueryRequest,
    encoder: Encoder,
    sink: BinaryIO | None,
    progress: Callable[[int], None],
) -> tuple[Result, EntryHeader, pa.Table | None]:
    """Run ``request``; write the body to ``sink``, or with no sink (the table view) return
    the rows. A live body is read to its end, then its commit awaited, as the web layer does."""
    import anyio.to_thread
    import pyarrow as pa

    from livedata.bodies import stored_body
    from livedata.results import StoredResult

    result = await service.run(request, encoder)
    if isinstance(result, StoredResult):
        if sink is None:
            return result, result.header, await service.table(result)
        cache = service.cache
        assert cache is not None, "a stored result comes from the cache"
        body = await anyio.to_thread.run_sync(stored_body, cache, result, encoder, None)
        sink.write(body)
        return result, result.header, None
    chunks = []
    try:
        async for chunk in result.body:
            progress(len(chunk))
            if sink is None:
                chunks.append(chunk)
            else:
                sink.write(chunk)
    finally:
        await result.body.aclose()
    header = result.header()
    if result.stored is not None:
        await result.stored()  # committed after the last byte: let it finish
    rows = pa.ipc.open_stream(b"".join(chunks)).read_all() if sink is None else None
    return result, header, rows


def _params(items: list[str], specs: Mapping[str, ParamSpec]) -> dict[str, Any]:
    """``name=value`` items as the request's params: a list parameter from JSON or repeated
    items; scalars as text, converted by their declared type like a browser's strings."""
    import orjson

    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r}: write name=value", param_hint="'-p'")
        spec = specs.get(key)
        if spec is not None and spec.is_list:
            if value.lstrip().startswith("["):
                try:
                    values = orjson.loads(value)
                except orjson.JSONDecodeError as exc:
                    raise typer.BadParameter(
                        f"{item!r}: {key} is a {spec.type}; write it as a JSON array "
                        '(-p \'codes=["FRA","JPN"]\') or repeat -p once per item',
                        param_hint="'-p'",
                    ) from exc
                params.setdefault(key, []).extend(values if isinstance(values, list) else [values])
            else:
                params.setdefault(key, []).append(value)
        elif key in params:
            raise typer.BadParameter(f"{key} is given twice; it takes one value", param_hint="'-p'")
        else:
            params[key] = value
    return params


def _columns(items: list[str] | None) -> list[str] | None:
    if not items:
        return None
    return [c.strip() for item in items for c in item.split(",") if c.strip()]


def _filter(item: str) -> Any:
    from livedata.sql import Filter

    column, _, rest = item.partition(":")
    op, sep, raw = rest.partition(":")
    if not column or op not in OPS:
        raise typer.BadParameter(
            f"{item!r}: write COLUMN:OP:VALUE, OP one of {' '.join(OPS)}", param_hint="'--filter'"
        )
    if op == "is_null":
        return Filter(column, "is_null", _value(raw) if sep else True)
    if not sep:
        raise typer.BadParameter(f"{item!r}: {op} needs a value", param_hint="'--filter'")
    return Filter(column, op, _value(raw))  # type: ignore[arg-type]  # op is one of OPS


def _value(raw: str) -> Any:
    """JSON when it parses (numbers, true, lists, "quoted text"), else the text itself."""
    import orjson

    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw


def _order(item: str) -> tuple[str, bool]:
    column, _, direction = item.partition(":")
    if not column or direction.lower() not in ("", "asc", "desc"):
        raise typer.BadParameter(
            f"{item!r}: write COLUMN or COLUMN:desc", param_hint="'--order-by'"
        )
    return column, direction.lower() == "desc"


def _show(rows: pa.Table, sink: BinaryIO, vertical: bool | None, null: str, terminal: bool) -> None:
    """The table view; one block per row when asked, or when a terminal is too narrow."""
    import shutil

    from livedata.commands import views

    style = views.Style(null, color=terminal and "NO_COLOR" not in os.environ)
    if vertical is None:
        width = shutil.get_terminal_size().columns
        vertical = terminal and views.width(rows, style) > width
    lines = views.vertical(rows, style) if vertical else views.table(rows, style)
    for line in lines:
        sink.write(line.rstrip().encode() + b"\n")


@contextmanager
def _progress() -> Iterator[Callable[[int], None]]:
    """Bytes received so far, on stderr while a result arrives (a terminal only)."""
    if not sys.stderr.isatty():
        yield lambda size: None
        return
    from rich.console import Console
    from rich.filesize import decimal

    received = 0
    with Console(stderr=True).status("running the query...") as status:

        def update(size: int) -> None:
            nonlocal received
            received += size
            status.update(f"receiving rows... {decimal(received)}")

        yield update


@contextmanager
def _sink(output: Path | None) -> Iterator[BinaryIO]:
    """stdout, or ``FILE`` written as ``FILE.part`` and renamed once whole, so a failed run
    leaves no half file behind."""
    if output is None:
        yield sys.stdout.buffer
        sys.stdout.flush()
        return
    part = output.with_name(output.name + ".part")
    try:
        file = part.open("wb")
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot write {output}: {exc.strerror}", param_hint="'-o'"
        ) from exc
    try:
        with file:
            yield file
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    part.replace(output)
