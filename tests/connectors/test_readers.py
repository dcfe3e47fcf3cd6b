"""Readers: encodings, decode errors with position, XLSX sheets and cell text, JSON lines,
chunking and row numbers."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import openpyxl
import pyarrow as pa
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from connectors.readers import (CsvReader, JsonLinesReader, SourceReadError, XlsxReader,
                                cell_text, sniff_encoding, unique_names)

from .conftest import PEOPLE_HEADER, people_rows, write_csv


def _rows(reader) -> dict[str, list]:
    batches = list(reader.batches())
    return pa.Table.from_batches(batches).to_pydict() if batches else {}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_reads_each_encoding_as_text(tmp_path: Path, encoding: str) -> None:
    rows = [["P1", "张三", "042050199001011234", "1990-01-01"],
            ["P2", "买买提·艾力", "42050219900101123x", ""]]
    p = write_csv(tmp_path / "a.csv", rows, encoding, PEOPLE_HEADER)
    r = CsvReader(p, encoding)
    assert r.columns == PEOPLE_HEADER  # the BOM never sticks to the first header
    got = _rows(r)
    assert got["姓名"] == ["张三", "买买提·艾力"]
    assert got["身份证号"] == ["042050199001011234", "42050219900101123x"]  # leading 0 and x kept
    assert got["出生日期"] == ["1990-01-01", ""]
    assert got["_row_no"] == [1, 2]
    assert got["_file"] == [str(p), str(p)]


def test_gb18030_only_characters_read_as_gb18030(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "a.csv", [["P1", "王㐀", "1", "x"]], "gb18030", PEOPLE_HEADER)
    assert _rows(CsvReader(p, "gb18030"))["姓名"] == ["王㐀"]
    with pytest.raises(SourceReadError, match=r"a\.csv:2 \(byte offset \d+\): bytes .* do not decode as gbk"):
        _rows(CsvReader(p, "gbk"))


@pytest.mark.parametrize(("encoding", "bad"), [("gbk", b"\xff\xff"), ("utf-8", b"\xc3\x28"),
                                               ("gb18030", b"\x81\x30\xff")])
def test_decode_error_names_file_line_and_offset_and_keeps_rows_before(
        tmp_path: Path, encoding: str, bad: bytes) -> None:
    head = ("编号,姓名\nP1,张三\nP2,李四\n").encode(encoding)
    p = tmp_path / "bad.csv"
    p.write_bytes(head + b"P3," + bad + b"\nP4,x\n")
    r = CsvReader(p, encoding)
    got: list[str] = []
    with pytest.raises(SourceReadError) as exc:
        for b in r.batches():
            got += b.column("编号").to_pylist()
    assert got == ["P1", "P2"]  # the rows before the bad line still come
    offset = len(head) + 3
    assert str(exc.value).startswith(f"{p}:4 (byte offset {offset}): bytes {bad[0]:02x}")
    assert str(exc.value).endswith(f"do not decode as {encoding}")


def test_decode_error_in_a_later_block_counts_lines_across_blocks(tmp_path: Path) -> None:
    rows = people_rows(300)
    p = write_csv(tmp_path / "big.csv", rows, "gbk", PEOPLE_HEADER)
    data = p.read_bytes()
    p.write_bytes(data + b"P9999,\x80\x80\n")
    r = CsvReader(p, "gbk", block=512)
    seen = 0
    with pytest.raises(SourceReadError, match=rf":{302} \(byte offset {len(data) + 6}\)"):
        for b in r.batches():
            seen += b.num_rows
    assert seen == 300


def test_csv_streams_in_bounded_batches_with_continuous_row_numbers(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "a.csv", people_rows(2000), "gbk", PEOPLE_HEADER)
    batches = list(CsvReader(p, "gbk", block=4096).batches())
    assert len(batches) > 10
    assert max(b.nbytes for b in batches) < 64 * 1024
    nos = [n for b in batches for n in b.column("_row_no").to_pylist()]
    assert nos == list(range(1, 2001))


def test_csv_rows_with_wrong_field_count_are_rejected_not_dropped(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_text("编号,姓名\nP1,a\nP2\nP3,c,extra\nP4,d\nP5", encoding="utf-8")
    r = CsvReader(p)
    got = _rows(r)
    assert got["编号"] == ["P1", "P4"]
    assert got["_row_no"] == [1, 4]  # row numbers stay those of the file
    assert [(x.row_no, x.reason) for x in r.rejected] == [
        (2, "has 1 fields, expected 2 (file truncated?)"), (3, "has 3 fields, expected 2"),
        (5, "has 1 fields, expected 2 (file truncated?)")]


@hsettings(max_examples=30, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=60))
def test_row_numbers_skip_rejected_rows_exactly(tmp_path_factory, bad_flags: list[bool]) -> None:
    p = tmp_path_factory.mktemp("h") / "a.csv"
    lines = ["k,v"] + [f"K{i}" if bad else f"K{i},v" for i, bad in enumerate(bad_flags, start=1)]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = CsvReader(p, block=64)
    got = _rows(r)
    good = [i for i, bad in enumerate(bad_flags, start=1) if not bad]
    assert got.get("_row_no", []) == good
    assert got.get("k", []) == [f"K{i}" for i in good]
    assert sorted(x.row_no for x in r.rejected) == [i for i, b in enumerate(bad_flags, 1) if b]


def test_unclosed_quote_is_an_error_not_a_swallowed_rest(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_text('编号,姓名\nP1,"a\nP2,b\nP3,c\n', encoding="utf-8")
    with pytest.raises(SourceReadError, match="a quoted field is never closed"):
        _rows(CsvReader(p))


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\n\n"])
def test_empty_csv_says_so(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "e.csv"
    p.write_bytes(content)
    with pytest.raises(SourceReadError, match=r"e\.csv: empty file \(no header row 1\)"):
        CsvReader(p, "utf-8")


def test_header_names_are_trimmed_and_made_unique() -> None:
    assert unique_names([" 姓名 ", "\ufeff编号", None, "姓名", ""]) == \
        ["姓名", "编号", "column_3", "姓名#2", "column_5"]


@pytest.mark.parametrize(("value", "text"), [
    (None, None), ("0420", "0420"), (42, "42"), (12.0, "12"), (1234.5, "1234.5"),
    (4.20502e17, "4.20502E+17"), (420502199001011234.0, "4.20502199001011E+17"),
    (Decimal("2345.60"), "2345.60"), (dt.datetime(2023, 5, 3), "2023-05-03"),
    (dt.datetime(2023, 5, 3, 8, 30), "2023-05-03 08:30:00"), (dt.date(2023, 5, 3), "2023-05-03"),
    (True, "TRUE"), (float("nan"), None),
])
def test_cell_text_is_what_a_person_sees(value, text) -> None:
    assert cell_text(value) == text


def _workbook(path: Path) -> Path:
    wb = openpyxl.Workbook()
    wb.active.title = "说明"
    wb.active.append(["本表为测试"])
    ws = wb.create_sheet("火化登记")
    ws.append(["火化证号", "身份证号", "死亡日期", "金额"])
    ws.append(["H1", 4.20502e17, dt.datetime(2023, 5, 3), 1234.5])
    ws.append([None, None, None, None])
    ws.append(["H2", "042050199001011234", "2023年5月3日", 12])
    wb.save(path)
    return path


@pytest.mark.parametrize("sheet", ["火化登记", 1])
def test_xlsx_by_sheet_name_or_index(tmp_path: Path, sheet) -> None:
    r = XlsxReader(_workbook(tmp_path / "c.xlsx"), sheet)
    assert r.sheet == "火化登记"
    assert r.columns == ["火化证号", "身份证号", "死亡日期", "金额"]
    got = _rows(r)
    r.close()
    assert got["火化证号"] == ["H1", "H2"]
    assert got["身份证号"] == ["4.20502E+17", "042050199001011234"]  # lost digits stay visible
    assert got["死亡日期"] == ["2023-05-03", "2023年5月3日"]
    assert got["金额"] == ["1234.5", "12"]
    assert got["_row_no"] == [1, 3]  # the blank row is skipped, numbering follows the sheet


@pytest.mark.parametrize(("sheet", "message"), [
    ("低保名册", r"no sheet '低保名册'; sheets: \['说明', '火化登记'\]"),
    (5, r"no sheet number 5 \(0-based\)")])
def test_xlsx_missing_sheet_is_named(tmp_path: Path, sheet, message: str) -> None:
    with pytest.raises(SourceReadError, match=message):
        XlsxReader(_workbook(tmp_path / "c.xlsx"), sheet)


def test_truncated_xlsx_is_reported(tmp_path: Path) -> None:
    p = _workbook(tmp_path / "c.xlsx")
    p.write_bytes(p.read_bytes()[:1500])
    with pytest.raises(SourceReadError, match=r"c\.xlsx: not a readable XLSX file \(truncated or corrupt\?\)"):
        XlsxReader(p, "火化登记")


def test_xlsx_in_chunks(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["k", "v"])
    for i in range(250):
        ws.append([f"K{i}", i])
    wb.save(tmp_path / "x.xlsx")
    batches = list(XlsxReader(tmp_path / "x.xlsx", 0, chunk_rows=100).batches())
    assert [b.num_rows for b in batches] == [100, 100, 50]
    assert batches[2].column("v").to_pylist()[-1] == "249"


def test_jsonl_values_as_text_and_bad_lines_rejected(tmp_path: Path) -> None:
    p = tmp_path / "b.jsonl"
    lines = [json.dumps({"cert_no": "B1", "child_name": None, "n": 3, "f": 4.2e17}),
             "",
             json.dumps({"cert_no": "B2", "child_name": "", "extra": {"a": 1}}, ensure_ascii=False),
             "[1, 2]",
             '{"cert_no": "B3", "child_na']
    p.write_text("\n".join(lines), encoding="utf-8")
    r = JsonLinesReader(p)
    got = _rows(r)
    assert got["cert_no"] == ["B1", "B2"]
    assert got["child_name"] == [None, ""]  # null and "" stay apart
    assert got["n"] == ["3", None]
    assert got["f"] == ["4.2e+17", None]
    assert got["extra"] == [None, '{"a": 1}']
    assert got["_row_no"] == [1, 3]  # line numbers
    assert [(x.row_no, x.reason.split(":")[0]) for x in r.rejected] == [
        (4, "not a JSON object"), (5, "not valid JSON at column 19")]
    assert r.rejected[1].reason.endswith("(file truncated?)")


def test_empty_jsonl_says_so(tmp_path: Path) -> None:
    (tmp_path / "e.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(SourceReadError, match=r"e\.jsonl: empty file"):
        JsonLinesReader(tmp_path / "e.jsonl")


@pytest.mark.parametrize(("data", "seen"), [
    ("编号".encode("utf-8"), "utf-8"), ("\ufeff编号".encode("utf-8"), "utf-8-sig"),
    ("编号姓名".encode("gbk"), "gb18030"), (b"abc", None)])
def test_sniff_encoding(data: bytes, seen) -> None:
    assert sniff_encoding(data) == seen


_TEXT = st.text(alphabet=st.sampled_from(list("张王李·买提 ,\"\n\r'x0123㐀䶵€") + ["\u3000"]), max_size=12)


@hsettings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(_TEXT, _TEXT, _TEXT), min_size=1, max_size=40),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]),
       block=st.sampled_from([16, 64, 4096]))
def test_csv_round_trip_any_text(tmp_path_factory, rows, encoding: str, block: int) -> None:
    """Whatever text a department writes (quotes, commas, line breaks, rare characters) comes back
    exactly, whatever the block size that cuts the decoding."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)  # CRLF line ends, as Windows exports have; quotes values with CR/LF
    w.writerow(["a", "b", "c"])
    w.writerows(rows)
    p = tmp_path_factory.mktemp("rt") / "r.csv"
    p.write_bytes(buf.getvalue().encode(encoding))
    r = CsvReader(p, encoding, block=block, parse_block=4096)
    got = _rows(r)
    assert not r.rejected
    assert list(zip(got["a"], got["b"], got["c"])) == [tuple(x) for x in rows]
    assert got["_row_no"] == list(range(1, len(rows) + 1))


