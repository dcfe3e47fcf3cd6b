"""Write the exports (CSV, XLSX, JSON lines, SQL) and the truth (Parquet): I/O at the edge."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import datetime
from pathlib import Path

import pandas as pd

FILES: dict[str, tuple[str, str, str]] = {
    # source: (file name, format, encoding)
    "ps_household_registry": ("ps_household_registry.csv", "csv", "gbk"),
    "ca_cremation": ("ca_cremation.xlsx", "xlsx", "火化登记"),
    "ca_subsistence": ("ca_subsistence.xlsx", "xlsx", "低保名册"),
    "hrss_pension_ledger": ("hrss_pension_ledger.csv", "csv", "gb18030"),
    "health_birth_cert": ("health_birth_cert.jsonl", "jsonl", "utf-8"),
    "health_death_cert": ("health_death_cert.jsonl", "jsonl", "utf-8"),
    "grid_collection": ("grid_collection.csv", "csv", "utf-8-sig"),
}
"""File exports: name, format and encoding (for XLSX: the sheet name)."""
SQL_TABLE = "ps_wanted_list"
SQLITE_FILE = "ps_wanted.sqlite"


def export_columns(frame: pd.DataFrame) -> list[str]:
    """The columns a department's export has (internal ``_`` columns dropped)."""
    return [c for c in frame.columns if not c.startswith("_")]


def write_csv(frame: pd.DataFrame, path: Path, encoding: str) -> None:
    """Encode the whole frame at once; characters outside a legacy code page become ``?``."""
    frame[export_columns(frame)].to_csv(path, index=False, encoding=encoding, errors="replace",
                                        lineterminator="\r\n")


def write_jsonl(frame: pd.DataFrame, path: Path) -> None:
    """One JSON object per line, UTF-8, keys in export column order."""
    cols = export_columns(frame)
    sub = frame[cols].astype(object).where(frame[cols].notna(), None)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for rec in sub.itertuples(index=False, name=None):  # certificates: a few % of persons
            fh.write(json.dumps(dict(zip(cols, rec)), ensure_ascii=False) + "\n")


FIXED_TIME = (2026, 1, 1, 0, 0, 0)


def write_xlsx(frame: pd.DataFrame, path: Path, sheet: str, created: datetime) -> None:
    """XLSX via openpyxl write-only mode; zip entry times and document properties are fixed so
    the same data gives the same bytes."""
    from openpyxl import Workbook
    wb = Workbook(write_only=True)
    wb.properties.created = created
    wb.properties.modified = created
    wb.properties.creator = "unigrid synthetic"
    ws = wb.create_sheet(sheet)
    cols = export_columns(frame)
    ws.append(cols)
    sub = frame[cols].astype(object).where(frame[cols].notna(), None)
    for rec in sub.itertuples(index=False, name=None):  # civil affairs volumes are small
        ws.append(list(rec))
    buf = io.BytesIO()
    wb.save(buf)
    _fixed_zip(buf.getvalue(), path, created)


def _fixed_zip(data: bytes, path: Path, created: datetime) -> None:
    """Rewrite a zip with fixed entry timestamps and modification time (deterministic bytes)."""
    stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    src = zipfile.ZipFile(io.BytesIO(data))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                              rb"\g<1>" + stamp + rb"\g<2>", body)
            dst.writestr(zi, body)


def sqlite_url(exports: Path) -> str:
    """Default SQL location of the wanted list: a SQLite file in the exports."""
    return f"sqlite:///{(exports / SQLITE_FILE).resolve()}"


def masked(url: str) -> str:
    """The URL with any password masked."""
    from sqlalchemy.engine import make_url
    return make_url(url).render_as_string(hide_password=True)


def write_sql(frame: pd.DataFrame, url: str, table: str = SQL_TABLE) -> None:
    """Load the frame into ``table`` (replaced), every column as text."""
    from sqlalchemy import String, create_engine
    engine = create_engine(url)
    cols = export_columns(frame)
    try:
        with engine.begin() as con:
            frame[cols].to_sql(table, con, if_exists="replace", index=False,
                               dtype={c: String(64 if c != "hjdz" else 255) for c in cols})
    finally:
        engine.dispose()


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Truth tables as Parquet (no index)."""
    frame.to_parquet(path, index=False)
