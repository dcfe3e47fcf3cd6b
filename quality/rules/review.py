"""Auditors' statuses of findings: an append-only table in the decisions database.

``audit.finding_review(review_id, finding_id, status, reason, user, at, evidence_hash)`` lives
in ``settings.decisions_db`` (a DuckDB file apart from the work and master databases, opened
with short-lived connections), because auditors write while readers read the master. A review
is never updated or deleted: a later review supersedes an earlier one. ``evidence_hash`` is the
hash of the finding's evidence the auditor saw: the check stage keeps a dismissed finding
dismissed while its evidence hash is unchanged, and reopens it when the evidence changes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warehouse.connection import connect, table_exists

STATUSES = ("open", "confirmed", "dismissed")
"""Statuses an auditor may set (``open`` undoes an earlier confirm or dismiss)."""

DDL = """
CREATE SCHEMA IF NOT EXISTS audit;
CREATE SEQUENCE IF NOT EXISTS audit.finding_review_seq START 1;
CREATE TABLE IF NOT EXISTS audit.finding_review (
    review_id BIGINT PRIMARY KEY DEFAULT nextval('audit.finding_review_seq'),
    finding_id VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    reason VARCHAR,
    "user" VARCHAR NOT NULL,
    "at" TIMESTAMPTZ NOT NULL,
    evidence_hash VARCHAR
);
"""

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

REVIEW_COLUMNS = ("review_id", "finding_id", "status", "reason", "user", "at", "evidence_hash")


class ReviewError(ValueError):
    """An invalid review (unknown status, dismissal without a reason)."""


def record_review(decisions_db: Path | str, finding_id: str, status: str, user: str,
                  reason: str | None = None, evidence_hash: str | None = None,
                  at: datetime | None = None) -> int:
    """Append one auditor review; return its ``review_id``.

    A dismissal needs a reason. ``evidence_hash`` should be the hash shown with the finding
    (``audit.finding.evidence_hash``): a later change of evidence reopens a dismissed finding.
    """
    if status not in STATUSES:
        raise ReviewError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
    if status == "dismissed" and not (reason or "").strip():
        raise ReviewError("a dismissal needs a reason")
    if not user.strip():
        raise ReviewError("a review needs a user")
    at = at or datetime.now(timezone.utc)
    con = connect(decisions_db)
    try:
        con.execute(DDL)
        row = con.execute(
            'INSERT INTO audit.finding_review (finding_id, status, reason, "user", "at", '
            "evidence_hash) VALUES (?, ?, ?, ?, ?, ?) RETURNING review_id",
            [finding_id, status, reason, user, at, evidence_hash]).fetchall()
        return int(row[0][0])
    finally:
        con.close()


LATEST_SQL = ('SELECT review_id, finding_id, status, reason, "user", "at", evidence_hash '
              "FROM audit.finding_review QUALIFY row_number() OVER (PARTITION BY finding_id "
              "ORDER BY \"at\" DESC, review_id DESC) = 1 ORDER BY finding_id")
"""The latest review of each finding (columns :data:`REVIEW_COLUMNS`)."""


def latest_review_rows(decisions_db: Path | str) -> list[tuple[Any, ...]]:
    """The latest review of each finding as tuples of :data:`REVIEW_COLUMNS`; [] if none.

    Opens the file read-only and briefly; a missing file or table means no reviews. Plain
    tuples (no pandas): the check stage reads them on every run.
    """
    p = Path(decisions_db)
    if not p.exists():
        return []
    con = connect(p, read_only=True)
    try:
        if not table_exists(con, "audit", "finding_review"):
            return []
        return con.execute(LATEST_SQL).fetchall()
    finally:
        con.close()


def latest_reviews(decisions_db: Path | str) -> "pd.DataFrame":
    """The latest review of each finding (columns :data:`REVIEW_COLUMNS`); empty if none.

    Opens the file read-only and briefly; a missing file or table means no reviews.
    """
    import pandas as pd

    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in REVIEW_COLUMNS})
    p = Path(decisions_db)
    if not p.exists():
        return empty
    con = connect(p, read_only=True)
    try:
        if not table_exists(con, "audit", "finding_review"):
            return empty
        return con.execute(LATEST_SQL).df()
    finally:
        con.close()
