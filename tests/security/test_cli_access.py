"""`livedata keys new`, `livedata token issue` and the plain-text secret check, run as a user
would run them, and their output used against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from jwt.algorithms import RSAAlgorithm

from livedata.auth.keys import digest
from tests.cli_server import LIVEDATA
from tests.security.conftest import CEILINGS, Credentials, write_access


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LIVEDATA, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LIVEDATA_AUTH_FILE": "", **env},
        check=False,
    )


def test_keys_new_prints_the_key_once_and_the_section_to_paste(
    tmp_path: Path, serve: Callable[..., str]
) -> None:
    done = run("keys", "new", "web", "-q", "countries_by_region", "-r", "region=Europe")
    assert done.returncode == 0, done.stderr
    key = done.stderr.split()[-1]
    assert key.startswith("ld_web_")
    assert key not in done.stdout  # stdout can go straight into the access file
    section = tomllib.loads(done.stdout)["api_keys"]["web"]
    assert section == {
        "hash": digest(key),
        "queries": ["countries_by_region"],
        "tables": [],
        "restrictions": {"region": "Europe"},
        "admin": False,
    }
    access = tmp_path / "access.toml"
    access.write_text(done.stdout)
    url = serve(auth_file=access)
    headers = {"Authorization": f"Bearer {key}"}
    body = {"query": "countries_by_region", "params": {"min_population": 80_000_000}}
    rows = httpx.post(f"{url}/query", json=body, headers=headers).json()["rows"]
    assert [row[0] for row in rows] == ["RUS", "DEU"]
    other = run("keys", "new", "web", "-q", "countries_by_region").stderr.split()[-1]
    assert other != key  # a new key each time


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param(["web_1"], "letters, digits or '-'", id="bad-id"),
        pytest.param(["web", "-q", "countrys"], "Did you mean 'country'?", id="unknown-query"),
        pytest.param(["web", "-r", "region"], "name=value", id="bad-restriction"),
    ],
)
def test_keys_new_refuses_what_would_not_work(args: list[str], says: str) -> None:
    done = run("keys", "new", *args)
    assert done.returncode == 2
    assert says in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("kid", ["hs", "ed"])
def test_token_issue_mints_a_token_the_server_accepts(
    auth_url: str, credentials: Credentials, tmp_path: Path, kid: str
) -> None:
    args = ["--auth-file", str(credentials.access_file), "--kid", kid, "--subject", "user-7"]
    if kid == "ed":  # the builder's backend holds the private key; the server never does
        (tmp_path / "ed.pem").write_bytes(credentials.private_pem("ed"))
        args += ["--private-key", str(tmp_path / "ed.pem")]
    done = run("token", "issue", *args, "-q", "countries_by_region", "-r", "region=Oceania")
    assert done.returncode == 0, done.stderr
    headers = credentials.bearer(done.stdout.strip())
    body = {"query": "countries_by_region"}
    answer = httpx.post(f"{auth_url}/query", json=body, headers=headers).json()
    assert {row[2] for row in answer["rows"]} <= {
        "Australia and New Zealand",
        "Melanesia",
        "Micronesia",
        "Polynesia",
    }
    table = httpx.post(f"{auth_url}/query", json={"table": "tpch_lineitem"}, headers=headers)
    assert table.status_code == 404  # not granted


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param(["--kid", "nope"], "no [tokens.keys.nope]", id="unknown-kid"),
        pytest.param(["--kid", "rs"], "--private-key", id="asymmetric-without-private-key"),
    ],
)
def test_token_issue_errors(credentials: Credentials, args: list[str], says: str) -> None:
    auth = ["--auth-file", str(credentials.access_file), "--subject", "x"]
    done = run("token", "issue", *auth, *args)
    assert done.returncode == 2
    assert says in done.stderr


HS = ["--kid", "hs"]  # no ceiling
ED = ["--kid", "ed", "--private-key", "ed.pem"]  # the dashboard's ceiling
ASIA = ["-r", "region=Asia"]
DASHBOARD_GRANT = ["-q", "countries_by_region", *ASIA]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param([*HS, "--ttl", "900"], "--ttl 900 is over max_ttl (600 s)", id="ttl"),
        pytest.param([*HS, "-q", "*", "--admin"], "admin is beyond", id="admin-no-ceiling"),
        pytest.param([*ED, "--admin", *DASHBOARD_GRANT], "admin is beyond", id="admin"),
        pytest.param([*ED, "-q", "country", *ASIA], "queries ['country']", id="query"),
        pytest.param([*ED, "-t", "*", *ASIA], "tables ['*']", id="table"),
        pytest.param(
            [*ED, "-q", "countries_by_region"], "restrictions on ['region']", id="restrict"
        ),
        pytest.param([*ED[:3], "other.pem", *DASHBOARD_GRANT], "InvalidSignature", id="wrong-key"),
        pytest.param([*ED, "--ttl", "600", *DASHBOARD_GRANT], None, id="within"),
        pytest.param([*ED, *DASHBOARD_GRANT], None, id="default-ttl-is-at-most-max-ttl"),
    ],
)
def test_token_issue_refuses_to_mint_what_the_server_would_refuse(
    credentials: Credentials, tmp_path: Path, args: list[str], says: str | None
) -> None:
    """It checks the token against the access file it was given (max_ttl 600, the ed key a
    dashboard's ceiling, hs none) and exits 2 naming the mismatch, printing no token."""
    directory = credentials.access_file.parent
    access, _ = write_access(directory, {}, CEILINGS, name="short-lived", max_ttl=600)
    (tmp_path / "ed.pem").write_bytes(credentials.private_pem("ed"))
    other = Ed25519PrivateKey.generate()  # not the key whose public half the server has
    pem = other.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    (tmp_path / "other.pem").write_bytes(pem)
    args = [str(tmp_path / a) if a.endswith(".pem") else a for a in args]
    done = run("token", "issue", "--auth-file", str(access), "--subject", "u", *args)
    if says is None:
        assert done.returncode == 0, done.stderr
        assert done.stdout.count(".") == 2  # one JWT
        return
    assert done.returncode == 2, done.stdout
    assert says in " ".join(done.stderr.split())
    assert done.stdout == ""


SECRET = "hunter2-correct-horse"  # noqa: S105  # the secret the check must find, never print
CATALOG = """
[sources.db]
kind = "postgres"
database = "shop"
{source_line}

[queries.q]
source = "db"
sql = "{sql}"
"""


@pytest.mark.parametrize(
    ("source_line", "sql", "where"),
    [
        pytest.param(f'password = "{SECRET}"', "SELECT 1", "sources.db.password", id="password"),
        pytest.param(f'api_key = "{SECRET}"', "SELECT 1", "sources.db.api_key", id="key-like"),
        pytest.param(
            "",
            f"SELECT * FROM dblink('host=h password={SECRET}', 'SELECT 1') AS t(a int)",
            "queries.q.sql",
            id="password-in-sql",
        ),
        pytest.param(
            f'host = "postgres://app:{SECRET}@db.internal"',
            "SELECT 1",
            "sources.db.host",
            id="url-credentials",
        ),
    ],
)
def test_catalog_check_flags_a_plain_text_secret(
    tmp_path: Path, source_line: str, sql: str, where: str
) -> None:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG.format(source_line=source_line, sql=sql))
    done = run("catalog", "check", "--catalog", str(catalog))
    assert done.returncode == 2
    message = " ".join(done.stderr.split())  # rich wraps long lines
    assert f"plain-text secret(s) at {where}" in message
    assert '{ env = "VAR" }' in message  # the fix
    assert SECRET not in done.stderr + done.stdout


