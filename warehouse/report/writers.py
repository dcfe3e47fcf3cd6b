"""Writers of the report files: XLSX (openpyxl), CSV (UTF-8 with BOM), byte-for-byte
reproducible for the same inputs (no clock: dates come from ``audit.run``)."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Iterable

import pandas as pd

FIXED_ZIP_TIME = (2000, 1, 1, 0, 0, 0)
"""Timestamp stamped on every XLSX zip entry (zip entries otherwise carry the write time)."""

_BAD_SHEET = re.compile(r"[\[\]:*?/\\]")


def sheet_name(title: str, used: set[str]) -> str:
    """A valid, unique Excel sheet name (<= 31 characters, no ``[]:*?/\\``)."""
    base = _BAD_SHEET.sub("_", title)[:31] or "Sheet"
    name, i = base, 2
    while name in used:
        suffix = f"_{i}"
        name, i = base[:31 - len(suffix)] + suffix, i + 1
    used.add(name)
    return name


def _cell(v: object) -> object:
    if v is None or (not isinstance(v, (list, dict, str)) and pd.isna(v)):
        return None
    if hasattr(v, "item"):
        return v.item()
    return v


def frozen_zip(data: bytes, stamp: datetime | None) -> bytes:
    """Rewrite a zip with fixed entry times, and fixed core-property dates (XLSX)."""
    iso = (stamp or datetime(*FIXED_ZIP_TIME)).strftime("%Y-%m-%dT%H:%M:%SZ")
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:)",
                              rb"\g<1>" + iso.encode() + rb"\g<3>", body)
            zi = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            dst.writestr(zi, body)
    return out.getvalue()


def write_xlsx(path: Path, sheets: Iterable[tuple[str, pd.DataFrame]],
               stamp: datetime | None = None) -> Path:
    """Write ``(title, table)`` sheets (headers bold) to ``path``, reproducibly.

    Written by :func:`warehouse.report.fastxlsx.write_workbook` (Arrow string kernels: the
    findings workbook of a million-person city in a fraction of a second) when every column
    holds one kind of value (numbers, booleans or text); else by openpyxl
    (:func:`write_xlsx_openpyxl`), which writes about 10^5 cells a second. Both give the same
    sheet names, headers and cell values (tests/report/test_report.py).
    """
    from warehouse.report.fastxlsx import write_workbook

    used: set[str] = set()
    named = [(sheet_name(title, used), table) for title, table in sheets]
    try:
        return write_workbook(path, named, (stamp or datetime(*FIXED_ZIP_TIME)).replace(
            tzinfo=None))
    except ValueError:  # a column mixing kinds of values
        return write_xlsx_openpyxl(path, named, stamp)


def write_xlsx_openpyxl(path: Path, sheets: Iterable[tuple[str, pd.DataFrame]],
                        stamp: datetime | None = None) -> Path:
    """:func:`write_xlsx` with openpyxl (any cell values openpyxl accepts)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    bold = Font(bold=True)
    used: set[str] = set()
    for title, table in sheets:
        ws = wb.create_sheet(sheet_name(title, used))
        header = []
        for c in table.columns:
            cell = WriteOnlyCell(ws, value=str(c))
            cell.font = bold
            header.append(cell)
        ws.append(header)
        for row in table.itertuples(index=False, name=None):
            ws.append([_cell(v) for v in row])
    fixed = (stamp or datetime(*FIXED_ZIP_TIME)).replace(tzinfo=None)
    wb.properties.created = fixed
    wb.properties.creator = "unigrid"
    buf = io.BytesIO()
    wb.save(buf)
    path.write_bytes(frozen_zip(buf.getvalue(), fixed))
    return path


def write_csv(path: Path, table: pd.DataFrame) -> Path:
    """CSV in UTF-8 with BOM (Excel opens it), ``\\n`` line ends."""
    path.write_bytes(table.to_csv(index=False, lineterminator="\n").encode("utf-8-sig"))
    return path
