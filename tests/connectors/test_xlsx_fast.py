"""The fast XLSX path yields exactly what openpyxl's read-only ``iter_rows(values_only=True)``
yields: workbooks written by openpyxl (both modes) and hand-written sheet XML with every cell
form the fast path handles, plus forms it must hand over to openpyxl (formulas, rich text,
whitespace between cells, entities it does not know), also after rows were already yielded."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import openpyxl
import pytest

from connectors.readers import XlsxReader
from connectors.xlsx_fast import load_workbook, sheet_rows

NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def _openpyxl_rows(path: Path) -> list[tuple]:
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        return list(wb.worksheets[0].iter_rows(values_only=True))
    finally:
        wb.close()


def _fast_rows(path: Path, block: int = 1 << 20) -> list[tuple]:
    wb = load_workbook(path)
    try:
        return list(sheet_rows(wb.worksheets[0], block=block))
    finally:
        wb.close()


def _with_sheet_xml(tmp_path: Path, name: str, sheet_data: str, head: str = "",
                    date1904: bool = False) -> Path:
    """A workbook (date style 1 = yyyy-mm-dd) whose first sheet's XML is replaced."""
    base = tmp_path / f"base_{name}.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "x"
    ws["A2"] = dt.date(2020, 1, 2)  # registers a date style (s="1")
    ws["B2"] = "shared"
    ws["C2"] = "shared two"
    if date1904:
        wb.epoch = openpyxl.utils.datetime.MAC_EPOCH
    wb.save(base)
    out = tmp_path / f"{name}.xlsx"
    with zipfile.ZipFile(base) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = (f'<?xml version="1.0" encoding="UTF-8"?>\n<worksheet {NS}>{head}'
                        f'{sheet_data}</worksheet>').encode("utf-8")
            if item.filename == "[Content_Types].xml":
                data = data.replace(b"</Types>", SST_TYPE + b"</Types>")
            zout.writestr(item, data)
        zout.writestr("xl/sharedStrings.xml", SST)
    return out


SST_TYPE = (b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
            b'officedocument.spreadsheetml.sharedStrings+xml"/>')
SST = (f'<sst {NS} count="3" uniqueCount="3"><si><t>共享</t></si><si><t>two &amp; more</t></si>'
       f'<si><r><t>ri</t></r><r><t>ch</t></r></si></sst>').encode("utf-8")

