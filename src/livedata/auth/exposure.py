"""Secure by default: without credentials, serve the loopback interface only."""

from __future__ import annotations

import ipaddress

from livedata.errors import UnsafeExposure


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost"; a name that is not an address is not trusted
    to resolve to loopback everywhere."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, authenticated: bool, allow_public_without_auth: bool) -> None:
    if authenticated or allow_public_without_auth or is_loopback(host):
        return
    raise UnsafeExposure(
        f"Refusing to serve {host} without authentication: anyone who reaches it could read "
        "every query and manage the cache. Set LIVEDATA_AUTH_FILE (see `livedata keys new`), "
        "serve 127.0.0.1, or pass --allow-public-without-auth if a proxy in front "
        "authenticates."
    )
