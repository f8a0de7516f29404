"""From an ``Authorization`` header to a ``Caller``, or ``Unauthenticated``.

Credentials come from ``Authorization: Bearer <credential>`` only: an API key (``ld_...``)
or an embed token (a JWT). Every failure raises ``Unauthenticated`` with one public message;
its ``reason`` (never the credential) is for the server's log.
"""

from __future__ import annotations

from pathlib import Path

from livedata.auth import keys
from livedata.auth.access import AccessFile, load_access
from livedata.auth.caller import Caller
from livedata.auth.tokens import TokenVerifier
from livedata.catalog import Catalog
from livedata.errors import Unauthenticated


class Authenticator:
    def __init__(self, access: AccessFile) -> None:
        self.access = access
        self.tokens = None if access.tokens is None else TokenVerifier.from_config(access.tokens)

    @classmethod
    def from_file(cls, path: Path | None, catalog: Catalog) -> Authenticator | None:
        """None when no access file is configured: authentication is off (loopback only)."""
        return None if path is None else cls(load_access(path, catalog))

    def authenticate(self, authorization: str | None) -> Caller | None:
        """The caller behind the header; None when the request carries no credentials."""
        if authorization is None:
            return None
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise Unauthenticated("Authorization is not 'Bearer <credential>'")
        key_id = keys.key_id(credential)
        if key_id is not None:
            return self._api_key(key_id, credential)
        if self.tokens is None:
            raise Unauthenticated("not an API key, and no [tokens] are configured")
        return self.tokens.verify(credential)

    def _api_key(self, key_id: str, presented: str) -> Caller:
        stored = self.access.api_keys.get(key_id)
        if not keys.matches(presented, None if stored is None else stored.hash):
            raise Unauthenticated(f"API key {key_id!r} is unknown or its secret is wrong")
        assert stored is not None
        return stored.caller(f"key:{key_id}")
