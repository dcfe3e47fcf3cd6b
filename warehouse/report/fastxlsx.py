"""A fast, minimal XLSX writer for large single-sheet tables (voter rolls of 100,000s of rows).

openpyxl writes about 10^5 cells a second; a 600,000-person roll would take minutes. This
writer builds the sheet XML with vectorised pandas string operations (inline strings, numbers
as numbers, a bold header row) and zips it: a few seconds for 10^6 rows. The result is a plain
Office Open XML workbook (openpyxl, Excel, WPS and LibreOffice open it); same table, same bytes.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_CT = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
       '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
       '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
       '<Default Extension="xml" ContentType="application/xml"/>'
       '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
       '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
       '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
       '</Types>')
_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
         '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
         '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
         '</Relationships>')
_WB_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>'
            '</Relationships>')
_STYLES = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
           '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
           '<fonts count="2"><font><sz val="11"/><name val="等线"/></font>'
           '<font><b/><sz val="11"/><name val="等线"/></font></fonts>'
           '<fills count="2"><fill><patternFill patternType="none"/></fill>'
           '<fill><patternFill patternType="gray125"/></fill></fills>'
           '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
           '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
           '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
           '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
           '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
           '</styleSheet>')
_TIME = (2000, 1, 1, 0, 0, 0)


def _escape(a: pa.Array) -> pa.Array:
    """XML-escape a string array (and drop control characters XML 1.0 forbids)."""
    a = pc.replace_substring(a, "&", "&amp;")
    a = pc.replace_substring(a, "<", "&lt;")
    a = pc.replace_substring(a, ">", "&gt;")
    return pc.replace_substring_regex(a, r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "")


def _esc1(text: str) -> str:
    return _escape(pa.array([text]))[0].as_py()


def column_letters(n: int) -> list[str]:
    """Excel column letters of the first ``n`` columns (A, B, ..., Z, AA, ...)."""
    out = []
    for i in range(n):
        s, k = "", i + 1
        while k:
            k, r = divmod(k - 1, 26)
            s = chr(65 + r) + s
        out.append(s)
    return out


def _cells(col: pd.Series, letter: str, rows: pa.Array) -> pa.Array:
    """``<c>`` elements of one column (empty string for a missing value)."""
    join = pc.binary_join_element_wise
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        v = pa.array(col.astype("Float64"), from_pandas=True)
        txt = pc.replace_substring_regex(pc.cast(v, pa.string()), r"\.0$", "")
        cell = join('<c r="', letter, rows, '"><v>', txt, "</v></c>", "")
    else:
        t = pa.array(col.astype("string"), from_pandas=True, type=pa.string())
        cell = join('<c r="', letter, rows, '" t="inlineStr"><is><t>', _escape(t),
                    "</t></is></c>", "")
    return pc.fill_null(cell, "")


def sheet_xml(df: pd.DataFrame) -> bytes:
    """The worksheet XML of ``df`` (header row bold and frozen, then one row per record)."""
    letters = column_letters(len(df.columns))
    head = "".join(f'<c r="{lt}1" s="1" t="inlineStr"><is><t>{_esc1(str(c))}</t></is></c>'
                   for lt, c in zip(letters, df.columns))
    n = len(df)
    rows = pc.cast(pa.array(np.arange(2, n + 2)), pa.string())
    parts = [_cells(df[c], lt, rows) for lt, c in zip(letters, df.columns)]
    xml_rows = pc.binary_join_element_wise('<row r="', rows, '">', *parts, "</row>", "")
    dim = f"A1:{letters[-1]}{n + 1}" if letters else "A1"
    head_xml = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                f'<dimension ref="{dim}"/>'
                '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
                'activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
                f'<sheetData><row r="1">{head}</row>')
    return head_xml.encode("utf-8") + _concat(xml_rows) + b"</sheetData></worksheet>"


def _concat(a: pa.Array) -> bytes:
    """All strings of an array without nulls, concatenated (its data buffer, no copy per row)."""
    a = pa.concat_arrays([a]) if isinstance(a, pa.ChunkedArray) else a
    if not len(a):
        return b""
    offsets = np.frombuffer(a.buffers()[1], dtype=np.int32)[a.offset:a.offset + len(a) + 1]
    return a.buffers()[2].to_pybytes()[int(offsets[0]):int(offsets[-1])]


def write_table_xlsx(path: Path | str, df: pd.DataFrame, sheet: str = "Sheet1") -> Path:
    """Write ``df`` as a one-sheet workbook at ``path``; return the path."""
    name = _esc1(sheet[:31])
    wb = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
          '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
          'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
          f'<sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets></workbook>')
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for arc, text in (("[Content_Types].xml", _CT), ("_rels/.rels", _RELS),
                          ("xl/workbook.xml", wb), ("xl/_rels/workbook.xml.rels", _WB_RELS),
                          ("xl/styles.xml", _STYLES),
                          ("xl/worksheets/sheet1.xml", sheet_xml(df))):
            zi = zipfile.ZipInfo(arc, date_time=_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, text if isinstance(text, bytes) else text.encode("utf-8"),
                       compresslevel=1)
    return path