def test_the_access_file_is_checked_for_plain_text_secrets_too(tmp_path: Path) -> None:
    access = tmp_path / "access.toml"
    access.write_text(
        f'[tokens]\naudience = "a"\n[tokens.keys.k]\nalgorithm = "HS256"\nsecret = "{SECRET}"\n'
    )
    done = run("catalog", "check", LIVEDATA_AUTH_FILE=str(access))
    assert done.returncode == 2
    assert "plain-text secret(s) at tokens.keys.k.secret" in " ".join(done.stderr.split())
    assert SECRET not in done.stderr + done.stdout


HS256_FROM_FILE = 'algorithm = "HS256"\nsecret = { file = "long" }'


@pytest.mark.parametrize(
    ("key_lines", "says"),
    [
        pytest.param('algorithm = "HS256"\nsecret = { file = "short" }', "32 bytes", id="short"),
        pytest.param('algorithm = "RS256"\npublic_key = "ed.pem"', "not a RS256", id="wrong-alg"),
        pytest.param('algorithm = "EdDSA"\npublic_key = "ed.pem"', "private key", id="private"),
        pytest.param('algorithm = "none"\npublic_key = "ed.pem"', "algorithm", id="alg-none"),
        pytest.param('algorithm = "RS256"\nsecret = { env = "X" }', "public_key", id="no-key"),
        pytest.param(
            f'{HS256_FROM_FILE}\nceiling = {{ queries = ["countrys"] }}',
            "tokens.keys.k ceiling: No query named 'countrys'. Did you mean 'country'?",
            id="ceiling-unknown-query",
        ),
        pytest.param(
            f"{HS256_FROM_FILE}\nceiling = {{ admn = true }}",
            "tokens.keys.k.ceiling.admn: unknown field",
            id="ceiling-unknown-field",
        ),
    ],
)
def test_a_broken_token_key_stops_start_up(
    tmp_path: Path, credentials: Credentials, key_lines: str, says: str
) -> None:
    (tmp_path / "ed.pem").write_bytes(credentials.private_pem("ed"))
    (tmp_path / "short").write_text("too-short")
    (tmp_path / "long").write_text("long-enough-for-hs256-thirty-two-bytes")
    access = tmp_path / "access.toml"
    access.write_text(f'[tokens]\naudience = "a"\n[tokens.keys.k]\n{key_lines}\n')
    done = run("catalog", "check", LIVEDATA_AUTH_FILE=str(access))
    assert done.returncode == 2
    assert says in " ".join(done.stderr.split())
    assert "BEGIN PRIVATE KEY" not in done.stderr


