"""The offline HTML validation report: self-contained, counts shown, values masked."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from quality.report import overall_status, render_report, svg_bar, write_report
from quality.validate import ValidationResult, validate_source
from tests.quality.conftest import bad_check, land_raw, make_contract, make_id, person_row

RUN = "20261120"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[ValidationResult]:
    from warehouse.connection import connect_work
    con = connect_work(tmp_path_factory.mktemp("report") / "work.duckdb")
    c = make_contract(expectations=[{"field": "id_number", "rule": "id_number", "severity": "hard"}])
    rows = [person_row(f"K{i}") for i in range(7)] + [
        person_row(None, birth="garbage"),
        person_row("K1"),
        person_row("K9", id_number=bad_check(make_id(seq="777"))),
        person_row("K10", sex="9")]
    land_raw(con, c.name, rows)
    res = validate_source(con, c, RUN)
    con.close()
    skipped = ValidationResult(source="other_source", run_id=RUN, status="skipped",
                               messages=["other_source: extract failed: not validated"])
    failed = ValidationResult(source="broken_source", run_id=RUN, status="failed",
                              error="broken_source: validation failed: boom")
    return [res, skipped, failed]


@pytest.fixture(scope="module")
def html(results: list[ValidationResult]) -> str:
    return render_report(results, RUN)


def test_no_external_assets(html: str) -> None:
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"<script|<link|@import|url\(|src=", html, re.I)


def test_counts_and_reconcile_shown(html: str, results: list[ValidationResult]) -> None:
    r = results[0]
    assert (r.rows_read, r.rows_staged, r.rows_quarantined) == (11, 8, 3)
    assert f"read {r.rows_read} = staged {r.rows_staged} + quarantined {r.rows_quarantined}" in html
    assert "✔ reconciled" in html
    for rule in ("key_missing", "duplicate_key", "unparseable", "id_number"):
        assert f"<code>{rule}</code>" in html
    assert "<code>sex_unparseable</code>" in html  # soft flag count table
    assert "other_source" in html and "skipped" in html and "validation failed: boom" in html


def test_values_are_masked(html: str) -> None:
    bad = bad_check(make_id(seq="777"))
    assert bad not in html
    assert bad[:6] + "********" + bad[-4:] in html
    assert "张三" not in html  # names never shown


def test_example_row_numbers_shown(html: str) -> None:
    assert "people.csv:8" in html  # the row without key (8th data row)


@pytest.mark.parametrize("parts,total,widths", [
    ([(1, "#000"), (1, "#111")], 2, ["120.00", "120.00"]),
    ([(0, "#000"), (3, "#111")], 4, ["180.00"]),
    ([(5, "#000")], 0, []),
])
def test_svg_bar(parts: list, total: int, widths: list[str]) -> None:
    svg = svg_bar(parts, total, width=240)
    got = re.findall(r'<rect x="[0-9.]+" y="0" width="([0-9]+\.[0-9]{2})"', svg)
    assert got == widths
    assert "xmlns" not in svg


@pytest.mark.parametrize("statuses,required,expected", [
    (["ok", "ok"], [True, False], "ok"),
    (["ok", "failed"], [True, False], "partial"),
    (["failed", "ok"], [True, False], "failed"),
    (["mismatch", "ok"], [False, False], "failed"),
    (["skipped", "ok"], [False, True], "ok"),
])
def test_overall_status(statuses: list[str], required: list[bool], expected: str) -> None:
    rs = [ValidationResult(source=f"s{i}", run_id=RUN, status=s, required=r)
          for i, (s, r) in enumerate(zip(statuses, required))]
    assert overall_status(rs) == expected


def test_write_report(tmp_path: Path, results: list[ValidationResult]) -> None:
    p = write_report(results, RUN, tmp_path / "reports")
    assert p == tmp_path / "reports" / f"validation-{RUN}.html"
    assert p.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert not list((tmp_path / "reports").glob("*.tmp"))


def test_large_counts_have_thousands_separators() -> None:
    r = ValidationResult(source="big", run_id=RUN, rows_read=1961546, rows_staged=1961540,
                         rows_quarantined=6, reconcile_ok=True)
    html = render_report([r], RUN)
    assert "read 1,961,546 = staged 1,961,540 + quarantined 6" in html
