"""The access log (PIPL): who looked at which person's data, when, and for what purpose.

Written to the decisions database (``settings.decisions_db``), the one store that takes human
writes during the day: the published master is read-only for its readers and replaced nightly.
Each publish copies the log into the master's ``audit.access_log`` for readers with the right.
Entries hold the opaque person_id, never an ID number or a name.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import duckdb

from warehouse.connection import connect

DDL = """
CREATE SCHEMA IF NOT EXISTS audit;
CREATE SEQUENCE IF NOT EXISTS audit.access_seq START 1;
CREATE TABLE IF NOT EXISTS audit.access_log (
    access_id BIGINT PRIMARY KEY DEFAULT nextval('audit.access_seq'),
    "at" TIMESTAMPTZ NOT NULL,
    "user" VARCHAR NOT NULL,
    role VARCHAR,
    action VARCHAR,
    person_id VARCHAR,
    purpose VARCHAR
);
"""


class AccessDenied(PermissionError):
    """An unmasked access without a user or a stated purpose."""


def log_access(db: Path | str, user: str, role: str, action: str, person_id: str | None,
               purpose: str, at: datetime | None = None) -> int:
    """Append one access entry; return its id. ``user`` and ``purpose`` are mandatory."""
    if not (user or "").strip():
        raise AccessDenied("an access to personal data needs a user")
    if not (purpose or "").strip():
        raise AccessDenied("an access to personal data needs a stated purpose")
    con = connect(db)
    try:
        con.execute(DDL)
        row = con.execute(
            'INSERT INTO audit.access_log ("at", "user", role, action, person_id, purpose) '
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING access_id",
            [at or datetime.now(timezone.utc), user, role, action, person_id, purpose]).fetchone()
        return int(row[0])
    finally:
        con.close()


def read_access_log(db: Path | str, limit: int = 1000) -> list[tuple]:
    """The newest entries first (empty when nothing was logged yet)."""
    p = Path(db)
    if not p.exists():
        return []
    con = connect(p, read_only=True)
    try:
        try:
            return con.execute('SELECT access_id, "at", "user", role, action, person_id, purpose '
                               'FROM audit.access_log ORDER BY access_id DESC LIMIT ?',
                               [limit]).fetchall()
        except duckdb.CatalogException:
            return []
    finally:
        con.close()
