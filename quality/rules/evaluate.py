"""Per-rule precision and recall of the findings against the generator's planted anomalies.

Truth: ``truth/anomalies.parquet`` (one row per anomaly and source record, with the TRUE person)
and ``truth/records.parquet``. Scoring is by evidence records, so it does not depend on the
pipeline's person ids:

- a finding is a true positive when one of its evidence records ``(source, source_key)`` is a
  planted anomaly record of the same rule;
- a planted anomaly (rule, true person) is found when one of its anomaly records is in the
  evidence of a finding of that rule;
- precision = true-positive findings / findings; recall = planted persons found / planted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from quality.rules.catalog import RULES

if TYPE_CHECKING:  # pragma: no cover
    from unigrid.settings import Settings

EVAL_COLUMNS = ("rule", "planted", "found", "true_pos", "precision", "recall")


def evidence_records(findings: pd.DataFrame) -> pd.DataFrame:
    """One row per (finding_id, rule, source, source_key) from the evidence JSON."""
    rows = []
    for fid, rule, ev in zip(findings["finding_id"], findings["rule"], findings["evidence"]):
        recs = (json.loads(ev) if isinstance(ev, str) else ev or {}).get("records") or []
        rows += [(fid, rule, r["source"], str(r["source_key"])) for r in recs]
    return pd.DataFrame(rows, columns=["finding_id", "rule", "source", "source_key"])


def score_findings(findings: pd.DataFrame, anomalies: pd.DataFrame,
                   rules: tuple[str, ...] = tuple(r.id for r in RULES)) -> pd.DataFrame:
    """Score findings (``finding_id``, ``rule``, ``evidence``) against truth anomalies.

    ``anomalies`` has ``anomaly``, ``person_id``, ``source``, ``source_key``.
    """
    ev = evidence_records(findings)
    an = anomalies.rename(columns={"anomaly": "rule"})[["rule", "person_id", "source",
                                                        "source_key"]].copy()
    an["source_key"] = an["source_key"].astype(str)
    hit = ev.merge(an, on=["rule", "source", "source_key"], how="inner")
    out = []
    for rule in rules:
        planted = an.loc[an["rule"] == rule, "person_id"].nunique()
        found = int((findings["rule"] == rule).sum())
        h = hit[hit["rule"] == rule]
        tp = h["finding_id"].nunique()
        recalled = h["person_id"].nunique()
        out.append({"rule": rule, "planted": int(planted), "found": found, "true_pos": int(tp),
                    "precision": round(tp / found, 4) if found else (1.0 if not planted else 0.0),
                    "recall": round(recalled / planted, 4) if planted else 1.0})
    return pd.DataFrame(out, columns=list(EVAL_COLUMNS))


def evaluate_rules(settings: "Settings", run_id: str | None = None) -> pd.DataFrame:
    """Precision and recall per rule of the work DB's findings (latest run, or ``run_id``).

    Columns: rule, planted, found, true_pos, precision, recall.
    """
    from warehouse.connection import connect

    truth = Path(settings.truth_dir)
    anomalies = pd.read_parquet(truth / "anomalies.parquet")
    con = connect(settings.work_db, read_only=True)
    try:
        run = run_id or con.execute('SELECT max(last_seen_run) FROM "check".finding'
                                    ).fetchall()[0][0]
        findings = con.execute('SELECT finding_id, rule, CAST(evidence AS VARCHAR) AS evidence '
                               'FROM "check".finding WHERE last_seen_run = ?', [run]).df()
    finally:
        con.close()
    return score_findings(findings, anomalies)
