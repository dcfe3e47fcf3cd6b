"""Fixtures for quality tests: a tiny contract, raw tables of the connectors' shape, ID helpers."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest

from connectors.contract import Contract

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"
LINEAGE_COLS = ("_run_id", "_source", "_source_key", "_row_no", "_file", "_extracted_at",
                "_row_hash", "_change")


def make_id(region: str = "420502", birth: str = "19900101", seq: str = "123") -> str:
    """A valid 18-character resident ID (check character computed)."""
    first = region + birth + seq
    return first + CHECK[sum(int(d) * w for d, w in zip(first, WEIGHTS)) % 11]


def bad_check(valid: str) -> str:
    """The same number with a wrong check character."""
    wrong = "0" if valid[-1] != "0" else "1"
    return valid[:-1] + wrong


PERSON_CONTRACT: dict[str, Any] = {
    "name": "test_people",
    "system": "test", "department": "test", "department_zh": "测试", "kind": "household_registry",
    "required": True,
    "location": {"path": "people.csv"}, "format": {"type": "csv"},
    "key": ["编号"],
    "columns": [
        {"column": "编号", "field": "household_no"},
        {"column": "姓名", "field": "name", "required": True},
        {"column": "性别", "field": "sex", "codes": {"1": "男", "2": "女"}},
        {"column": "出生日期", "field": "birth_date", "required": True},
        {"column": "身份证号", "field": "id_number"},
        {"column": "死亡日期", "field": "death_date"},
        {"column": "月金额", "field": "pension_monthly_amount"},
        {"column": "人口", "field": "household_size"},
    ],
}
SOURCE_COLUMNS = [c["column"] for c in PERSON_CONTRACT["columns"]]


def make_contract(**overrides: Any) -> Contract:
    """The test contract, with top-level keys overridden."""
    data = {**PERSON_CONTRACT, **overrides}
    return Contract.model_validate(data)


def person_row(key: str | None = "K1", name: str | None = "张三", sex: str | None = "1",
               birth: str | None = "1990-01-01", id_number: str | None = None,
               death: str | None = None, amount: str | None = "1234.50",
               size: str | None = "3") -> dict[str, str | None]:
    """One raw row of the test contract (all text)."""
    if id_number is None:
        digits = (birth or "").replace("-", "")
        id_number = make_id(birth=digits if digits.isdigit() and len(digits) == 8 else "19900101")
    return {"编号": key, "姓名": name, "性别": sex, "出生日期": birth, "身份证号": id_number,
            "死亡日期": death, "月金额": amount, "人口": size}


def land_raw(con: duckdb.DuckDBPyConnection, source: str, rows: Sequence[dict[str, Any]],
             run_id: str = "20261120", columns: Sequence[str] = SOURCE_COLUMNS,
             change: str | Sequence[str] = "new", key: Sequence[str] = ("编号",),
             file: str = "people.csv") -> None:
    """Append rows to ``raw.<source>`` in the connectors' shape (text columns + lineage)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    cols = ", ".join(f'"{c}" VARCHAR' for c in columns)
    con.execute(f'CREATE TABLE IF NOT EXISTS raw."{source}" ({cols}, _run_id VARCHAR, '
                "_source VARCHAR, _source_key VARCHAR, _row_no BIGINT, _file VARCHAR, "
                "_extracted_at TIMESTAMP, _row_hash VARCHAR, _change VARCHAR)")
    changes = [change] * len(rows) if isinstance(change, str) else list(change)
    for i, (r, ch) in enumerate(zip(rows, changes), start=1):
        vals = [r.get(c) for c in columns]
        sk = "|".join((r.get(k) or "") for k in key) or None
        h = hashlib.sha1(repr(vals).encode()).hexdigest()
        con.execute(f'INSERT INTO raw."{source}" VALUES ({", ".join("?" * (len(columns) + 8))})',
                    [*vals, run_id, source, sk, i, file, "2026-11-20 01:00:00", h, ch])


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh work database with the work schemas."""
    from warehouse.connection import connect_work
    c = connect_work(tmp_path / "work.duckdb")
    yield c
    c.close()
