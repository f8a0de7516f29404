"""From an ``Authorization`` header to a ``Caller``, or ``Unauthenticated``.

Credentials come from ``Authorization: Bearer <credential>`` only: an API key (``ld_...``)
or an embed token (a JWT). Every failure raises ``Unauthenticated`` with one public message;
its ``reason`` (never the credential) is for the server's log.

Parsing is as strict as the RFCs: only SP and HTAB are trimmed (RFC 9110's optional
whitespace; ``str.strip()`` would also drop NBSP, NEL and other Unicode spaces, so a key with
junk after it would pass), the scheme is case-insensitive, one or more SP separate it from
the credential, and the credential is an RFC 6750 b64token. Our API keys and JWTs are all
b64tokens, so anything else is not one of ours.

Verified credentials are remembered (``MEMO_SIZE`` of them, oldest dropped first) so that a
dashboard's repeated requests skip the signature check (~0.3 ms for an RS256 token); each is
remembered only until it expires, and only for the life of this ``Authenticator``, which is
built from the access file read at start-up. A failure is never remembered.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from livedata.auth import keys
from livedata.auth.access import AccessFile, load_access
from livedata.auth.caller import Caller
from livedata.auth.tokens import TokenVerifier
from livedata.catalog import Catalog
from livedata.errors import Unauthenticated

_OPTIONAL_WHITESPACE = " \t"  # RFC 9110 5.6.3: OWS is SP and HTAB, nothing else
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 2.1


MEMO_SIZE = 4096
_NEVER = float("inf")  # API keys do not expire; the access file is read once


class Authenticator:
    def __init__(
        self, access: AccessFile, catalog: Catalog, clock: Callable[[], float] = time.time
    ) -> None:
        self.access = access
        tokens = access.tokens
        self.tokens = None if tokens is None else TokenVerifier.from_config(tokens, catalog)
        self.clock = clock
        self._verified: dict[str, tuple[Caller, float]] = {}  # header -> (caller, expiry)

    @classmethod
    def from_file(
        cls, path: Path | None, catalog: Catalog, clock: Callable[[], float] = time.time
    ) -> Authenticator | None:
        """None when no access file is configured: authentication is off (loopback only)."""
        return None if path is None else cls(load_access(path, catalog), catalog, clock)

    def authenticate(self, authorization: str | None) -> Caller | None:
        """The caller behind the header; None when the request carries no credentials."""
        if authorization is None:
            return None
        now = self.clock()
        remembered = self._verified.get(authorization)
        if remembered is not None and now < remembered[1]:
            return remembered[0]
        self._verified.pop(authorization, None)
        caller, expiry = self._verify(authorization, now)
        if len(self._verified) >= MEMO_SIZE:
            del self._verified[next(iter(self._verified))]
        self._verified[authorization] = caller, expiry
        return caller

    def _verify(self, authorization: str, now: float) -> tuple[Caller, float]:
        scheme, _, credential = authorization.strip(_OPTIONAL_WHITESPACE).partition(" ")
        credential = credential.lstrip(" ")
        if scheme.lower() != "bearer" or not _B64TOKEN.fullmatch(credential):
            raise Unauthenticated("Authorization is not 'Bearer <b64token>'")
        key_id = keys.key_id(credential)
        if key_id is not None:
            return self._api_key(key_id, credential), _NEVER
        if self.tokens is None:
            raise Unauthenticated("not an API key, and no [tokens] are configured")
        return self.tokens.verify(credential, now)

    def _api_key(self, key_id: str, presented: str) -> Caller:
        stored = self.access.api_keys.get(key_id)
        if not keys.matches(presented, None if stored is None else stored.hash):
            raise Unauthenticated(f"API key {key_id!r} is unknown or its secret is wrong")
        assert stored is not None
        return stored.caller(f"key:{key_id}")
