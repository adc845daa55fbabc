"""Specialists' credentials: passwords hashed with scrypt (stdlib), bearer tokens stored only as SHA-256 digests.

A password hash is `scrypt$<n>$<r>$<p>$<salt b64>$<key b64>`, checked in constant time. A login returns a random
token; the store keeps its digest and expiry, so a leaked database holds neither passwords nor usable tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from serving.store.models import ROLES, ApiToken, Specialist

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # OWASP's minimum for scrypt; about 50 ms per check here
MIN_PASSWORD = 8
USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")


def hash_password(password: str) -> str:
    """A salted scrypt hash of `password`."""
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(key).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True when `password` matches the stored hash (constant-time comparison; a malformed hash never matches)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(key)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))  # checked for unknown users, so timing tells nothing


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", errors="replace")).hexdigest()


def check_username(username: str) -> str:
    """A login name: 1-64 of a-z 0-9 . _ - (lower-cased); ValueError otherwise."""
    name = username.strip().lower()
    if not name or len(name) > 64 or set(name) - USERNAME_CHARS:
        raise ValueError("username: 1-64 characters of a-z, 0-9, '.', '_' or '-'")
    return name


def add_specialist(
    session: Session,
    username: str,
    display_name: str,
    password: str,
    now: datetime,
    role: str = "specialist",
    languages: str = "en",
) -> Specialist:
    """Create a specialist (or supervisor); ValueError naming the field for a bad value or a taken username."""
    name = check_username(username)
    if role not in ROLES:
        raise ValueError(f"role: must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password: at least {MIN_PASSWORD} characters")
    langs = sorted({x.strip().lower() for x in languages.split(",") if x.strip()} or {"en"})
    if any(not (2 <= len(x) <= 8 and x.replace("-", "").isalpha()) for x in langs):
        raise ValueError("languages: ISO 639-1 codes, comma-separated (en,es)")
    if session.get(Specialist, name) is not None:
        raise ValueError(f"username: {name!r} is taken")
    person = Specialist(
        id=name,
        display_name=display_name.strip() or name,
        role=role,
        languages=",".join(langs),
        password_hash=hash_password(password),
        active=True,
        created_at=now,
    )
    session.add(person)
    session.flush()
    return person


def login(session: Session, username: str, password: str, now: datetime, hours: float) -> tuple[str, ApiToken] | None:
    """(token, its row) for valid credentials of an active specialist, else None (same work either way)."""
    try:
        person = session.get(Specialist, check_username(username))
    except ValueError:
        person = None
    ok = verify_password(password, person.password_hash if person is not None else _DUMMY_HASH)
    if person is None or not ok or not person.active:
        return None
    token = secrets.token_urlsafe(32)
    row = ApiToken(
        digest=token_digest(token),
        specialist_id=person.id,
        created_at=now,
        expires_at=now + timedelta(hours=hours),
    )
    session.add(row)
    return token, row


def authenticate(session: Session, token: str, now: datetime) -> Specialist | None:
    """The active specialist a live token belongs to, else None."""
    row = session.get(ApiToken, token_digest(token))
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    person = session.get(Specialist, row.specialist_id)
    return person if person is not None and person.active else None


def revoke(session: Session, token: str, now: datetime) -> None:
    """End a login session."""
    session.execute(
        sa.update(ApiToken)
        .where(ApiToken.digest == token_digest(token), ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
