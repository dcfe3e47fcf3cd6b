"""Generated cities shared by the generator tests (built once per session)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from unigrid.synthetic import generate_city

PERSONS, SEED = 5000, 7


@pytest.fixture(scope="session")
def city1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 5,000-person city, day 1."""
    out = tmp_path_factory.mktemp("city") / "day1"
    generate_city(PERSONS, SEED, out)
    return out


@pytest.fixture(scope="session")
def city2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same city, day 2."""
    out = tmp_path_factory.mktemp("city") / "day2"
    generate_city(PERSONS, SEED, out, day=2)
    return out


def manifest(city: Path) -> dict:
    return json.loads((city / "manifest.json").read_text(encoding="utf-8"))


def read_csv(path: Path, encoding: str) -> pd.DataFrame:
    """Everything as text, empty cells as ''."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)


def read_jsonl(path: Path) -> pd.DataFrame:
    return pd.DataFrame([json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()])


def read_xlsx(path: Path, sheet: str) -> pd.DataFrame:
    """Cells as Python values (text, numbers), like a reader that keeps Excel's types."""
    from openpyxl import load_workbook
    wb = load_workbook(path, read_only=True)
    rows = list(wb[sheet].iter_rows(values_only=True))
    wb.close()
    return pd.DataFrame(rows[1:], columns=rows[0])


def read_sql(url: str, table: str) -> pd.DataFrame:
    from sqlalchemy import create_engine
    engine = create_engine(url)
    try:
        with engine.connect() as con:
            return pd.read_sql_table(table, con)
    finally:
        engine.dispose()


def export(city: Path, source: str) -> pd.DataFrame:
    """One source's export as a frame, read per docs/sources.md."""
    e = city / "exports"
    match source:
        case "ps_household_registry":
            return read_csv(e / "ps_household_registry.csv", "gbk")
        case "hrss_pension_ledger":
            return read_csv(e / "hrss_pension_ledger.csv", "gb18030")
        case "grid_collection":
            return read_csv(e / "grid_collection.csv", "utf-8-sig")
        case "health_birth_cert" | "health_death_cert":
            return read_jsonl(e / f"{source}.jsonl")
        case "ca_cremation":
            return read_xlsx(e / "ca_cremation.xlsx", "火化登记")
        case "ca_subsistence":
            return read_xlsx(e / "ca_subsistence.xlsx", "低保名册")
        case "ps_wanted_list":
            return read_sql(f"sqlite:///{e / 'ps_wanted.sqlite'}", "ps_wanted_list")
    raise KeyError(source)


def truth(city: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(city / "truth" / f"{name}.parquet")
