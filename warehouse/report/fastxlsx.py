"""A fast, minimal XLSX writer for large tables (voter rolls of 100,000s of rows, the report's
findings workbook).

openpyxl writes about 10^5 cells a second; a 600,000-person roll would take minutes. This
writer builds the sheet XML with vectorised pandas string operations (inline strings, numbers
as numbers, a bold header row) and zips it: a few seconds for 10^6 rows. The result is a plain
Office Open XML workbook (openpyxl, Excel, WPS and LibreOffice open it); same table, same bytes.
"""

from __future__ import annotations

import zipfile
from datetime import datetime
from pathlib import Path
from typing import Sequence

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


def _row_numbers(n: int) -> pa.Array:
    """Worksheet row numbers of ``n`` records as text (row 1 is the header)."""
    return pc.cast(pa.array(np.arange(2, n + 2)), pa.string())


def _worksheet(df: pd.DataFrame, letters: Sequence[str], rows: pa.Array,
               parts: Sequence[pa.Array]) -> bytes:
    """The worksheet XML: ``df``'s header row (bold, frozen), then the rows of ``parts``
    (one array of ``<c>`` elements per column)."""
    head = "".join(f'<c r="{lt}1" s="1" t="inlineStr"><is><t>{_esc1(str(c))}</t></is></c>'
                   for lt, c in zip(letters, df.columns))
    n = len(df)
    dim = f"A1:{letters[-1]}{n + 1}" if letters else "A1"
    head_xml = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                f'<dimension ref="{dim}"/>'
                '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
                'activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
                f'<sheetData><row r="1">{head}</row>')
    if not n or not parts:
        return head_xml.encode("utf-8") + b"</sheetData></worksheet>"
    xml_rows = pc.binary_join_element_wise('<row r="', rows, '">', *parts, "</row>", "")
    return head_xml.encode("utf-8") + _concat(xml_rows) + b"</sheetData></worksheet>"


def sheet_xml(df: pd.DataFrame) -> bytes:
    """The worksheet XML of ``df`` (header row bold and frozen, then one row per record)."""
    letters = column_letters(len(df.columns))
    rows = _row_numbers(len(df))
    return _worksheet(df, letters, rows,
                      [_cells(df[c], lt, rows) for lt, c in zip(letters, df.columns)])


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


def column_kind(col: pd.Series) -> str | None:
    """How :func:`write_workbook` writes a column: ``"num"``, ``"bool"`` or ``"str"``; None
    when its values mix kinds or are of another type (dates, lists: use openpyxl)."""
    if pd.api.types.is_bool_dtype(col):
        return "bool"
    if pd.api.types.is_numeric_dtype(col):
        return "num"
    if not (pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)):
        return None
    kinds = {_KINDS.get(t) for t in col.dropna().map(type).unique()}
    if not kinds:
        return "str"
    return kinds.pop() if len(kinds) == 1 and None not in kinds else None


_KINDS: dict[type, str] = {str: "str", bool: "bool", np.bool_: "bool", int: "num", float: "num",
                           np.int64: "num", np.int32: "num", np.float64: "num"}


def _typed_cells(col: pd.Series, kind: str, letter: str, rows: pa.Array) -> pa.Array:
    """``<c>`` elements of a column of :func:`column_kind` ``kind``."""
    if kind == "bool":
        v = pa.array(col.map({True: "1", False: "0", np.True_: "1", np.False_: "0"}),
                     from_pandas=True, type=pa.string())
        cell = pc.binary_join_element_wise('<c r="', letter, rows, '" t="b"><v>', v,
                                           "</v></c>", "")
        return pc.fill_null(cell, "")
    if kind == "num" and not pd.api.types.is_numeric_dtype(col):
        col = pd.to_numeric(col)
    if kind == "str":
        col = col.astype(object)
    return _cells(col, letter, rows)


def _sheet_xml_typed(df: pd.DataFrame, kinds: Sequence[str]) -> bytes:
    """The worksheet XML of ``df``, each column written as its :func:`column_kind`."""
    letters = column_letters(len(df.columns))
    rows = _row_numbers(len(df))
    return _worksheet(df, letters, rows, [_typed_cells(df.iloc[:, i], kinds[i], lt, rows)
                                          for i, lt in enumerate(letters)])


def write_workbook(path: Path | str, sheets: Sequence[tuple[str, pd.DataFrame]],
                   stamp: datetime | None = None, creator: str = "unigrid") -> Path:
    """Write ``(sheet name, table)`` sheets as one workbook at ``path``; return the path.

    Sheet names must already be valid and unique (``writers.sheet_name``). Each column is
    written by its :func:`column_kind` (numbers, booleans, inline strings; missing values as
    empty cells), the header row bold and frozen. Reproducible: zip entries carry a fixed time
    and the document's created/modified dates are ``stamp`` (default 2000-01-01). Raises
    ValueError when a column has no kind (then use openpyxl).
    """
    kinds = []
    for _, df in sheets:
        k = [column_kind(df.iloc[:, i]) for i in range(df.shape[1])]
        bad = [c for c, x in zip(df.columns, k) if x is None]
        if bad:
            raise ValueError(f"write_workbook: column {bad[0]!r} mixes value kinds")
        kinds.append(k)
    iso = (stamp or datetime(*_TIME)).strftime("%Y-%m-%dT%H:%M:%SZ")
    n = len(sheets)
    ct = _CT.replace('<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
                     'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>', "".join(
                         f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="'
                         'application/vnd.openxmlformats-officedocument.spreadsheetml.'
                         'worksheet+xml"/>' for i in range(1, n + 1)))
    ct = ct.replace("</Types>", '<Override PartName="/docProps/core.xml" ContentType="'
                    'application/vnd.openxmlformats-package.core-properties+xml"/></Types>')
    rels = _RELS.replace("</Relationships>", '<Relationship Id="rId2" Type="http://schemas.'
                         'openxmlformats.org/package/2006/relationships/metadata/core-'
                         'properties" Target="docProps/core.xml"/></Relationships>')
    wb_rels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
               '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
               'relationships">' + "".join(
                   f'<Relationship Id="rId{i}" Type="http://schemas.openxmlformats.org/'
                   f'officeDocument/2006/relationships/worksheet" Target="worksheets/'
                   f'sheet{i}.xml"/>' for i in range(1, n + 1))
               + f'<Relationship Id="rId{n + 1}" Type="http://schemas.openxmlformats.org/'
               'officeDocument/2006/relationships/styles" Target="styles.xml"/>'
               '</Relationships>')
    wb = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
          '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
          'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
          + "".join(f'<sheet name="{_esc1(name)}" sheetId="{i}" r:id="rId{i}"/>'
                    for i, (name, _) in enumerate(sheets, start=1))
          + "</sheets></workbook>")
    core = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
            'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f"<dc:creator>{_esc1(creator)}</dc:creator>"
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{iso}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{iso}</dcterms:modified>'
            "</cp:coreProperties>")
    entries: list[tuple[str, str | bytes]] = [
        ("[Content_Types].xml", ct), ("_rels/.rels", rels), ("docProps/core.xml", core),
        ("xl/workbook.xml", wb), ("xl/_rels/workbook.xml.rels", wb_rels),
        ("xl/styles.xml", _STYLES)]
    entries += [(f"xl/worksheets/sheet{i}.xml", _sheet_xml_typed(df, k))
                for i, ((_, df), k) in enumerate(zip(sheets, kinds), start=1)]
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for arc, text in entries:
            zi = zipfile.ZipInfo(arc, date_time=_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, text if isinstance(text, bytes) else text.encode("utf-8"),
                       compresslevel=1)
    return path