OCT_32 = {"kty": "oct", "alg": "HS256", "k": "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE"}


@pytest.mark.parametrize(
    ("jwk", "says"),
    [
        pytest.param({"kty": "oct", "alg": "HS256", "k": "YQ"}, "32 bytes", id="short-secret"),
        pytest.param(None, "private key", id="private"),
        pytest.param(
            {**OCT_32, "ceiling": {"tables": ["lineitem"]}},
            "kid 'k' ceiling: No table named 'lineitem'. Did you mean 'tpch_lineitem'?",
            id="ceiling-unknown-table",
        ),
        pytest.param(
            {**OCT_32, "ceiling": {"admin": True, "admn": True}},
            "ceiling of kid 'k' in",
            id="ceiling-unknown-field",
        ),
    ],
)
def test_a_jwks_file_is_held_to_the_same_rules(
    tmp_path: Path, jwk: dict[str, Any] | None, says: str
) -> None:
    if jwk is None:  # an RSA private key, published by mistake
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = {**json.loads(RSAAlgorithm.to_jwk(private)), "alg": "RS256"}
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "k"}]}))
    access = tmp_path / "access.toml"
    access.write_text('[tokens]\naudience = "a"\njwks = "jwks.json"\n')
    done = run("catalog", "check", LIVEDATA_AUTH_FILE=str(access))
    assert done.returncode == 2
    assert says in " ".join(done.stderr.split())
