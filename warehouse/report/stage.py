"""Generate the report files of a run, and the ``report`` stage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import pandas as pd

from warehouse.report.data import RuleInfo, load_report_data
from warehouse.report.html import render_html
from warehouse.report.tables import common_table, display_frame, rule_table, summary_table
from warehouse.report.writers import write_csv, write_xlsx

if TYPE_CHECKING:  # pragma: no cover
    from unigrid.settings import Settings
    from unigrid.stages import RunContext, StageResult


@dataclass(frozen=True)
class ReportFiles:
    """Paths written and what they hold."""

    html: Path
    xlsx: Path
    csv: Path
    findings: int
    by_rule: dict[str, int]


def generate_report(master_db: Path | str, run_id: str, out_dir: Path | str,
                    rules: Sequence[Mapping[str, Any] | RuleInfo] | None = None,
                    unmask: bool = False) -> ReportFiles:
    """Write ``report.html``, ``findings.xlsx`` and ``findings.csv`` of ``run_id`` into
    ``out_dir`` from the published master at ``master_db``.

    ``rules`` gives titles, descriptions and detail headers (``quality.rules.rule_infos()``);
    without it rule ids are shown. ``unmask=True`` shows full names and ID numbers (only for
    roles entitled to them; log the access).
    """
    data = load_report_data(master_db, run_id, rules)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    display = display_frame(data, unmask=unmask)
    summary = summary_table(data)
    html = out / "report.html"
    html.write_text(render_html(data, display, summary), encoding="utf-8")
    stamp = None
    if data.run.get("finished_at") is not None:  # the run's publish time, never the clock
        ts = pd.Timestamp(data.run["finished_at"])
        stamp = (ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts).to_pydatetime()
    sheets = [("汇总", summary)] + [(r.title_zh, rule_table(display, r)) for r in data.rules]
    xlsx = write_xlsx(out / "findings.xlsx", sheets, stamp)
    csv = write_csv(out / "findings.csv", common_table(display))
    by_rule = data.findings.groupby("rule").size().to_dict()
    return ReportFiles(html, xlsx, csv, len(data.findings), {k: int(v) for k, v in by_rule.items()})


def report_stage(settings: "Settings", ctx: "RunContext",
                 rules: Sequence[Mapping[str, Any] | RuleInfo] | None = None) -> "StageResult":
    """The ``report`` stage: the run's auditor report into ``settings.report_dir/<run_id>/``."""
    from unigrid.stages import StageFailed, StageResult
    from warehouse.queries import NoMasterYet

    try:
        files = generate_report(settings.master_db, ctx.run_id,
                                Path(settings.report_dir) / ctx.run_id, rules)
    except NoMasterYet as exc:
        raise StageFailed(str(exc)) from exc
    return StageResult(stage="report", counts={"findings": files.findings, **files.by_rule},
                       messages=[f"report: {files.html}", f"xlsx: {files.xlsx}",
                                 f"csv: {files.csv}"])
