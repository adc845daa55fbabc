"""API keys: the `X-API-Key` header, checked against SHA-256 digests in constant time.

Keys are configured as digests (PAYRANK_API_KEY_HASHES) or, for convenience, as plain keys (PAYRANK_API_KEYS)
that are hashed once at start; neither is ever logged. Without any key the app refuses to start, unless
PAYRANK_ALLOW_NO_AUTH=true (local experiments only).

The key is checked by `ApiKeyMiddleware` before routing and before a byte of the body is read, so an
unauthenticated request learns nothing from how its body is judged (malformed JSON without a key is a 401, not
a 422). The `require_api_key` dependency checks again and declares the scheme in the OpenAPI schema.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Collection
from typing import Annotated

from fastapi import HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.api.settings import ApiSettings

HEADER = "X-API-Key"
api_key_header = APIKeyHeader(name=HEADER, auto_error=False, description="An API key; see docs/api.md")

HOW_TO_MAKE_A_KEY = """make a key, and its SHA-256 digest for the server:
  python -c "import secrets; print(secrets.token_urlsafe(32))"
  python -c "import hashlib; print(hashlib.sha256(b'THE-KEY').hexdigest())"
start the server with PAYRANK_API_KEY_HASHES=<digest> (several: comma-separated or a JSON list), or with
PAYRANK_API_KEYS=<key> (hashed at start), and send the key in the X-API-Key header.
Local experiments only: PAYRANK_ALLOW_NO_AUTH=true serves without keys."""


class AuthConfigError(ValueError):
    """No API key is configured and unauthenticated serving was not allowed explicitly."""


def hash_key(key: str | bytes) -> str:
    """The SHA-256 hex digest of a key, as PAYRANK_API_KEY_HASHES expects it."""
    return hashlib.sha256(key.encode() if isinstance(key, str) else key).hexdigest()


def key_digests(settings: ApiSettings) -> list[bytes]:
    """Every configured key as a raw SHA-256 digest; raises AuthConfigError when there is none and auth is on."""
    digests = [bytes.fromhex(h) for h in settings.api_key_hashes]
    digests += [hashlib.sha256(k.get_secret_value().encode()).digest() for k in settings.api_keys]
    if not digests and not settings.allow_no_auth:
        raise AuthConfigError("no API key configured: refusing to serve without authentication.\n" + HOW_TO_MAKE_A_KEY)
    return digests


def key_matches(given: str, digests: list[bytes]) -> bool:
    """True when `given` hashes to one of `digests`; compares against every digest in constant time."""
    # headers arrive decoded as latin-1; encoding back recovers the bytes the client sent
    candidate = hashlib.sha256(given.encode("latin-1", errors="replace")).digest()
    found = False
    for digest in digests:
        found |= hmac.compare_digest(candidate, digest)
    return found


async def require_api_key(request: Request, key: Annotated[str | None, Security(api_key_header)] = None) -> None:
    """Dependency: 401 unless the request carries a valid key (or no key is configured and that is allowed)."""
    digests: list[bytes] = request.app.state.key_digests
    if not digests:
        return
    if key is None or not key_matches(key, digests):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=f"missing or invalid API key (send it in the {HEADER} header)",
            headers={"WWW-Authenticate": HEADER},
        )


UNAUTHORIZED = {"detail": f"missing or invalid API key (send it in the {HEADER} header)"}


class ApiKeyMiddleware:
    """401 for every request to a path outside `open_paths` without a valid key, before the body is read.

    Paths under `own_auth_prefixes` (the specialists' workspace) authenticate people by their own credentials.
    """

    def __init__(
        self,
        app: ASGIApp,
        digests: list[bytes],
        open_paths: Collection[str],
        own_auth_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.digests = digests
        self.open_paths = frozenset(open_paths)
        self.own_auth_prefixes = own_auth_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or not self.digests
            or path in self.open_paths
            or path.startswith(self.own_auth_prefixes)
        ):
            await self.app(scope, receive, send)
            return
        given = [v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == HEADER.lower().encode()]
        if len(given) == 1 and key_matches(given[0], self.digests):
            await self.app(scope, receive, send)
            return
        body = json.dumps(UNAUTHORIZED).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", HEADER.encode()),
        ]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})
