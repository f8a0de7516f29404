"""``livedata keys new`` and ``livedata token issue``: credentials for the access file."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from livedata.commands.exits import stop
from livedata.commands.startup import AuthFileOption, CatalogOption, access, load

if TYPE_CHECKING:
    from livedata.auth.access import Grant
    from livedata.catalog import Catalog

keys_app = typer.Typer(help="API keys for the access file.", no_args_is_help=True)
token_app = typer.Typer(help="Embed tokens for a builder's backend.", no_args_is_help=True)

QueriesOption = Annotated[
    list[str] | None,
    typer.Option("--query", "-q", metavar="QUERY", help='A named query it may run; "*": all.'),
]
TablesOption = Annotated[
    list[str] | None,
    typer.Option("--table", "-t", metavar="TABLE", help='A table it may read; "*": all.'),
]
RestrictOption = Annotated[
    list[str] | None,
    typer.Option(
        "--restrict",
        "-r",
        metavar="NAME=VALUE",
        help="A forced value as name=value (parameter or column).",
    ),
]
AdminOption = Annotated[
    bool, typer.Option("--admin", help="May manage the cache and read /metrics.")
]
DEFAULT_TTL = 900  # seconds: long enough for a page view, short enough to leak little


def _grant(
    queries: list[str] | None,
    tables: list[str] | None,
    restrict: list[str] | None,
    admin: bool,
    catalog: Catalog,
) -> Grant:
    from livedata.auth.access import Grant, check_grant

    restrictions: dict[str, Any] = {}
    for item in restrict or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            stop(f"--restrict {item!r}: write name=value")
        restrictions[name] = value
    grant = Grant(
        queries=queries or [], tables=tables or [], restrictions=restrictions, admin=admin
    )
    check_grant(grant, catalog, "grant")
    return grant


@keys_app.command("new")
def keys_new(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="Its id: letters, digits or '-'.")],
    query: QueriesOption = None,
    table: TablesOption = None,
    restrict: RestrictOption = None,
    admin: AdminOption = False,
    catalog: CatalogOption = None,
) -> None:
    """Make an API key and its access file section.

    The section to append goes to stdout (only the key's digest); the key itself, shown
    once, to stderr."""
    from livedata.auth.keys import new_key

    grant = _grant(query, table, restrict, admin, load(catalog)[1])
    try:
        key, stored = new_key(key_id)
    except ValueError as exc:
        stop(str(exc))
    section = {"hash": stored, **grant.model_dump()}
    lines = [f"{name} = {_toml(value)}" for name, value in section.items()]
    # The key on stderr, the section on stdout: `keys new ID >> access.toml` is safe.
    print(f"API key (shown only now; give it to its holder, keep no copy):\n{key}", file=sys.stderr)
    print(f"[api_keys.{key_id}]\n" + "\n".join(lines) + "\n")


def _toml(value: Any) -> str:
    import orjson

    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {_toml(v)}" for k, v in value.items())
        return f"{{ {inner} }}" if inner else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return orjson.dumps(value).decode()  # strings, booleans and numbers read the same in TOML


@token_app.command("issue")
def token_issue(
    kid: Annotated[str, typer.Option(metavar="KID", help="The [tokens.keys.<kid>] to sign with.")],
    subject: Annotated[
        str, typer.Option(metavar="SUB", help="Who it is for (the `sub` claim), e.g. a user.")
    ],
    query: QueriesOption = None,
    table: TablesOption = None,
    restrict: RestrictOption = None,
    admin: AdminOption = False,
    ttl: Annotated[
        float | None,
        typer.Option(
            min=1,
            metavar="SECONDS",
            help="Seconds until it expires (default: 900, or max_ttl if less).",
        ),
    ] = None,
    private_key: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="PEM private key (RS256, ES256, EdDSA); HS256 needs none.",
            dir_okay=False,
        ),
    ] = None,
    auth_file: AuthFileOption = None,
    catalog: CatalogOption = None,
) -> None:
    """Sign an embed token, as a builder's backend does per page view.

    It is printed only once it passes the checks the server will make: ttl, the key's
    ceiling, audience, issuer and signature."""
    import jwt

    from livedata.auth.tokens import issue, signing_secret
    from livedata.errors import AccessFileError, Unauthenticated

    loaded = load(catalog)[1]
    authenticator = access(auth_file, loaded)
    verifier = None if authenticator is None else authenticator.tokens
    if verifier is None:
        stop("the access file (--auth-file) has no [tokens] section")
    config = verifier.config
    ttl = min(DEFAULT_TTL, config.max_ttl) if ttl is None else ttl
    if ttl > config.max_ttl:
        stop(
            f"--ttl {ttl:g} is over max_ttl ({config.max_ttl:g} s) in {auth_file}: the server "
            "would refuse the token"
        )
    grant = _grant(query, table, restrict, admin, loaded)
    try:
        signing = private_key.read_bytes() if private_key else signing_secret(config, kid)
        if signing is None:
            raise AccessFileError(f"tokens.keys.{kid} is asymmetric: pass --private-key FILE")
        token = issue(config, kid, signing, subject, grant, ttl)
        # A wrong private key or a grant over the ceiling shows here.
        verifier.verify(token, time.time())
    except Unauthenticated as exc:
        stop(f"the server would refuse this token: {exc.reason}")
    except (OSError, jwt.PyJWTError, ValueError) as exc:
        stop(str(exc))
    print(token)
