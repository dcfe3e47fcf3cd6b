"""Assembly of ``std.record``: every staged record of every source, identity fields standardised.

One row per staged record (the record's subject person: a birth certificate's subject is the
child; the parents' standardised ID numbers are kept as extra columns, and the household of the
parents in the registry becomes ``family_household_no``, how a newborn meets its registry row).
All standardisation is the pure vectorised functions of :mod:`matching.standardise`; this
module only reads the staged tables, calls them and writes the result.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Iterator

import duckdb
import pandas as pd

from warehouse.connection import quote_ident

log = logging.getLogger(__name__)

INPUT_FIELDS: dict[str, str] = {
    "id_number": "VARCHAR", "name": "VARCHAR", "sex": "VARCHAR", "birth_date": "DATE",
    "birth_month": "DATE", "ethnicity": "VARCHAR", "address": "VARCHAR", "phone": "VARCHAR",
    "household_no": "VARCHAR", "relation_to_head": "VARCHAR", "registry_status": "VARCHAR",
    "cancel_date": "DATE", "cancel_reason": "VARCHAR", "death_date": "DATE",
    "mother_id_number": "VARCHAR", "father_id_number": "VARCHAR",
}
"""Canonical staged fields std.record reads (absent ones are NULL)."""

TIME_FIELDS = ("source_updated_at", "issued_at", "collected_at", "registered_at", "case_date",
               "subsidy_approved_date", "cremation_date", "death_date")
"""Fields giving a record's recency (first present, in this order) for survivorship."""

STD_COLUMNS: dict[str, str] = {
    "record_id": "BIGINT", "source": "VARCHAR", "source_key": "VARCHAR", "kind": "VARCHAR",
    "department": "VARCHAR", "run_id": "VARCHAR", "row_hash": "VARCHAR",
    "id_raw": "VARCHAR", "id18": "VARCHAR", "id_key": "VARCHAR", "id_status": "VARCHAR",
    "id_birth_date": "DATE", "id_sex": "VARCHAR", "id_region": "VARCHAR",
    "name_raw": "VARCHAR", "name": "VARCHAR", "name_py": "VARCHAR", "name_pyf": "VARCHAR",
    "surname": "VARCHAR", "surname_py": "VARCHAR", "name_unknown": "BOOLEAN",
    "sex": "VARCHAR", "birth_date": "DATE", "birth_month": "DATE", "ethnicity": "VARCHAR",
    "phone": "VARCHAR", "address": "VARCHAR", "district_code": "VARCHAR", "compound": "VARCHAR",
    "building": "VARCHAR", "unit": "VARCHAR", "room": "VARCHAR", "house_key": "VARCHAR",
    "household_no": "VARCHAR", "relation_to_head": "VARCHAR", "registry_status": "VARCHAR",
    "cancel_date": "DATE", "cancel_reason": "VARCHAR", "death_date": "DATE",
    "mother_id_key": "VARCHAR", "father_id_key": "VARCHAR", "family_household_no": "VARCHAR",
    "record_time": "TIMESTAMP", "flags": "VARCHAR[]",
}
"""Columns of ``std.record`` (documented in matching/README.md)."""


def staged_select_sql(table: str, columns: set[str], source: str, kind: str, department: str,
                      run_id: str) -> str:
    """SELECT over one ``staged.<source>`` table giving the std input columns.

    ``staged.<source>`` holds the source as it stands (the validate stage stages only new and
    changed rows and removes keys that disappeared from a full snapshot): the latest row per
    key up to ``run_id`` is the record.
    """
    q = quote_ident
    sel = [f"'{source}' AS source", "CAST(_source_key AS VARCHAR) AS source_key",
           f"'{kind}' AS kind", f"'{department}' AS department",
           "CAST(_run_id AS VARCHAR) AS run_id",
           ("CAST(_row_hash AS VARCHAR)" if "_row_hash" in columns else "NULL::VARCHAR")
           + " AS row_hash"]
    for f, typ in INPUT_FIELDS.items():
        sel.append(f"TRY_CAST({q(f)} AS {typ}) AS {f}" if f in columns
                   else f"NULL::{typ} AS {f}")
    times = [f"TRY_CAST({q(f)} AS TIMESTAMP)" for f in TIME_FIELDS if f in columns]
    sel.append(f"coalesce({', '.join(times)}) AS record_time" if times
               else "NULL::TIMESTAMP AS record_time")
    sel.append("CAST(_flags AS VARCHAR[]) AS flags" if "_flags" in columns
               else "NULL::VARCHAR[] AS flags")
    run = f"CAST(_run_id AS VARCHAR) <= '{run_id}'"
    where = (f"WHERE {run} QUALIFY row_number() OVER (PARTITION BY _source_key "
             "ORDER BY _run_id DESC) = 1")
    return f"SELECT {', '.join(sel)} FROM {table} {where}"


