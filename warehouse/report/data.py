"""What the auditor report shows, read from the published master (read-only, one short connection).

Findings of one run are the rows of ``audit.finding`` whose ``last_seen_run`` is the run id,
joined with the person (name, ID number: masked on output), and the district / street /
community of the person's current residence (``master.person.house_id``), else of their active
registration (``master.household``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

FINDINGS_SQL = """
WITH f AS MATERIALIZED (SELECT * FROM audit.finding WHERE last_seen_run = $run),
p AS MATERIALIZED (SELECT person_id, name, id_number, sex, house_id FROM master.person
                   WHERE rowid IN (SELECT rowid FROM master.person
                                   WHERE person_id IN (SELECT person_id FROM f))),
reg AS MATERIALIZED (SELECT person_id, min(house_id) AS house_id FROM master.household
                     WHERE is_active AND house_id IS NOT NULL
                       AND person_id IN (SELECT person_id FROM f) GROUP BY person_id),
h AS MATERIALIZED (SELECT house_id, district, street, community FROM master.house
                   WHERE rowid IN (SELECT rowid FROM master.house WHERE house_id IN (
                       SELECT house_id FROM p UNION SELECT house_id FROM reg)))
SELECT f.finding_id, f.rule, f.person_id, f.subject_key, CAST(f.evidence AS VARCHAR) AS evidence,
       CAST(f.amount_monthly AS DOUBLE) AS amount_monthly,
       CAST(f.amount_total AS DOUBLE) AS amount_total, f.months, f.status, f.dismissed_reason,
       f.status_by, f.first_seen_run, f.last_seen_run, f.evidence_hash,
       p.name, p.id_number, p.sex,
       coalesce(h.district, rh.district) AS district, coalesce(h.street, rh.street) AS street,
       coalesce(h.community, rh.community) AS community,
       json_extract_string(f.evidence, '$.event_date') AS event_date
FROM f
LEFT JOIN p ON p.person_id = f.person_id
LEFT JOIN h ON h.house_id = p.house_id
LEFT JOIN reg ON reg.person_id = f.person_id
LEFT JOIN h rh ON rh.house_id = reg.house_id
ORDER BY f.rule, f.finding_id
"""
"""The run's findings with person and place. Only the finding persons' rows of the person,
household and house tables are read (found on the key column, then read by rowid): a hash
table over a million persons cost more than the rest of the report."""

STATUS_ZH = {"open": "待核查", "confirmed": "已确认", "dismissed": "已排除"}
SEVERITY_ZH = {"high": "高", "medium": "中", "low": "低"}


@dataclass(frozen=True)
class RuleInfo:
    """What the report needs to know of a rule (titles and detail headers in Chinese)."""

    id: str
    title_zh: str
    description_zh: str = ""
    department_zh: str = ""
    severity: str = "medium"
    columns_zh: Mapping[str, str] = field(default_factory=dict)

    @staticmethod
    def of(d: Mapping[str, Any]) -> "RuleInfo":
        """From a plain dict (``quality.rules.rule_infos()`` gives these)."""
        return RuleInfo(id=d["id"], title_zh=d.get("title_zh") or d["id"],
                        description_zh=d.get("description_zh", ""),
                        department_zh=d.get("department_zh", ""),
                        severity=d.get("severity", "medium"),
                        columns_zh=dict(d.get("columns_zh") or {}))


@dataclass
class ReportData:
    """One run's findings and context."""

    run_id: str
    run: dict[str, Any]
    """The run's ``audit.run`` row (published), empty if the master has none for the run."""
    rules: list[RuleInfo]
    findings: pd.DataFrame
    """One row per finding (columns of :data:`FINDINGS_SQL` plus ``detail`` dicts)."""


def rules_for(findings: pd.DataFrame, rules: Sequence[Mapping[str, Any] | RuleInfo] | None
              ) -> list[RuleInfo]:
    """The declared rules in order, plus any rule found in the data but not declared."""
    out = [r if isinstance(r, RuleInfo) else RuleInfo.of(r) for r in (rules or [])]
    known = {r.id for r in out}
    for rid in sorted(set(findings["rule"]) - known):
        out.append(RuleInfo(id=rid, title_zh=rid))
    return out


def load_report_data(master_db: Path | str, run_id: str,
                     rules: Sequence[Mapping[str, Any] | RuleInfo] | None = None) -> ReportData:
    """Read a run's findings from the published master at ``master_db``."""
    from warehouse.queries import open_master

    with open_master(master_db) as con:
        findings = con.execute(FINDINGS_SQL, {"run": run_id}).df()
        cur = con.execute("SELECT * FROM audit.run WHERE run_id = ? AND status = 'published' "
                          "ORDER BY finished_at DESC NULLS LAST LIMIT 1", [run_id])
        row = cur.fetchone()
        run = dict(zip([d[0] for d in cur.description], row)) if row else {}
    parsed = [(json.loads(e) or {}) if e else {} for e in findings["evidence"]]  # once
    findings["detail"] = [p.get("detail") or {} for p in parsed]
    findings["evidence_records"] = ["; ".join(f"{r['source']}:{r['source_key']}"
                                              for r in (p.get("records") or [])) for p in parsed]
    findings["district"] = findings["district"].fillna("未知")
    order = {r.id: i for i, r in enumerate(rules_for(findings, rules))}
    findings = findings.assign(_o=findings["rule"].map(order)).sort_values(
        ["_o", "finding_id"], kind="stable").drop(columns="_o").reset_index(drop=True)
    return ReportData(run_id=run_id, run=run, rules=rules_for(findings, rules), findings=findings)
