"""The offline HTML validation report: one self-contained file per run.

Inline CSS and inline SVG bars, no scripts, fonts or styles from elsewhere (users' networks are
closed; GX Data Docs load jQuery, Bootstrap and Vega from CDNs, so we do not ship those). The
Jinja2 template is ``quality/templates/validation.html.j2``. Written in English for data
engineers (department staff get the Chinese auditor reports). Every value shown comes from
quarantine reasons, which are masked already.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from quality.validate import ValidationResult

GREEN, AMBER, RED, GREY = "#2da44e", "#d4a72c", "#cf222e", "#eaeef2"


def svg_bar(parts: list[tuple[float, str]], total: float, width: int = 240, height: int = 12,
            title: str = "") -> str:
    """An inline SVG stacked bar: ``parts`` are (value, colour) drawn left to right of ``total``.

    No ``xmlns`` attribute: inline SVG in HTML5 needs none (and the report holds no URL at all).
    """
    rects = [f'<rect x="0" y="0" width="{width}" height="{height}" fill="{GREY}"/>']
    x = 0.0
    for value, colour in parts:
        if total <= 0 or value <= 0:
            continue
        w = width * value / total
        rects.append(f'<rect x="{x:.2f}" y="0" width="{w:.2f}" height="{height}" fill="{colour}"/>')
        x += w
    t = f"<title>{title}</title>" if title else ""
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img">{t}{"".join(rects)}</svg>')


def _pct(part: int, whole: int) -> str:
    return "–" if whole == 0 else f"{100.0 * (whole - part) / whole:.2f}"


def source_view(r: ValidationResult) -> dict[str, Any]:
    """Template data of one source (counts, bars, expectations, reasons, flags)."""
    d = asdict(r)
    clean = r.rows_staged - r.rows_flagged
    d["bar"] = svg_bar([(clean, GREEN), (r.rows_flagged, AMBER), (r.rows_quarantined, RED)],
                       max(r.rows_read, 1),
                       title=f"staged {r.rows_staged} (flagged {r.rows_flagged}), "
                             f"quarantined {r.rows_quarantined}")
    top = max(r.flag_counts.values(), default=0)
    d["flags"] = [{"flag": k, "rows": v, "bar": svg_bar([(v, AMBER)], max(r.rows_staged, top, 1),
                                                         width=200, title=f"{v} rows")}
                  for k, v in r.flag_counts.items()]
    exps = []
    for e in r.expectations:
        x = asdict(e)
        x["pass_pct"] = _pct(e.unexpected_count, e.element_count)
        colour = RED if e.severity == "hard" else AMBER
        x["bar"] = svg_bar([(e.element_count - e.unexpected_count, GREEN),
                            (e.unexpected_count, colour)], max(e.element_count, 1), width=160,
                           title=f"{e.unexpected_count} of {e.element_count} failed")
        exps.append(x)
    d["expectations"] = exps
    return d


def overall_status(results: list[ValidationResult]) -> str:
    """ok when every validated source reconciled; failed on a mismatch or a failed required
    source; partial when an optional source failed."""
    if any(r.status == "mismatch" or (r.status == "failed" and r.required) for r in results):
        return "failed"
    if any(r.status == "failed" for r in results):
        return "partial"
    return "ok"


def render_report(results: list[ValidationResult], run_id: str,
                  generated_at: datetime | None = None) -> str:
    """The report's HTML text."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("quality", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined)
    env.filters["n"] = lambda v: f"{int(v):,}"
    validated = [r for r in results if r.status in ("ok", "mismatch")]
    totals = {"read": sum(r.rows_read for r in validated),
              "staged": sum(r.rows_staged for r in validated),
              "quarantined": sum(r.rows_quarantined for r in validated),
              "reconcile_ok": all(r.reconcile_ok for r in validated)}
    return env.get_template("validation.html.j2").render(
        run_id=run_id, sources=[source_view(r) for r in results], totals=totals,
        status=overall_status(results),
        generated_at=(generated_at or datetime.now().astimezone()).isoformat(timespec="seconds"))


def write_report(results: list[ValidationResult], run_id: str, report_dir: Path) -> Path:
    """Write ``<report_dir>/validation-<run_id>.html`` (atomically) and return its path."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / f"validation-{run_id}.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render_report(results, run_id), encoding="utf-8")
    tmp.replace(path)
    return path