SHEETS = {
    "inline_and_numbers": '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>编号</t></is></c>'
                          '<c r="B1" t="inlineStr"><is><t>值</t></is></c></row>'
                          '<row r="2"><c r="A2" t="inlineStr"><is><t>0012</t></is></c><c r="B2">'
                          '<v>42</v></c><c r="C2"><v>4.20502199001011E+17</v></c><c r="D2">'
                          '<v>1.5</v></c></row></sheetData>',
    "gaps_rows_and_columns": '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c>'
                             '</row><row r="4"><c r="C4"><v>3</v></c></row><row r="5"/>'
                             '<row r="6"><c r="B6" t="inlineStr"><is><t/></is></c><c r="D6" '
                             't="inlineStr"><is><t></t></is></c></row></sheetData>',
    "no_references": '<sheetData><row><c t="inlineStr"><is><t>a</t></is></c><c><v>1</v></c></row>'
                     '<row><c/><c t="b"><v>1</v></c><c t="b"><v>0</v></c></row></sheetData>',
    "types": '<sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="L1" t="s"><v>1</v></c>'
             '<c r="M1" t="s"><v>2</v></c><c r="B1" t="str"><v>text</v></c>'
             '<c r="C1" t="e"><v>#N/A</v></c><c r="D1" t="d"><v>2021-03-04T05:06:07</v></c>'
             '<c r="E1" s="1"><v>44000</v></c><c r="F1" s="1"><v>44000.5</v></c>'
             '<c r="G1" s="0"><v>7</v></c><c r="H1"><v></v></c><c r="I1"><v/></c>'
             '<c r="J1" t="inlineStr"/><c r="K1" t="inlineStr"><v>9</v></c></row></sheetData>',
    "entities_and_line_ends": '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t xml:space='
                              '"preserve"> a &amp; b &lt;c&gt; &#34;d&#x22; </t></is></c>'
                              '<c r="B1" t="inlineStr"><is><t>l1\r\nl2\rl3</t></is></c></row>'
                              '</sheetData>',
    "attribute_order": '<sheetData><row r="1" spans="1:3" ht="15"><c t="inlineStr" r="B1">'
                       '<is><t>b</t></is></c><c s="0" r="C1" t="n"><v>2</v></c></row>'
                       '</sheetData>',
    "dimension_limits": '<sheetData><row r="1"><c r="A1"><v>1</v></c><c r="B1"><v>2</v></c>'
                        '<c r="C1"><v>3</v></c></row><row r="3"><c r="A3"><v>4</v></c></row>'
                        '<row r="5"><c r="A5"><v>5</v></c></row></sheetData>',
    "out_of_order_rows": '<sheetData><row r="3"><c r="A3"><v>3</v></c></row><row r="2"><c r="A2">'
                         '<v>2</v></c></row><row r="4"><c r="A4"><v>4</v></c></row></sheetData>',
    "empty_sheet": '<sheetData/>',
    # forms the fast path leaves to openpyxl
    "formula": '<sheetData><row r="1"><c r="A1"><v>1</v></c></row><row r="2"><c r="A2"><f>A1+1'
               '</f><v>2</v></c></row></sheetData>',
    "rich_text": '<sheetData><row r="1"><c r="A1"><v>1</v></c></row><row r="2"><c r="A2" '
                 't="inlineStr"><is><r><t>ri</t></r><r><rPr><b/></rPr><t>ch</t></r></is></c>'
                 '</row></sheetData>',
    "pretty_printed": '<sheetData>\n  <row r="1">\n    <c r="A1"><v>1</v></c>\n  </row>\n'
                      '  <row r="2">\n    <c r="A2" t="inlineStr"><is><t>x</t></is></c>\n'
                      '  </row>\n</sheetData>',
}
HEADS = {"dimension_limits": '<dimension ref="A1:B4"/>'}


@pytest.mark.parametrize("name", sorted(SHEETS))
@pytest.mark.parametrize("block", [1 << 20, 40])
def test_fast_rows_equal_openpyxl(tmp_path: Path, name: str, block: int) -> None:
    p = _with_sheet_xml(tmp_path, name, SHEETS[name], HEADS.get(name, ""))
    assert _fast_rows(p, block) == _openpyxl_rows(p)


def test_mac_epoch_dates(tmp_path: Path) -> None:
    p = _with_sheet_xml(tmp_path, "mac", SHEETS["types"], date1904=True)
    assert _fast_rows(p) == _openpyxl_rows(p)


@pytest.mark.parametrize("write_only", [False, True])
def test_openpyxl_written_workbooks(tmp_path: Path, write_only: bool) -> None:
    wb = openpyxl.Workbook(write_only=write_only)
    ws = wb.create_sheet("s") if write_only else wb.active
    ws.append(["编号", "姓名", "日期", "数", "真"])
    for i in range(300):
        ws.append([f"{i:05d}", None if i % 7 == 0 else f"名{i} & <x>", dt.date(2020, 1, 1 + i % 28),
                   i * 1.25 if i % 3 else i, i % 2 == 0])
    if not write_only:
        ws["H310"] = "far"
    p = tmp_path / f"w{write_only}.xlsx"
    wb.save(p)
    assert _fast_rows(p, block=512) == _openpyxl_rows(p)


def test_reader_rows_unchanged_by_fast_path(tmp_path: Path) -> None:
    """The reader's batches (row numbers, rejected rows) come out as from openpyxl's rows."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["k", "v"])
    ws.append(["1", "a"])
    ws.append([None, None])
    ws.append(["3", "c", "beyond"])
    ws.append(["4", 4.5])
    p = tmp_path / "r.xlsx"
    wb.save(p)
    r = XlsxReader(p, 0)
    rows = [b.to_pylist() for b in r.batches()]
    assert [(d["k"], d["v"], d["_row_no"]) for d in rows[0]] == [("1", "a", 1), ("4", "4.5", 4)]
    assert [(x.row_no, x.reason) for x in r.rejected] == [(3, "has values beyond the header's 2 columns")]
