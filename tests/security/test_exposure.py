"""Secure by default, through the real command line: without credentials the server serves
loopback only and says so; a public address without authentication refuses to start.

The cases that pass the check use 192.0.2.10 (TEST-NET-1, RFC 5737), an address this
machine does not have: uvicorn then fails to bind, which shows the check let it through
without exposing anything."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.cli_server import LIVEDATA, CliServer
from tests.security.conftest import Credentials

REFUSAL = "Refusing to serve"
UNASSIGNED = "192.0.2.10"


def serve(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LIVEDATA, "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LIVEDATA_AUTH_FILE": "", **env},
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "env"),
    [
        pytest.param(["--host", "0.0.0.0"], {}, id="all-ipv4"),  # noqa: S104  # refused
        pytest.param(["--host", "::"], {}, id="all-ipv6"),
        pytest.param([], {"LIVEDATA_HOST": UNASSIGNED}, id="from-the-environment"),
        pytest.param(["--host", "db.example"], {}, id="a-name"),
    ],
)
def test_a_public_address_without_authentication_refuses_to_start(
    args: list[str], env: dict[str, str]
) -> None:
    done = serve(*args, **env)
    assert done.returncode == 2, done.stderr
    assert REFUSAL in done.stderr
    assert "LIVEDATA_AUTH_FILE" in done.stderr  # and says how to fix it
    assert "Uvicorn running" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--allow-public-without-auth"], id="explicit-flag"),
        pytest.param(["--auth-file", "ACCESS"], id="with-credentials"),
    ],
)
def test_the_flag_or_credentials_let_a_public_address_through(
    args: list[str], credentials: Credentials
) -> None:
    args = [str(credentials.access_file) if a == "ACCESS" else a for a in args]
    done = serve("--host", UNASSIGNED, *args)
    assert REFUSAL not in done.stderr
    assert "error while attempting to bind" in done.stderr  # got as far as binding


def test_without_credentials_it_serves_loopback_and_says_so(
    tmp_path: Path, cli_server: Callable[..., CliServer]
) -> None:
    server = cli_server(tmp_path / "cache", LIVEDATA_AUTH_FILE="")
    log = "".join(server.log)
    assert "No credentials configured" in log
    assert "loopback" in log
    response = httpx.post(f"{server.url}/query", json={"table": "world_country_list"})
    assert response.status_code == 200


def test_a_broken_access_file_stops_start_up(tmp_path: Path) -> None:
    access = tmp_path / "access.toml"
    access.write_text('[api_keys.web]\nhash = "md5:abc"\n')
    done = serve("--auth-file", str(access))
    assert done.returncode == 2
    assert str(access) in done.stderr
    assert "api_keys.web.hash" in done.stderr
    assert "livedata keys new" in done.stderr
