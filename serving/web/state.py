"""The workspace's per-app state: its settings, cookie signer, sign-in limiter, templates, the book and charts.

Settings (prefix PAYRANK_, environment or `.env`): `PAYRANK_SESSION_SECRET` (signs cookies; default a random
secret per process, so sign-ins end on restart), `PAYRANK_WORKSPACE_BOOK` (the book behind insights, account
history and publishing; default the demo book under PAYRANK_HOME when it exists), `PAYRANK_LOGIN_LIMIT` failed
sign-ins per `PAYRANK_LOGIN_WINDOW_SECONDS` per username (four times as many per client address).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving.web.security import LoginLimiter, Signer

HERE = Path(__file__).parent
CACHE_SECONDS = 600.0
ADDRESS_FACTOR = 4


class WebSettings(BaseSettings):
    """What only the browser workspace reads."""

    model_config = SettingsConfigDict(env_prefix="PAYRANK_", env_file=".env", extra="ignore")

    session_secret: SecretStr | None = None
    workspace_book: str | None = None
    login_limit: int = Field(5, ge=1, le=1000)
    login_window_seconds: float = Field(300.0, gt=0)


def _money(value: Any) -> str:
    if value is None:
        return "—"
    return f"−${-float(value):,.2f}" if float(value) < 0 else f"${float(value):,.2f}"


def _pct(value: Any) -> str:
    return "—" if value is None else f"{100 * float(value):.0f}%"


def make_env() -> jinja2.Environment:
    """Jinja2 with autoescaping on for every template (a note holding `<script>` is shown as text)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    env.filters["money"] = _money
    env.filters["pct"] = _pct
    return env


class WebState:
    """Built once per app (`serving.web.register`)."""

    def __init__(self, settings: WebSettings, home: Path) -> None:
        self.settings = settings
        secret = settings.session_secret.get_secret_value() if settings.session_secret else None
        self.signer = Signer(secret)
        window = settings.login_window_seconds
        self.user_limiter = LoginLimiter(settings.login_limit, window)
        # an address may be shared (an office behind one proxy): a looser limit, so one person cannot lock out all
        self.addr_limiter = LoginLimiter(settings.login_limit * ADDRESS_FACTOR, window)
        self.env = make_env()
        self.home = home
        self._lock = threading.RLock()  # a maker may itself ask for a cached value (a chart asks for the book)
        self._cache: dict[str, tuple[float, Any]] = {}

    @property
    def book_source(self) -> str | None:
        """The configured book, else the demo book when it exists, else None."""
        if self.settings.workspace_book:
            return self.settings.workspace_book
        demo = self.home / "demo-book"
        return str(demo) if demo.is_dir() else None

    def cached(self, key: str, make: Callable[[], Any], seconds: float = CACHE_SECONDS) -> Any:
        """`make()`'s value, kept for `seconds` (one maker at a time per app: a cold chart is drawn once)."""
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < seconds:
            return hit[1]
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < seconds:
                return hit[1]
            value = make()
            self._cache[key] = (time.monotonic(), value)
            return value

    def forget(self) -> None:
        """Drop cached books and charts (after publishing)."""
        with self._lock:
            self._cache.clear()

    def book(self) -> Any:
        """The book (loaded and validated once, then cached), or None when none is configured."""
        src = self.book_source
        if src is None:
            return None
        from features.load import load_book

        return self.cached(f"book:{src}", lambda: load_book(src))
