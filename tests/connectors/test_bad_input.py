"""Bad input never crashes the run and never silently drops data: each case gets a clear message,
the other sources still land, and the stage result says what failed."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import openpyxl
import pytest

from connectors.stage import extract_stage
from warehouse.connection import work_db

from .conftest import PEOPLE_HEADER, contract_dict, ctx, people_rows, write_contract, write_csv

GOOD = "good"


def _good_source(settings, required: bool = True) -> None:
    write_contract(settings, contract_dict(name=GOOD, required=required))
    write_csv(settings.source_root / f"{GOOD}.csv", people_rows(3), "utf-8", PEOPLE_HEADER)


def _csv_case(encoding_declared: str, data: bytes, **over) -> Callable:
    def setup(settings) -> None:
        write_contract(settings, contract_dict(name="bad", format={"type": "csv",
                                                                   "encoding": encoding_declared},
                                               **over))
        (settings.source_root / "bad.csv").write_bytes(data)
    return setup


HEADER = ",".join(PEOPLE_HEADER) + "\n"
BODY = "P1,张三,1,1990-01-01\nP2,李四,2,1990-01-02\n"


def _xlsx_truncated(settings) -> None:
    write_contract(settings, contract_dict(name="bad", location={"path": "bad.xlsx"},
                                           format={"type": "xlsx", "sheet": 0}))
    wb = openpyxl.Workbook()
    wb.active.append(PEOPLE_HEADER)
    wb.save(settings.source_root / "bad.xlsx")
    p = settings.source_root / "bad.xlsx"
    p.write_bytes(p.read_bytes()[:800])


def _jsonl_truncated(settings) -> None:
    write_contract(settings, contract_dict(name="bad", location={"path": "bad.jsonl"},
                                           format={"type": "jsonl"}))
    (settings.source_root / "bad.jsonl").write_text(
        '{"编号": "P1", "姓名": "甲", "身份证号": "1", "出生日期": "x"}\n{"编号": "P2", "姓',
        encoding="utf-8")


def _unreachable_db(settings) -> None:
    write_contract(settings, contract_dict(
        name="bad", format={"type": "sql"}, key=["ztry_bh"],
        location={"url": "postgresql+psycopg://postgres@127.0.0.1:1/test", "table": "w"},
        columns=[{"column": "xm", "field": "name"}]))


def _missing_sqlite(settings) -> None:
    write_contract(settings, contract_dict(
        name="bad", format={"type": "sql"}, key=["ztry_bh"],
        location={"url": "${UNIGRID_WANTED_DB_URL:-sqlite:///{source_root}/nope.sqlite}",
                  "table": "w"}, columns=[{"column": "xm", "field": "name"}]))


CASES = [
    ("truncated_row", _csv_case("utf-8", (HEADER + BODY + "P3,王").encode()),
     r"1 row\(s\) could not be parsed \(kept in meta.extract_reject\): \S+bad.csv row 3: "
     r"has 2 fields, expected 4 \(file truncated\?\)", 2),
    ("truncated_in_a_character", _csv_case("gbk", (HEADER + BODY + "P3,王").encode("gbk")[:-1]),
     r"bad.csv:4 \(byte offset \d+\): bytes cd do not decode as gbk", 2),
    ("gbk_declared_utf8", _csv_case("utf-8", (HEADER + BODY).encode("gbk")),
     r"bad.csv:1 \(byte offset 0\): bytes b1 do not decode as utf-8; "
     r"the file looks like gb18030, the contract says utf-8", 0),
    ("utf8_declared_gbk", _csv_case("gbk", (HEADER + BODY).encode("utf-8")),
     r"bad.csv:1 \(byte offset 16\): bytes ab do not decode as gbk; "
     r"the file looks like utf-8, the contract says gbk", 0),
    ("renamed_column", _csv_case("utf-8", (HEADER.replace("身份证号", "公民身份号码") + BODY).encode()),
     r"bad.csv: missing column\(s\) 身份证号; unexpected column\(s\): 公民身份号码; "
     r"nearest: 身份证号 -> 公民身份号码\?", 0),
    ("empty_file", _csv_case("utf-8", b""), r"bad.csv: empty file \(no header row 1\)", 0),
    ("header_only", _csv_case("utf-8", HEADER.encode()),
     r"bad: no data rows: an empty full snapshot is not taken as every record disappearing", 0),
    ("missing_file", _csv_case("utf-8", b"", location={"path": "elsewhere/*.csv"}),
     r"no file matches 'elsewhere/\*.csv' under \S+exports", 0),
    ("corrupt_xlsx", _xlsx_truncated,
     r"bad.xlsx: not a readable XLSX file \(truncated or corrupt\?\): BadZipFile", 0),
    ("truncated_jsonl", _jsonl_truncated,
     r"bad.jsonl row 2: not valid JSON at column \d+: .* \(file truncated\?\)", 1),
    ("unreachable_database", _unreachable_db,
     r"postgresql\+psycopg://postgres@127.0.0.1:1/test: database unreachable: .+", 0),
    ("missing_sqlite_file", _missing_sqlite,
     r"sqlite:///\S+/nope.sqlite: SQLite file \S+nope.sqlite does not exist", 0),
]


@pytest.mark.parametrize(("case", "setup", "message", "landed"), CASES, ids=[c[0] for c in CASES])
def test_bad_source_fails_alone_with_a_clear_message(settings, case, setup, message, landed) -> None:
    _good_source(settings)
    setup(settings)
    result = extract_stage(settings, ctx(1))
    assert result.status == "partial"  # the bad source is optional, the good one landed
    per = result.counts["per_source"]
    assert per[GOOD]["status"] == "ok" and per[GOOD]["rows_landed"] == 3
    assert per["bad"]["status"] == "failed"
    assert per["bad"]["rows_landed"] == landed  # the rows before the problem still land
    msgs = [m for m in result.messages if m.startswith("bad (optional) failed: ")]
    assert len(msgs) == 1
    import re
    assert re.search(message, msgs[0]), msgs[0]
    with work_db(settings.work_db) as con:
        run = con.execute("SELECT status, error FROM meta.source_run WHERE source='bad'").fetchone()
    assert run[0] == "failed" and re.search(message, run[1])
    assert "张三" not in msgs[0] and "李四" not in msgs[0]  # no personal values in messages


def test_rejected_rows_are_kept_with_their_text(settings) -> None:
    _good_source(settings)
    _csv_case("utf-8", (HEADER + BODY + "P3,王").encode())(settings)
    extract_stage(settings, ctx(1))
    with work_db(settings.work_db) as con:
        assert con.execute("SELECT row_no, raw_text FROM meta.extract_reject").fetchall() == \
            [(3, "P3,王")]


def test_duplicate_keys_and_garbage_dates_land_unchanged(settings) -> None:
    _good_source(settings)
    _csv_case("utf-8", (HEADER + BODY + "P2,李四,2,去年\nP3,王五,3,1990-13-45\n").encode())(settings)
    result = extract_stage(settings, ctx(1))
    assert result.status == "ok"
    assert result.counts["per_source"]["bad"]["rows_landed"] == 4
    assert "bad: 1 row(s) repeat a key of an earlier row (landed, _dup_key > 0)" in result.messages
    with work_db(settings.work_db) as con:
        got = con.execute('SELECT "出生日期", _dup_key FROM raw.bad ORDER BY _row_no').fetchall()
    assert got == [("1990-01-01", 0), ("1990-01-02", 0), ("去年", 1), ("1990-13-45", 0)]


def test_a_failing_required_source_fails_the_stage(settings) -> None:
    _good_source(settings, required=False)
    _csv_case("utf-8", b"", required=True)(settings)
    result = extract_stage(settings, ctx(1))
    assert result.status == "failed"
    assert result.counts["per_source"][GOOD]["status"] == "ok"
    assert any(m.startswith("bad (required) failed: ") for m in result.messages)


def test_a_broken_contract_file_is_reported_with_its_line_and_others_land(settings) -> None:
    _good_source(settings)
    (Path(settings.contracts_dir) / "broken.yaml").write_text(
        "name: broken\nsystem: s\ndepartment: d\ndepartment_zh: 测试\nkind: nonsense\n",
        encoding="utf-8")
    result = extract_stage(settings, ctx(1))
    assert result.status == "failed"
    assert result.counts["per_source"][GOOD]["rows_landed"] == 3
    assert any("broken.yaml:5: kind:" in m for m in result.messages)


def test_only_the_asked_sources_run(settings) -> None:
    _good_source(settings)
    _csv_case("utf-8", b"")(settings)
    result = extract_stage(settings, ctx(1, sources=(GOOD,)))
    assert result.status == "ok" and list(result.counts["per_source"]) == [GOOD]
    unknown = extract_stage(settings, ctx(1, sources=("nope",)))
    assert unknown.status == "failed" and "no contract named nope" in unknown.messages[0]


def test_extract_memory_limit_setting_is_applied(settings) -> None:
    from dataclasses import replace

    _good_source(settings)
    limited = replace(settings, extra={"UNIGRID_EXTRACT_MEMORY_LIMIT": "64MB"})
    assert extract_stage(limited, ctx(1)).status == "ok"
    broken = replace(settings, extra={"UNIGRID_EXTRACT_MEMORY_LIMIT": "lots"})
    with pytest.raises(Exception, match="Memory must have a number"):
        extract_stage(broken, ctx(1))
