"""The auditor report: one run's findings from the published master as HTML, XLSX and CSV.

``report_stage(settings, ctx, rules=None)`` writes ``settings.report_dir/<run_id>/``:
``report.html`` (self-contained, Simplified Chinese, inline SVG charts), ``findings.xlsx`` (a
summary sheet and a sheet per rule, Chinese headers) and ``findings.csv`` (UTF-8 with BOM).
Same master, same run id -> same bytes. See docs/reports.md.
"""

from __future__ import annotations

from warehouse.report.stage import ReportFiles, generate_report, report_stage

__all__ = ["ReportFiles", "generate_report", "report_stage"]
