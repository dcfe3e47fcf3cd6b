"""Human review decisions: an append-only table in its own DuckDB file.

``audit.decision(decision_id, left_source, left_key, right_source, right_key, verdict, user,
reason, decided_at, supersedes)``. A verdict is ``same``, ``different``, ``unsure`` or ``undo``
(``undo`` names the decision it cancels in ``supersedes``). Rows are never updated or deleted.

The effective decision of a record pair is its latest decision that no ``undo`` cancelled.
The pair is unordered: ``(a, b)`` and ``(b, a)`` are the same pair. Connections are short-lived
so that the review CLI and a nightly run can take turns on the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from warehouse.connection import connect

VERDICTS = ("same", "different", "unsure")
"""Verdicts a reviewer can give (``undo`` is written by :func:`undo_decision`)."""

_DDL = """
CREATE SCHEMA IF NOT EXISTS audit;
CREATE TABLE IF NOT EXISTS audit.decision (
    decision_id BIGINT PRIMARY KEY,
    left_source VARCHAR NOT NULL,
    left_key VARCHAR NOT NULL,
    right_source VARCHAR NOT NULL,
    right_key VARCHAR NOT NULL,
    verdict VARCHAR NOT NULL CHECK (verdict IN ('same', 'different', 'unsure', 'undo')),
    "user" VARCHAR NOT NULL,
    reason VARCHAR,
    decided_at TIMESTAMPTZ NOT NULL,
    supersedes BIGINT
);
"""


class DecisionError(ValueError):
    """A decision cannot be recorded (unknown verdict, same record twice, unknown id to undo)."""


@dataclass(frozen=True)
class RecordRef:
    """One source record: the contract name and the record's key as text."""

    source: str
    key: str

    @staticmethod
    def parse(text: str) -> "RecordRef":
        """Parse ``SOURCE:KEY`` (the key may itself contain ``:``)."""
        source, sep, key = text.partition(":")
        if not sep or not source or not key:
            raise DecisionError(f"record reference {text!r} is not SOURCE:KEY")
        return RecordRef(source.strip(), key.strip())

    def __str__(self) -> str:
        return f"{self.source}:{self.key}"


def ensure_table(db: Path | str) -> None:
    """Create ``audit.decision`` in the decisions DB if missing."""
    con = connect(db)
    try:
        con.execute(_DDL)
    finally:
        con.close()


def _ordered(left: RecordRef, right: RecordRef) -> tuple[RecordRef, RecordRef]:
    """Canonical order of an unordered pair (smaller ``(source, key)`` first)."""
    return (left, right) if (left.source, left.key) <= (right.source, right.key) else (right, left)


def _append(db: Path | str, left: RecordRef, right: RecordRef, verdict: str, user: str,
            reason: str | None, supersedes: int | None, at: datetime | None) -> int:
    con = connect(db)
    try:
        con.execute(_DDL)
        con.execute("BEGIN TRANSACTION")
        (next_id,) = con.execute(
            "SELECT coalesce(max(decision_id), 0) + 1 FROM audit.decision").fetchall()[0]
        con.execute(
            "INSERT INTO audit.decision VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [next_id, left.source, left.key, right.source, right.key, verdict, user, reason,
             at or datetime.now(timezone.utc), supersedes])
        con.execute("COMMIT")
        return int(next_id)
    finally:
        con.close()


def record_decision(db: Path | str, left: RecordRef, right: RecordRef, verdict: str, user: str,
                    reason: str | None = None, at: datetime | None = None) -> int:
    """Append a reviewer's verdict on a record pair; return the new ``decision_id``."""
    if verdict not in VERDICTS:
        raise DecisionError(f"verdict must be one of {VERDICTS}, not {verdict!r}")
    if not user or not user.strip():
        raise DecisionError("a decision needs the reviewer's user name")
    if (left.source, left.key) == (right.source, right.key):
        raise DecisionError("a decision needs two different records")
    lo, hi = _ordered(left, right)
    return _append(db, lo, hi, verdict, user.strip(), reason, None, at)


def undo_decision(db: Path | str, decision_id: int, user: str, reason: str | None = None,
                  at: datetime | None = None) -> int:
    """Cancel decision ``decision_id`` by appending an ``undo`` row; return the new id."""
    if not user or not user.strip():
        raise DecisionError("an undo needs the reviewer's user name")
    ensure_table(db)
    con = connect(db, read_only=True)
    try:
        row = con.execute(
            "SELECT left_source, left_key, right_source, right_key, verdict FROM audit.decision "
            "WHERE decision_id = ?", [decision_id]).fetchall()
        row = row[0] if row else None
        undone = con.execute("SELECT count(*) FROM audit.decision WHERE verdict = 'undo' "
                             "AND supersedes = ?", [decision_id]).fetchall()[0][0]
    finally:
        con.close()
    if row is None:
        raise DecisionError(f"no decision {decision_id}")
    if row[4] == "undo":
        raise DecisionError(f"decision {decision_id} is itself an undo; record a new verdict")
    if undone:
        raise DecisionError(f"decision {decision_id} is already undone")
    return _append(db, RecordRef(row[0], row[1]), RecordRef(row[2], row[3]), "undo",
                   user.strip(), reason, decision_id, at)


def all_decisions(db: Path | str) -> pd.DataFrame:
    """Every decision row, oldest first (an empty frame if the file does not exist)."""
    if not Path(db).exists():
        return pd.DataFrame(columns=["decision_id", "left_source", "left_key", "right_source",
                                     "right_key", "verdict", "user", "reason", "decided_at",
                                     "supersedes"])
    ensure_table(db)
    con = connect(db, read_only=True)
    try:
        return con.execute("SELECT * FROM audit.decision ORDER BY decision_id").df()
    finally:
        con.close()


EFFECTIVE_SQL = """
SELECT d.left_source, d.left_key, d.right_source, d.right_key, d.verdict, d.decision_id,
       d."user", d.reason, d.decided_at
FROM {table} d
WHERE d.verdict <> 'undo'
  AND d.decision_id NOT IN (SELECT supersedes FROM {table} WHERE verdict = 'undo'
                            AND supersedes IS NOT NULL)
QUALIFY row_number() OVER (PARTITION BY d.left_source, d.left_key, d.right_source, d.right_key
                           ORDER BY d.decided_at DESC, d.decision_id DESC) = 1
"""
"""The effective decision per pair: latest one not cancelled by an undo."""


def effective_decisions(db: Path | str) -> pd.DataFrame:
    """One row per decided pair: its effective verdict (``same``/``different``/``unsure``)."""
    cols = ["left_source", "left_key", "right_source", "right_key", "verdict", "decision_id",
            "user", "reason", "decided_at"]
    if not Path(db).exists():
        return pd.DataFrame(columns=cols)
    ensure_table(db)
    con = connect(db, read_only=True)
    try:
        return con.execute(EFFECTIVE_SQL.format(table="audit.decision")).df()[cols]
    finally:
        con.close()
