"""Human writes made since the last publish, laid over the published master.

The review queue and the findings in the master are as of the last publish; decisions and
finding reviews made since then live in the decisions database. The service reads those (cached
for ``ttl`` seconds, dropped at once after a write of this process) so that a decided pair
leaves the queue and a dismissed finding shows dismissed immediately; the next run then
publishes them.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from unigrid.service.queries import jsonable
from unigrid.service.store import retry_locked


def pair_key(a_source: str, a_key: str, b_source: str, b_key: str) -> tuple[str, str, str, str]:
    """Unordered record pair as a canonical tuple (smaller (source, key) first)."""
    a, b = (a_source, a_key), (b_source, b_key)
    lo, hi = (a, b) if a <= b else (b, a)
    return (*lo, *hi)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: jsonable(None if (not isinstance(v, (list, dict)) and pd.isna(v)) else v)
             for k, v in r.items()} for r in df.to_dict("records")]


class Overlay:
    """Cached effective decisions and latest finding reviews of the decisions database."""

    def __init__(self, db: Path | str, ttl: float = 2.0):
        self.db = Path(db)
        self.ttl = ttl
        self._lock = threading.Lock()
        self._at = 0.0
        self._decisions: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self._reviews: dict[str, dict[str, Any]] = {}

    def invalidate(self) -> None:
        """Forget the cache (after this process wrote a decision or a review)."""
        with self._lock:
            self._at = 0.0

    def _refresh(self) -> None:
        from matching.decisions import effective_decisions
        from quality.rules.review import latest_reviews

        with self._lock:
            if time.monotonic() - self._at < self.ttl:
                return
            dec = retry_locked(lambda: effective_decisions(self.db))
            rev = retry_locked(lambda: latest_reviews(self.db))
            self._decisions = {pair_key(d["left_source"], d["left_key"], d["right_source"],
                                        d["right_key"]): d for d in _records(dec)}
            self._reviews = {r["finding_id"]: r for r in _records(rev)}
            self._at = time.monotonic()

    def decision(self, a_source: str, a_key: str, b_source: str, b_key: str
                 ) -> dict[str, Any] | None:
        """The effective decision of a pair (None if undecided or undone)."""
        self._refresh()
        return self._decisions.get(pair_key(a_source, a_key, b_source, b_key))

    def review(self, finding_id: str) -> dict[str, Any] | None:
        """The latest auditor review of a finding."""
        self._refresh()
        return self._reviews.get(finding_id)


def _when(v: Any) -> datetime | None:
    """A timestamp (datetime or ISO text) as an aware datetime (naive taken as UTC)."""
    if v is None:
        return None
    d = v if isinstance(v, datetime) else datetime.fromisoformat(str(v))
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)


def apply_review(finding: dict[str, Any], review: dict[str, Any] | None) -> dict[str, Any]:
    """The finding with a review newer than its published status applied.

    A dismissal applies only while the evidence is the one the auditor saw (same hash), as the
    check stage does.
    """
    if review is None:
        return finding
    pub_at, rev_at = _when(finding.get("status_at")), _when(review.get("at"))
    if pub_at is not None and rev_at is not None and rev_at <= pub_at:
        return finding
    if (review.get("status") == "dismissed" and review.get("evidence_hash")
            and finding.get("evidence_hash")
            and review["evidence_hash"] != finding["evidence_hash"]):
        return finding
    out = dict(finding)
    out["status"] = review.get("status")
    out["dismissed_reason"] = review.get("reason") if review.get("status") == "dismissed" else None
    out["status_by"] = review.get("user")
    out["status_at"] = review.get("at")
    return out
