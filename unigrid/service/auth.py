"""Users, password hashes, tokens and sessions, stored in the decisions database.

Tables (schema ``auth`` of ``settings.decisions_db``)::

    auth.user(username, role, department, password_hash, must_change, disabled, created_at)
    auth.token(token_hash, username, kind, created_at, expires_at, revoked)

Passwords are hashed with scrypt (random salt); tokens and session ids are random secrets of
which only the SHA-256 is stored. There are no default users: ``unigrid users add`` creates one
and prints its one-time password (or, for a downstream service, its token) once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

from unigrid.service.store import dec_connection

Role = Literal["admin", "steward", "auditor", "service"]
ROLES: tuple[str, ...] = ("admin", "steward", "auditor", "service")

DEPARTMENTS: dict[str, str] = {
    "public_security": "公安局",
    "civil_affairs": "民政局",
    "human_resources_social_security": "人社局",
    "health": "卫健委",
    "grid_centre": "网格中心",
}
"""Department code (as in the source contracts) -> Chinese name."""

DDL = """
CREATE SCHEMA IF NOT EXISTS auth;
CREATE TABLE IF NOT EXISTS auth."user" (
    username VARCHAR PRIMARY KEY,
    role VARCHAR NOT NULL,
    department VARCHAR,
    password_hash VARCHAR,
    must_change BOOLEAN NOT NULL DEFAULT TRUE,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS auth.token (
    token_hash VARCHAR PRIMARY KEY,
    username VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE
);
"""

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1
SESSION_HOURS = 8
TOKEN_PREFIX = "ug_"


class AuthError(ValueError):
    """Bad user data (unknown role, steward without department, duplicate user)."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    username: str
    role: str
    department: str | None = None
    must_change: bool = False


def normalise_department(dept: str | None) -> str | None:
    """A department code from a code or its Chinese name (``人社局`` -> the HRSS code)."""
    if dept is None or not dept.strip():
        return None
    d = dept.strip()
    for code, zh in DEPARTMENTS.items():
        if d in (code, zh):
            return code
    return d


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash`` (hex) of a password."""
    salt = salt or secrets.token_bytes(16)
    h = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                       dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${h.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    """Constant-time check of a password against :func:`hash_password` output."""
    if not stored:
        return False
    try:
        algo, n, r, p, salt, h = stored.split("$")
        if algo != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                             p=int(p), dklen=len(bytes.fromhex(h)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), h)


def token_hash(secret: str) -> str:
    """SHA-256 hex of a token or session secret (what is stored)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(session_secret: str) -> str:
    """The CSRF token of a session: an HMAC of the session secret (nothing stored)."""
    return hmac.new(session_secret.encode(), b"unigrid-csrf", hashlib.sha256).hexdigest()[:40]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def add_user(db: Path | str, username: str, role: str, department: str | None = None) -> str:
    """Create a user; return its one-time password (shown once, stored hashed).

    A steward needs a department; other roles have none.
    """
    username = username.strip()
    if not username or len(username) > 64:
        raise AuthError("a user name has 1..64 characters")
    if role not in ROLES:
        raise AuthError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    dept = normalise_department(department)
    if role == "steward" and not dept:
        raise AuthError("a steward needs --department")
    if role != "steward":
        dept = None
    password = secrets.token_urlsafe(12)
    with dec_connection(db) as con:
        con.execute(DDL)
        if con.execute('SELECT 1 FROM auth."user" WHERE username = ?', [username]).fetchall():
            raise AuthError(f"user {username!r} exists")
        con.execute('INSERT INTO auth."user" VALUES (?, ?, ?, ?, TRUE, FALSE, ?)',
                    [username, role, dept, hash_password(password), _now()])
    return password


def set_password(db: Path | str, username: str, password: str, must_change: bool = False) -> None:
    """Replace a user's password (at least 10 characters)."""
    if len(password) < 10:
        raise AuthError("a password has at least 10 characters")
    with dec_connection(db) as con:
        con.execute(DDL)
        n = con.execute('UPDATE auth."user" SET password_hash = ?, must_change = ? '
                        "WHERE username = ? RETURNING username",
                        [hash_password(password), must_change, username]).fetchall()
    if not n:
        raise AuthError(f"no user {username!r}")


def reset_password(db: Path | str, username: str) -> str:
    """A new one-time password for a user (they must change it at the next login)."""
    password = secrets.token_urlsafe(12)
    set_password(db, username, password, must_change=True)
    return password


def disable_user(db: Path | str, username: str) -> None:
    """Disable a user and revoke every token and session of theirs."""
    with dec_connection(db) as con:
        con.execute(DDL)
        n = con.execute('UPDATE auth."user" SET disabled = TRUE WHERE username = ? '
                        "RETURNING username", [username]).fetchall()
        con.execute("UPDATE auth.token SET revoked = TRUE WHERE username = ?", [username])
    if not n:
        raise AuthError(f"no user {username!r}")


def list_users(db: Path | str) -> list[tuple]:
    """(username, role, department, disabled, created_at) of every user."""
    with dec_connection(db) as con:
        con.execute(DDL)
        return con.execute('SELECT username, role, department, disabled, created_at '
                           'FROM auth."user" ORDER BY username').fetchall()


def issue_token(db: Path | str, username: str, kind: str = "api", days: float = 90) -> str:
    """A new random token (``api``) or session id (``session``); only its hash is stored."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with dec_connection(db) as con:
        con.execute(DDL)
        if not con.execute('SELECT 1 FROM auth."user" WHERE username = ? AND NOT disabled',
                           [username]).fetchall():
            raise AuthError(f"no active user {username!r}")
        con.execute("INSERT INTO auth.token VALUES (?, ?, ?, ?, ?, FALSE)",
                    [token_hash(secret), username, kind, _now(),
                     _now() + timedelta(days=days)])
    return secret


def revoke_token(db: Path | str, secret: str) -> None:
    """Revoke one token or session (logout)."""
    with dec_connection(db) as con:
        con.execute(DDL)
        con.execute("UPDATE auth.token SET revoked = TRUE WHERE token_hash = ?",
                    [token_hash(secret)])


def principal_for_token(db: Path | str, secret: str,
                        kind: str | None = None) -> tuple[Principal, datetime] | None:
    """The user of a valid (unexpired, unrevoked, user enabled) token, with its expiry."""
    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    with dec_connection(db) as con:
        con.execute(DDL)
        rows = con.execute(
            'SELECT u.username, u.role, u.department, u.must_change, t.expires_at, t.kind '
            'FROM auth.token t JOIN auth."user" u USING (username) '
            "WHERE t.token_hash = ? AND NOT t.revoked AND NOT u.disabled AND t.expires_at > ?",
            [token_hash(secret), _now()]).fetchall()
    if not rows or (kind is not None and rows[0][5] != kind):
        return None
    u, role, dept, must_change, expires, _ = rows[0]
    return Principal(u, role, dept, bool(must_change)), expires


def check_login(db: Path | str, username: str, password: str) -> Principal | None:
    """The user if the password is right and the user is enabled (else None)."""
    with dec_connection(db) as con:
        con.execute(DDL)
        rows = con.execute('SELECT username, role, department, password_hash, must_change '
                           'FROM auth."user" WHERE username = ? AND NOT disabled',
                           [username]).fetchall()
    if not rows:
        verify_password(password, hash_password("x"))  # same time whether or not the user exists
        return None
    u, role, dept, stored, must_change = rows[0]
    if not verify_password(password, stored):
        return None
    return Principal(u, role, dept, bool(must_change))
