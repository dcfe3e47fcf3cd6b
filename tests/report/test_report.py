"""The auditor report: files, determinism, sheets and headers, masking, offline HTML."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd
import pytest

from tests.report.factory import RUN, make_master, rule_infos
from warehouse.report import generate_report
from warehouse.report.charts import hbar_chart, vbar_chart
from warehouse.report.html import month_series
from warehouse.report.tables import COMMON_COLUMNS
from warehouse.report.writers import sheet_name


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_master(tmp_path_factory.mktemp("m") / "master.duckdb")


@pytest.fixture(scope="module")
def report(master: Path, tmp_path_factory: pytest.TempPathFactory):
    return generate_report(master, RUN, tmp_path_factory.mktemp("r") / RUN, rule_infos())


def test_report_files_are_reproducible_for_a_run(master: Path, report, tmp_path: Path) -> None:
    again = generate_report(master, RUN, tmp_path / "again", rule_infos())
    for a, b in ((report.html, again.html), (report.xlsx, again.xlsx), (report.csv, again.csv)):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_only_the_runs_current_findings(report) -> None:
    # 60 findings, every 11th last seen in an earlier run
    assert report.findings == 60 - len([i for i in range(60) if i % 11 == 10])


def test_xlsx_has_a_summary_and_a_sheet_per_rule_with_chinese_headers(report) -> None:
    from openpyxl import load_workbook

    wb = load_workbook(report.xlsx, read_only=True)
    titles = [r["title_zh"] for r in rule_infos()]
    assert wb.sheetnames == ["汇总"] + titles
    for info in rule_infos():
        ws = wb[info["title_zh"]]
        rows = list(ws.iter_rows(values_only=True))
        header = list(rows[0])
        assert header[:len(COMMON_COLUMNS)] == [h for _, h in COMMON_COLUMNS]
        assert header[len(COMMON_COLUMNS):] == list(info["columns_zh"].values())
        assert len(rows) - 1 == report.by_rule.get(info["id"], 0)
        assert all(re.search(r"[\u4e00-\u9fff]", str(h)) for h in header)
    summary = list(wb["汇总"].iter_rows(values_only=True))
    assert summary[0][:4] == ("规则编号", "核查规则", "责任部门", "发现数")
    assert sum(r[3] for r in summary[1:]) == report.findings


def test_csv_is_utf8_with_bom_and_chinese_headers(report) -> None:
    raw = report.csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:3] == ["发现编号", "核查规则", "人员编号"]
    assert len(rows) - 1 == report.findings


def test_personal_data_is_masked_everywhere(master: Path, report) -> None:
    from warehouse.queries import open_master

    with open_master(master) as con:
        ids = [r[0] for r in con.execute("SELECT id_number FROM master.person").fetchall()]
    html = report.html.read_text(encoding="utf-8")
    text = report.csv.read_text(encoding="utf-8-sig")
    assert not any(i in html or i in text for i in ids)
    assert "420502********" in html and "张*明" in html and "买*提·艾*" in text


def test_html_has_no_external_references(report) -> None:
    html = report.html.read_text(encoding="utf-8")
    without_ns = html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", without_ns, re.I)
    assert not re.search(r"<script|<link|<img|<iframe|src=|@import|url\(", html, re.I)
    assert html.count('class="bar"') > 0 and '<html lang="zh-CN">' in html


def test_unmasked_report_for_entitled_roles(master: Path, tmp_path: Path) -> None:
    files = generate_report(master, RUN, tmp_path, rule_infos(), unmask=True)
    assert "张伟明" in files.csv.read_text(encoding="utf-8-sig")


def test_charts_draw_one_bar_per_value_and_escape_labels() -> None:
    svg = hbar_chart(["a<b", "c"], [3, 0], "t")
    assert svg.count('class="bar"') == 2 and "a&lt;b" in svg
    assert vbar_chart(["2026-01", "2026-02"], [1, 2], "m").count('class="bar"') == 2
    assert "无数据" in hbar_chart([], [], "empty")


def test_month_series_counts_recent_months_and_earlier() -> None:
    labels, values = month_series(pd.Series(["2026-11-03", "2026-11-20", "2020-01-01", None]),
                                  "20261120", span=3)
    assert labels == ["更早", "2026-09", "2026-10", "2026-11"]
    assert values == [1, 0, 0, 2]


@pytest.mark.parametrize("title,used,expected", [
    ("死亡人员仍领取养老金", set(), "死亡人员仍领取养老金"),
    ("a/b:c", set(), "a_b_c"), ("x" * 40, set(), "x" * 31), ("汇总", {"汇总"}, "汇总_2"),
])
def test_sheet_names(title: str, used: set, expected: str) -> None:
    assert sheet_name(title, set(used)) == expected


@pytest.mark.browser
def test_html_renders_offline_in_headless_chromium(report, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    shot = tmp_path / "report.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1400})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report.html.as_uri())
            bars = page.locator("svg.chart rect.bar")
            drawn = page.evaluate("""() => Array.from(document.querySelectorAll('svg.chart rect.bar'))
                .filter(r => r.getBoundingClientRect().width > 0
                             && r.getBoundingClientRect().height > 0).length""")
            charts = page.locator("svg.chart").count()
            page.screenshot(path=str(shot), full_page=False)
            n_bars = bars.count()
        finally:
            browser.close()
    assert charts == 4
    assert n_bars > 0 and drawn > 0
    assert all(u.startswith("file://") for u in requests)
    stats = png_colour_stats(shot)
    assert stats["distinct"] > 20  # not blank
    assert stats["bar_blue"] > 500 and stats["bar_green"] > 500  # the charts' bars are on screen


def png_colour_stats(png: Path) -> dict[str, int]:
    """Decode a screenshot in the browser itself (no imaging library): distinct colours and
    pixels of the bar colours."""
    import base64

    from playwright.sync_api import sync_playwright

    url = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()
    js = """async (url) => {
        const img = new Image(); img.src = url; await img.decode();
        const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
        const g = c.getContext('2d'); g.drawImage(img, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data;
        const seen = new Set(); let blue = 0, green = 0;
        for (let i = 0; i < d.length; i += 4) {
            const k = (d[i] << 16) | (d[i + 1] << 8) | d[i + 2]; seen.add(k);
            if (k === 0x2f6fb0) blue++; if (k === 0x3a9b5c) green++;
        }
        return {distinct: seen.size, bar_blue: blue, bar_green: green};
    }"""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            return browser.new_page().evaluate(js, url)
        finally:
            browser.close()


def test_report_stage_writes_into_the_runs_folder(master: Path, tmp_path: Path) -> None:
    from unigrid.settings import Settings
    from unigrid.stages import RunContext, StageFailed
    from warehouse.report import report_stage

    s = Settings(home=tmp_path, master_db=master, report_dir=tmp_path / "reports")
    ctx = RunContext.for_date(pd.Timestamp("2026-11-20").date())
    res = report_stage(s, ctx, rule_infos())
    assert res.status == "ok" and res.counts["findings"] > 0
    assert sorted(p.name for p in (tmp_path / "reports" / RUN).iterdir()) == [
        "findings.csv", "findings.xlsx", "report.html"]
    with pytest.raises(StageFailed):
        report_stage(Settings(home=tmp_path, master_db=tmp_path / "none.duckdb"), ctx)


WORKBOOK_CASES = [
    ("text with markup and CJK", pd.DataFrame({"a": ["x<y&z>", "中文·名", None, " lead"]})),
    ("integers and missing", pd.DataFrame({"n": pd.array([1, None, 3, -4], dtype="Int64")})),
    # floats of at most 16 significant digits (the report rounds amounts to cents): openpyxl
    # writes 16 digits, the fast writer the shortest text that reads back as the same float
    ("floats", pd.DataFrame({"f": [round(0.1 + 0.2, 2), 3000.0, None, 1e-5, 12345678.91]})),
    ("python numbers in an object column", pd.DataFrame({"o": [1, 2.5, None, 7]},
                                                        dtype=object)),
    ("booleans", pd.DataFrame({"b": [True, False, True, False]})),
    ("booleans with missing", pd.DataFrame({"b": [True, None, False, None]}, dtype=object)),
    ("empty table", pd.DataFrame({"a": pd.Series([], dtype=object), "发现数": []})),
]


def _sheet_values(path: Path) -> dict[str, list[tuple]]:
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True)
    out = {}
    for name in wb.sheetnames:
        rows = []
        for r in wb[name].iter_rows(values_only=True):
            r = tuple(r)
            while r and r[-1] is None:
                r = r[:-1]
            rows.append(tuple((type(v).__name__, v) for v in r))
        out[name] = rows
    return out


@pytest.mark.parametrize("case,table", WORKBOOK_CASES, ids=[c[0] for c in WORKBOOK_CASES])
def test_fast_workbook_holds_what_openpyxl_writes(case: str, table: pd.DataFrame,
                                                  tmp_path: Path) -> None:
    from warehouse.report.writers import write_xlsx, write_xlsx_openpyxl

    sheets = [("汇总", table), ("a/b", table.head(2))]
    fast = write_xlsx(tmp_path / "fast.xlsx", sheets)
    slow = write_xlsx_openpyxl(tmp_path / "slow.xlsx", [("汇总", table), ("a_b", table.head(2))])
    assert _sheet_values(fast) == _sheet_values(slow)


def test_report_workbook_values_equal_openpyxls(master: Path, report, tmp_path: Path) -> None:
    from warehouse.report.data import load_report_data
    from warehouse.report.tables import display_frame, rule_table, summary_table
    from warehouse.report.writers import write_xlsx_openpyxl

    data = load_report_data(master, RUN, rule_infos())
    display = display_frame(data)
    sheets = [("汇总", summary_table(data))] + [(r.title_zh, rule_table(display, r))
                                              for r in data.rules]
    slow = write_xlsx_openpyxl(tmp_path / "slow.xlsx", sheets)
    assert _sheet_values(report.xlsx) == _sheet_values(slow)


def test_mixed_column_falls_back_to_openpyxl(tmp_path: Path) -> None:
    from warehouse.report.fastxlsx import column_kind
    from warehouse.report.writers import write_xlsx

    mixed = pd.DataFrame({"m": ["a", 1, None]}, dtype=object)
    assert column_kind(mixed["m"]) is None
    path = write_xlsx(tmp_path / "m.xlsx", [("s", mixed)])
    assert _sheet_values(path)["s"][1:] == [(("str", "a"),), (("int", 1),), ()]
