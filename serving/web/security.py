"""The workspace's own sign-in: a signed session cookie, CSRF tokens on every form, and a limit on failed sign-ins.

The cookie carries a login token of the store (`serving.store.auth`: random, kept only as a SHA-256 digest, with an
expiry and revocation) plus an HMAC of it under the server's secret, so a forged or altered cookie is refused before
the store is asked. A form's CSRF token is an HMAC of the session's digest (signed in) or of a random nonce kept in
a login cookie (before signing in); both are compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque

SESSION_COOKIE = "payrank_session"
LOGIN_COOKIE = "payrank_login"
COOKIE_PATH = "/app"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Signer:
    """HMAC-SHA256 under one secret (PAYRANK_SESSION_SECRET, else random per process: sessions end on restart)."""

    def __init__(self, secret: str | None = None) -> None:
        self._key = (secret or secrets.token_urlsafe(32)).encode()

    def mac(self, purpose: str, value: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).digest())

    def sign_session(self, token: str) -> str:
        """The cookie's value: token and its signature."""
        return f"{token}.{self.mac('session', token)}"

    def unsign_session(self, cookie: str | None) -> str | None:
        """The token inside a well-signed cookie, else None."""
        if not cookie or cookie.count(".") != 1 or len(cookie) > 200:
            return None
        token, sig = cookie.split(".")
        return token if hmac.compare_digest(sig, self.mac("session", token)) else None

    def csrf_for(self, token: str) -> str:
        """The CSRF token of a signed-in session (bound to the login token's digest)."""
        return self.mac("csrf", hashlib.sha256(token.encode()).hexdigest())

    def login_csrf(self, nonce: str) -> str:
        """The CSRF token of the sign-in form (bound to the nonce in the login cookie)."""
        return self.mac("login", nonce)

    @staticmethod
    def same(a: str | None, b: str) -> bool:
        return a is not None and hmac.compare_digest(a.encode(), b.encode())


class LoginLimiter:
    """At most `limit` failed sign-ins per username and per client address within `window` seconds; then refuse
    until the oldest failure leaves the window. Kept in memory (one worker), so a restart forgets."""

    def __init__(self, limit: int = 5, window: float = 300.0) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def wait_seconds(self, keys: list[str], now: float | None = None) -> int:
        """Seconds until another try is allowed (0: allowed now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            waits = [
                q[0] + self.window - now for k in keys if len(q := self._recent(k, now)) >= self.limit
            ]  # fmt: skip
        return int(max(waits, default=0) + 0.999)

    def fail(self, keys: list[str], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            for k in keys:
                self._recent(k, now).append(now)

    def succeed(self, username_key: str) -> None:
        with self._lock:
            self._failures.pop(username_key, None)
