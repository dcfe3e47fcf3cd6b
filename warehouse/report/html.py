"""The auditor report as one self-contained HTML page in Simplified Chinese.

Inline CSS, inline SVG charts (:mod:`warehouse.report.charts`), no script and no external
reference of any kind, so it renders on a closed network and prints well.
"""

from __future__ import annotations

from html import escape

import pandas as pd

from warehouse.report.charts import COLOURS, fmt_int, fmt_yuan, hbar_chart, vbar_chart
from warehouse.report.data import SEVERITY_ZH, ReportData
from warehouse.report.tables import COMMON_COLUMNS, rule_table

CSS = """
body{font-family:'Noto Sans CJK SC','Source Han Sans SC','WenQuanYi Micro Hei','Microsoft YaHei',
sans-serif;margin:24px auto;max-width:1100px;color:#222;line-height:1.5;padding:0 16px}
h1{font-size:24px;border-bottom:3px solid #2f6fb0;padding-bottom:8px}
h2{font-size:19px;margin-top:32px;border-left:5px solid #2f6fb0;padding-left:8px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{border:1px solid #ccd;border-radius:6px;padding:10px 16px;min-width:150px;background:#f7f9fc}
.card b{display:block;font-size:20px;color:#2f6fb0}
table{border-collapse:collapse;width:100%;font-size:12px;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#eef2f7}
.note{color:#666;font-size:12px}
.chart{display:block;margin:12px 0}
.sev-high{color:#c2413b;font-weight:bold}
@media print{h2{page-break-before:auto}.chart{page-break-inside:avoid}}
"""

TZ = "Asia/Shanghai"
"""Time zone times are shown in."""

MAX_ROWS = 100
"""Rows per rule shown in the HTML (the XLSX and CSV have them all)."""

SHOWN = ("finding_id", "person_id", "name", "id_number", "district", "status", "event_date",
         "months", "amount_total")


def month_series(dates: pd.Series, run_id: str, span: int = 36) -> tuple[list[str], list[int]]:
    """Findings per event month over the ``span`` months up to the run's month, plus earlier."""
    end = pd.Period(f"{run_id[:4]}-{run_id[4:6]}", "M")
    months = pd.period_range(end - (span - 1), end, freq="M")
    d = pd.to_datetime(dates, errors="coerce").dt.to_period("M")
    counts = d.value_counts()
    earlier = int(d[d < months[0]].count())
    labels = ["更早"] + [str(m) for m in months]
    values = [earlier] + [int(counts.get(m, 0)) for m in months]
    return labels, values


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}"
    return str(v)


def _table_html(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{escape(str(c))}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False, name=None):
        cells = "".join("<td></td>" if v is None or (not isinstance(v, str) and pd.isna(v))
                        else f"<td>{escape(_fmt(v))}</td>" for v in row)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(data: ReportData, display: pd.DataFrame, summary: pd.DataFrame) -> str:
    """The report page."""
    f = data.findings
    run = data.run
    published = run.get("finished_at")
    pub = "未知"
    if published is not None:
        ts = pd.Timestamp(published)
        ts = ts.tz_convert(TZ) if ts.tzinfo else ts
        pub = ts.strftime("%Y-%m-%d %H:%M")
    total = len(f)
    pension = f.loc[f["rule"] == "deceased_pensioner", "amount_total"].fillna(0).sum()
    subsidy = f.loc[f["rule"] == "deceased_subsidy", "amount_total"].fillna(0).sum()
    open_n = int((f["status"] == "open").sum())
    parts = [
        "<!DOCTYPE html>", '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>跨部门数据核查报告 {escape(data.run_id)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>跨部门数据核查报告</h1>",
        f'<p class="note">批次 {escape(data.run_id)} · 主库发布时间 {escape(pub)} · '
        "个人信息已脱敏（身份证号保留前6位和后4位，姓名保留首尾字）。本报告仅供核查工作使用。</p>",
        '<div class="cards">',
        f"<div class=\"card\">发现总数<b>{fmt_int(total)}</b></div>",
        f"<div class=\"card\">待核查<b>{fmt_int(open_n)}</b></div>",
        f"<div class=\"card\">死亡后多发养老金<b>{escape(fmt_yuan(float(pension)))}</b></div>",
        f"<div class=\"card\">户主死亡后多发低保金<b>{escape(fmt_yuan(float(subsidy)))}</b></div>",
        "</div>",
        "<h2>一、统计图</h2>",
        hbar_chart(summary["核查规则"].tolist(), summary["发现数"].tolist(), "按核查规则统计发现数"),
    ]
    by_d = f.groupby("district").size().sort_values(ascending=False, kind="stable")
    parts.append(hbar_chart(by_d.index.tolist(), by_d.tolist(), "按区县统计发现数",
                            colour=COLOURS[2]))
    labels, values = month_series(f["event_date"], data.run_id)
    parts.append(vbar_chart(labels, values, "按月份统计发现数（事件发生月份，近36个月）"))
    pen = f[f["rule"] == "deceased_pensioner"]
    pd_amt = pen.groupby("district")["amount_total"].sum().sort_index(kind="stable")
    pd_amt = pd_amt.sort_values(ascending=False, kind="stable")
    parts.append(hbar_chart(pd_amt.index.tolist(), [float(v) for v in pd_amt.tolist()],
                            f"死亡后多发养老金金额（按区县，合计 {fmt_yuan(float(pension))}）",
                            fmt=fmt_yuan, colour=COLOURS[3]))
    parts += ["<h2>二、汇总</h2>", _table_html(summary)]
    parts.append("<h2>三、各规则明细</h2>")
    headers = dict(COMMON_COLUMNS)
    for i, r in enumerate(data.rules, start=1):
        t = rule_table(display, r)
        n = len(t)
        keep = [headers[c] for c in SHOWN] + list(r.columns_zh.values())
        sev = SEVERITY_ZH.get(r.severity, r.severity)
        parts += [f'<h3 id="rule-{escape(r.id)}">{i}. {escape(r.title_zh)}（{fmt_int(n)} 条）</h3>',
                  f'<p>{escape(r.description_zh)}<br><span class="note">规则编号 {escape(r.id)} · '
                  f'责任部门 {escape(r.department_zh)} · 严重程度 '
                  f'<span class="sev-{escape(r.severity)}">{escape(sev)}</span></span></p>']
        if n:
            parts.append(_table_html(t[[c for c in keep if c in t.columns]].head(MAX_ROWS)))
            if n > MAX_ROWS:
                parts.append(f'<p class="note">仅显示前 {MAX_ROWS} 条，完整清单见 findings.xlsx '
                             "和 findings.csv。</p>")
    parts.append('<p class="note">由 unigrid 生成。</p></body></html>')
    return "\n".join(parts) + "\n"