def staged_queries(con: duckdb.DuckDBPyConnection, run_id: str,
                   contracts: dict[str, Any] | None = None,
                   sources: tuple[str, ...] | None = None) -> list[str]:
    """One SELECT per ``staged.<source>`` table giving its current records (std input)."""
    contracts = contracts or {}
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'staged' "
        "ORDER BY table_name").fetchall()]
    parts = []
    for t in tables:
        if sources and t not in sources:
            continue
        cols = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'staged' "
            "AND table_name = ?", [t]).fetchall()}
        if "_source_key" not in cols or "_run_id" not in cols:
            log.warning("staged.%s has no lineage columns; skipped", t)
            continue
        c = contracts.get(t)
        kind = getattr(c, "kind", "unknown") if c is not None else "unknown"
        dept = getattr(c, "department", "") if c is not None else ""
        parts.append(staged_select_sql(f"staged.{quote_ident(t)}", cols, t, kind,
                                       dept.replace("'", "''"), run_id))
    return parts


def read_staged(con: duckdb.DuckDBPyConnection, run_id: str,
                contracts: dict[str, Any] | None = None,
                sources: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Every current staged record of every ``staged.<source>`` table, std input columns."""
    parts = staged_queries(con, run_id, contracts, sources)
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in
                             ["source", "source_key", "kind", "department", "run_id",
                              "row_hash", *INPUT_FIELDS, "record_time", "flags"]})
    return con.execute(" UNION ALL BY NAME ".join(parts)
                       + " ORDER BY source, source_key").df()


def iter_staged(con: duckdb.DuckDBPyConnection, queries: list[str],
                chunk_rows: int = 200_000) -> Iterator[pd.DataFrame]:
    """The staged records of ``queries`` in frames of at most about ``chunk_rows`` rows (read
    on a separate cursor so the caller can write between chunks)."""
    cur = con.cursor()
    try:
        for q in queries:
            res = cur.execute(q)
            while True:
                chunk = res.fetch_df_chunk(max(1, chunk_rows // 2048))
                if chunk is None or len(chunk) == 0:
                    break
                yield chunk
    finally:
        cur.close()


def _as_frame(x: pd.Series | pd.DataFrame, name: str) -> pd.DataFrame:
    return x.to_frame(name) if isinstance(x, pd.Series) else x


def _dates(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, errors="coerce").dt.normalize()


def standardise_records(staged: pd.DataFrame) -> pd.DataFrame:
    """Standardise the identity fields of staged records (pure; vectorised).

    ``staged`` has the columns of :func:`read_staged`; the result has :data:`STD_COLUMNS`
    except ``record_id`` and ``family_household_no`` (added in SQL by :func:`write_std`).
    """
    from matching.standardise import addresses, ids, names, phones, sex

    out = staged[["source", "source_key", "kind", "department", "run_id", "row_hash"]].copy()
    out["source_key"] = out["source_key"].astype(str)
    idf = ids.classify_ids(staged["id_number"].astype("string"))
    out["id_raw"] = ids.clean_id(staged["id_number"].astype("string"))
    for c in ("id18", "id_key", "id_status", "id_sex", "id_region"):
        out[c] = idf[c]
    out["id_birth_date"] = _dates(idf["id_birth_date"])

    raw_name = staged["name"].astype("string")
    out["name_raw"] = raw_name
    norm = names.normalise_name(raw_name)
    out["name"] = norm.mask(norm == "")
    out["name_py"] = names.name_pinyin(out["name"])
    out["name_pyf"] = names.pinyin_fuzzy(out["name_py"])
    split = names.split_surname(out["name"])
    out["surname"] = split["surname"]
    out["surname_py"] = names.name_pinyin(out["surname"])
    flags = _as_frame(names.name_flags(raw_name), "flags")
    unknown_cols = [c for c in flags.columns if "unknown" in c or "rare" in c]
    if unknown_cols:
        out["name_unknown"] = flags[unknown_cols].astype(bool).any(axis=1)
    else:
        out["name_unknown"] = out["name"].str.contains(r"[?？\ue000-\uf8ff]", regex=True,
                                                       na=False)

    out["sex"] = sex.normalise_sex(staged["sex"].astype("string"))
    out["birth_date"] = _dates(staged["birth_date"])
    month = _dates(staged["birth_month"])
    out["birth_month"] = month.fillna(out["birth_date"]).dt.to_period("M").dt.to_timestamp()
    out["ethnicity"] = staged["ethnicity"]
    out["phone"] = phones.normalise_phone(staged["phone"].astype("string"))
    out["address"] = staged["address"]
    adr = addresses.parse_addresses(staged["address"].astype("string"))
    for c in ("district_code", "compound", "building", "unit", "room", "house_key"):
        out[c] = adr[c] if c in adr.columns else None
    for c in ("household_no", "relation_to_head", "registry_status", "cancel_reason"):
        out[c] = staged[c]
    for c in ("cancel_date", "death_date"):
        out[c] = _dates(staged[c])
    out["mother_id_key"] = ids.classify_ids(staged["mother_id_number"].astype("string"))["id_key"]
    out["father_id_key"] = ids.classify_ids(staged["father_id_number"].astype("string"))["id_key"]
    out["record_time"] = pd.to_datetime(staged["record_time"], errors="coerce")
    out["flags"] = staged["flags"]
    return out


def write_std(con: duckdb.DuckDBPyConnection, std: pd.DataFrame | Iterable[pd.DataFrame]) -> int:
    """Replace ``std.record`` with ``std`` (one frame, or frames written one at a time);
    record ids by (source, key); family households from the registry rows."""
    con.execute("CREATE SCHEMA IF NOT EXISTS std")
    cols = [c for c in STD_COLUMNS if c not in ("record_id", "family_household_no")]
    casts = ", ".join(f"TRY_CAST(s.{c} AS {STD_COLUMNS[c]}) AS {c}" for c in cols)
    con.execute("CREATE OR REPLACE TEMP TABLE std_parts AS SELECT "
                + ", ".join(f"NULL::{STD_COLUMNS[c]} AS {c}" for c in cols) + " LIMIT 0")
    for part in ([std] if isinstance(std, pd.DataFrame) else std):
        con.register("std_in", part)
        con.execute(f"INSERT INTO std_parts SELECT {casts} FROM std_in s")
        con.unregister("std_in")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE std_typed AS
        SELECT row_number() OVER (ORDER BY source, source_key) - 1 AS record_id, *
        FROM std_parts""")
    con.execute("DROP TABLE std_parts")
    select = ", ".join(f"t.{c}" if c != "family_household_no" else
                       "coalesce(mh.household_no, fh.household_no) AS family_household_no"
                       for c in STD_COLUMNS)
    con.execute(f"""
        CREATE OR REPLACE TABLE std.record AS
        WITH hh AS (SELECT id_key, min(household_no) AS household_no FROM std_typed
                    WHERE id_key IS NOT NULL AND household_no IS NOT NULL
                      AND kind = 'household_registry' GROUP BY id_key)
        SELECT {select}
        FROM std_typed t
        LEFT JOIN hh mh ON mh.id_key = t.mother_id_key
        LEFT JOIN hh fh ON fh.id_key = t.father_id_key
        ORDER BY t.record_id""")
    con.execute("DROP TABLE std_typed")
    return int(con.execute("SELECT count(*) FROM std.record").fetchall()[0][0])
