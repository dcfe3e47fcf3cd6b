"""Tiny synthetic work databases for the rule tests: staged tables, std.record, person links."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Iterable

import duckdb
import pandas as pd

CONTRACTS = {
    "reg": SimpleNamespace(kind="household_registry", department="public_security"),
    "wanted": SimpleNamespace(kind="wanted_list", department="public_security"),
    "pension": SimpleNamespace(kind="pension_payments",
                               department="human_resources_social_security"),
    "subsidy": SimpleNamespace(kind="subsistence_allowance", department="civil_affairs"),
    "crem": SimpleNamespace(kind="cremation", department="civil_affairs"),
    "dcert": SimpleNamespace(kind="death_certificate", department="health"),
    "bcert": SimpleNamespace(kind="birth_certificate", department="health"),
    "grid": SimpleNamespace(kind="grid_collection", department="grid_centre"),
}
"""Source name -> contract stand-in (kind, department)."""

TYPES = {
    "household_no": "VARCHAR", "relation_to_head": "VARCHAR", "registry_status": "VARCHAR",
    "registered_at": "DATE", "cancel_date": "DATE", "cancel_reason": "VARCHAR",
    "death_date": "DATE", "birth_date": "DATE", "pension_last_paid_month": "DATE",
    "pension_monthly_amount": "DECIMAL(18,2)", "subsidy_last_paid_month": "DATE",
    "subsidy_monthly_amount": "DECIMAL(18,2)", "subsidy_case_no": "VARCHAR",
    "payment_status": "VARCHAR", "case_no": "VARCHAR", "grid_code": "VARCHAR",
    "address": "VARCHAR", "collected_at": "TIMESTAMP", "id_number": "VARCHAR", "sex": "VARCHAR",
}


def rec(source: str, key: str, person: str | None, id18: str | None = None,
        name_pyf: str | None = None, row_hash: str | None = None, **fields: Any) -> dict:
    """One source record: its source, key, linked person, identity and canonical fields."""
    return {"source": source, "key": key, "person": person, "id18": id18,
            "name_pyf": name_pyf, "row_hash": row_hash or f"h-{source}-{key}", **fields}


def pair(left: str, right: str, band: str = "review", weight: float = 3.0) -> dict:
    """A scored candidate pair of two registry records (``link.pair``) by their keys."""
    return {"pair": ("reg", left, "reg", right, band, weight)}


def build_work_db(con: duckdb.DuckDBPyConnection, records: Iterable[dict],
                  run_id: str = "20261120") -> None:
    """Create staged.<source>, std.record, link.person_link and link.pair from ``records``
    (items made by :func:`rec` and :func:`pair`)."""
    items = list(records)
    pairs = [r["pair"] for r in items if "pair" in r]
    records = [r for r in items if "pair" not in r]
    for s in ("staged", "std", "link"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
    for source in CONTRACTS:
        rows = [r for r in records if r["source"] == source]
        fields = sorted({k for r in records for k in r if k in TYPES})
        cols = ", ".join(f"{f} {TYPES[f]}" for f in fields)
        con.execute(f"CREATE OR REPLACE TABLE staged.{source} (_run_id VARCHAR, _source VARCHAR, "
                    f"_source_key VARCHAR, _row_hash VARCHAR{', ' + cols if cols else ''})")
        for r in rows:
            vals = [run_id, source, r["key"], r["row_hash"]] + [r.get(f) for f in fields]
            con.execute(f"INSERT INTO staged.{source} VALUES ({', '.join('?' * len(vals))})", vals)
    df = pd.DataFrame({
        "source": [r["source"] for r in records], "source_key": [r["key"] for r in records],
        "person_id": [r["person"] for r in records],
        "id_key": [r["id18"] for r in records],
        "id_status": ["valid" if r["id18"] else "missing" for r in records],
        "name_pyf": [r["name_pyf"] for r in records],
        "name_unknown": [False] * len(records),
        "record_time": pd.to_datetime([r.get("collected_at") for r in records]),
        "family_household_no": [r.get("family_household_no") for r in records],
    })
    con.register("df_in", df)
    con.execute("CREATE OR REPLACE TABLE std.record AS SELECT source, source_key, id_key, "
                "id_status, name_pyf, name_unknown, record_time, family_household_no FROM df_in")
    con.execute("CREATE OR REPLACE TABLE link.person_link AS SELECT source, source_key, "
                "person_id, 'model' AS method, 1.0 AS score FROM df_in WHERE person_id IS NOT NULL")
    con.unregister("df_in")
    con.execute("CREATE OR REPLACE TABLE link.pair (source_l VARCHAR, source_key_l VARCHAR, "
                "source_r VARCHAR, source_key_r VARCHAR, band VARCHAR, match_weight DOUBLE)")
    for p in pairs:
        con.execute("INSERT INTO link.pair VALUES (?, ?, ?, ?, ?, ?)", list(p))
