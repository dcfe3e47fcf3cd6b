"""The report's tables with Chinese headers, personal data masked unless asked otherwise."""

from __future__ import annotations

import json

import pandas as pd

from warehouse.report.data import STATUS_ZH, ReportData, RuleInfo
from warehouse.masking import mask_id_series, mask_name_series

COMMON_COLUMNS: tuple[tuple[str, str], ...] = (
    ("finding_id", "发现编号"), ("rule_title", "核查规则"), ("person_id", "人员编号"),
    ("name", "姓名"), ("id_number", "公民身份号码"), ("sex", "性别"), ("district", "区县"),
    ("street", "街道"), ("community", "社区"), ("status", "状态"),
    ("dismissed_reason", "排除原因"), ("event_date", "事件日期"), ("months", "月数"),
    ("amount_monthly", "月金额（元）"), ("amount_total", "涉及金额（元）"),
    ("first_seen_run", "首次发现批次"), ("last_seen_run", "最近发现批次"),
    ("evidence_records", "证据记录"),
)
"""Column -> Chinese header of every finding table (XLSX sheets add the rule's details)."""


def _records_text(evidence: pd.Series) -> list[str]:
    out = []
    for e in evidence:
        recs = (json.loads(e) or {}).get("records") or [] if isinstance(e, str) else []
        out.append("; ".join(f"{r['source']}:{r['source_key']}" for r in recs))
    return out


def display_frame(data: ReportData, unmask: bool = False) -> pd.DataFrame:
    """Findings with display values (masked names and ID numbers, Chinese statuses)."""
    f = data.findings
    titles = {r.id: r.title_zh for r in data.rules}
    out = pd.DataFrame({
        "finding_id": f["finding_id"], "rule": f["rule"],
        "rule_title": f["rule"].map(titles).fillna(f["rule"]),
        "person_id": f["person_id"],
        "name": f["name"] if unmask else mask_name_series(f["name"]),
        "id_number": f["id_number"] if unmask else mask_id_series(f["id_number"]),
        "sex": f["sex"], "district": f["district"], "street": f["street"],
        "community": f["community"],
        "status": f["status"].map(STATUS_ZH).fillna(f["status"]),
        "dismissed_reason": f["dismissed_reason"], "event_date": f["event_date"],
        "months": f["months"].astype("Int64"),
        "amount_monthly": f["amount_monthly"].round(2),
        "amount_total": f["amount_total"].round(2),
        "first_seen_run": f["first_seen_run"], "last_seen_run": f["last_seen_run"],
        "evidence_records": (f["evidence_records"] if "evidence_records" in f.columns
                             else _records_text(f["evidence"])),
        "detail": f["detail"],
    })
    return out.reset_index(drop=True)


def common_table(display: pd.DataFrame) -> pd.DataFrame:
    """All findings, common columns, Chinese headers, plus the details as JSON text (CSV)."""
    t = display[[c for c, _ in COMMON_COLUMNS]].rename(columns=dict(COMMON_COLUMNS))
    t["明细"] = [json.dumps(d, ensure_ascii=False, sort_keys=True) for d in display["detail"]]
    return t


def rule_table(display: pd.DataFrame, rule: RuleInfo) -> pd.DataFrame:
    """One rule's findings: common columns then the rule's detail fields, Chinese headers."""
    d = display[display["rule"] == rule.id]
    t = d[[c for c, _ in COMMON_COLUMNS]].rename(columns=dict(COMMON_COLUMNS))
    details = pd.DataFrame(list(d["detail"]), index=d.index)
    for key, header in rule.columns_zh.items():
        name = header if header not in t.columns else f"{header}（明细）"
        t[name] = details[key] if key in details.columns else None
    return t.reset_index(drop=True)


def summary_table(data: ReportData) -> pd.DataFrame:
    """Per rule: findings, by status, total amount (Chinese headers)."""
    f = data.findings
    rows = []
    for r in data.rules:
        g = f[f["rule"] == r.id]
        rows.append({"规则编号": r.id, "核查规则": r.title_zh, "责任部门": r.department_zh,
                     "发现数": int(len(g)),
                     "待核查": int((g["status"] == "open").sum()),
                     "已确认": int((g["status"] == "confirmed").sum()),
                     "已排除": int((g["status"] == "dismissed").sum()),
                     "涉及金额（元）": round(float(g["amount_total"].fillna(0).sum()), 2)})
    return pd.DataFrame(rows)