def test_jsonl_decode_error_keeps_the_lines_before(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    good = ('{"cert_no": "D1", "name": "甲"}\n').encode("utf-8")
    p.write_bytes(good + '{"cert_no": "D2", "name": "乙"}\n'.encode("gbk"))
    r = JsonLinesReader(p)
    got: list[str] = []
    with pytest.raises(SourceReadError, match=rf"d.jsonl:2 \(byte offset {len(good) + 27}\): "
                                              r"bytes d2 do not decode as utf-8"):
        for b in r.batches():
            got += b.column("cert_no").to_pylist()
    assert got == ["D1"]


def test_csv_header_below_a_title_row(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_bytes("2026年11月养老金发放台账,,\n编号,姓名,金额\nA1,甲,1\nA2,乙,2\n".encode("gbk"))
    r = CsvReader(p, "gbk", header_row=2)
    assert r.columns == ["编号", "姓名", "金额"]
    got = _rows(r)
    assert got["编号"] == ["A1", "A2"] and got["_row_no"] == [1, 2]


def test_xlsx_header_below_a_title_row(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.append(["低保名册（2026年11月）"])
    wb.active.append(["低保证号", "序号", "姓名"])
    wb.active.append(["DB1", 1, "甲"])
    wb.save(tmp_path / "t.xlsx")
    r = XlsxReader(tmp_path / "t.xlsx", 0, header_row=2)
    assert r.columns == ["低保证号", "序号", "姓名"]
    got = _rows(r)
    assert (got["序号"], got["_row_no"]) == (["1"], [1])


def test_read_ahead_keeps_order_errors_and_closes() -> None:
    """prefetched: same batches in order, the reader's error after the batches before it, and an
    early stop closes the reader (its finally runs) without hanging."""
    import pyarrow as pa

    from connectors.readers import prefetched

    closed: list[str] = []

    def source(n: int, fail_at: int | None = None):
        try:
            for i in range(n):
                if i == fail_at:
                    raise SourceReadError(f"bad at {i}")
                yield pa.record_batch([pa.array([i])], names=["i"])
        finally:
            closed.append(f"{n}/{fail_at}")

    assert [b["i"][0].as_py() for b in prefetched(source(7), depth=2)] == list(range(7))
    got = []
    with pytest.raises(SourceReadError, match="bad at 4"):
        for b in prefetched(source(9, 4), depth=1):
            got.append(b["i"][0].as_py())
    assert got == [0, 1, 2, 3]
    it = prefetched(source(100), depth=2)
    assert next(it)["i"][0].as_py() == 0
    it.close()
    assert closed == ["7/None", "9/4", "100/None"]
