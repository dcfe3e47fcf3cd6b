"""The tables the rules read, prepared once per run as temporary tables of the work connection.

- ``chk_rec``: every current staged record that the match stage linked to a person: lineage
  (``source``, ``source_key``, ``row_hash``), the contract's ``kind`` and ``department``,
  ``person_id`` (from ``link.person_link``), the canonical fields in :data:`REC_FIELDS`
  (NULL where a source does not map them) and the standardised identity columns of
  ``std.record`` (``id18``, ``id_ok``, ``name_pyf``, ``name_unknown``, ``record_time``,
  ``family_household_no``).
- ``chk_pair``: scored candidate pairs of two household-registry records that the match stage
  put in the ``match`` or ``review`` band (``link.pair``; empty when absent): two registrations
  the model found alike but did not link (e.g. the same name and birth date under two ID
  numbers) -- the shape of a 重户 awaiting review;
- ``chk_death``: per person, the death evidence: the earliest death date of a death certificate
  or cremation record (``direct``), else the cancellation date of a registration cancelled for
  death (an upper bound of the death date); the evidence records and kinds; the usable ID
  numbers (``ids``) and name|birth date keys (``idents``) of the evidence, so a rule can check
  that another record of the person agrees with the evidence (see
  :func:`quality.rules.catalog.agrees`).

Everything is SQL in DuckDB; nothing is pulled into Python.
"""

from __future__ import annotations

from typing import Any, Mapping

import duckdb

from warehouse.connection import quote_ident

REC_FIELDS: dict[str, str] = {
    "household_no": "VARCHAR", "relation_to_head": "VARCHAR", "registry_status": "VARCHAR",
    "registered_at": "DATE", "cancel_date": "DATE", "cancel_reason": "VARCHAR",
    "death_date": "DATE", "cremation_date": "DATE", "birth_date": "DATE", "sex": "VARCHAR",
    "pension_last_paid_month": "DATE", "pension_monthly_amount": "DECIMAL(18,2)",
    "subsidy_last_paid_month": "DATE", "subsidy_monthly_amount": "DECIMAL(18,2)",
    "subsidy_case_no": "VARCHAR", "payment_status": "VARCHAR", "case_no": "VARCHAR",
    "case_date": "DATE", "grid_code": "VARCHAR", "address": "VARCHAR", "birth_place": "VARCHAR",
    "collected_at": "TIMESTAMP", "issued_at": "TIMESTAMP", "source_updated_at": "TIMESTAMP",
}
"""Canonical staged fields copied into ``chk_rec`` (absent ones are NULL)."""

STD_FIELDS: dict[str, str] = {
    "id18": "s.id_key", "id_ok": "coalesce(s.id_status IN ('valid', 'legacy15'), FALSE)",
    "name_pyf": "s.name_pyf", "name_unknown": "s.name_unknown",
    "record_time": "s.record_time", "family_household_no": "s.family_household_no",
}
"""Columns taken from ``std.record`` (SQL expressions over alias ``s``)."""

DEATH_KINDS = ("death_certificate", "cremation")
"""Kinds whose ``death_date`` is direct evidence of death."""


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
        "AND table_name = ?", [schema, table]).fetchall()}


def staged_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Names of the ``staged.<source>`` tables, sorted."""
    return [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'staged' "
        "ORDER BY table_name").fetchall()]


def source_select_sql(table: str, columns: set[str], kind: str, department: str,
                      run_id: str, dedupe: bool = True) -> str:
    """SELECT of one staged table's current rows (latest version per key up to ``run_id``).

    ``dedupe=False`` skips the window that keeps the latest row per key (for a table already
    holding one row per key, as validation writes it: the window costs more than the rest).
    """
    lit = lambda s: "'" + str(s).replace("'", "''") + "'"  # noqa: E731
    q = quote_ident
    sel = [f"{lit(table)} AS source", "CAST(_source_key AS VARCHAR) AS source_key",
           f"{lit(kind)} AS kind", f"{lit(department)} AS department",
           ("CAST(_row_hash AS VARCHAR)" if "_row_hash" in columns else "NULL::VARCHAR")
           + " AS row_hash"]
    for f, typ in REC_FIELDS.items():
        sel.append(f"TRY_CAST({q(f)} AS {typ}) AS {f}" if f in columns else f"NULL::{typ} AS {f}")
    where = f"WHERE CAST(_run_id AS VARCHAR) <= {lit(run_id)}" if "_run_id" in columns else ""
    if not dedupe:
        return f"SELECT {', '.join(sel)} FROM staged.{q(table)} {where}"
    order = "ORDER BY CAST(_run_id AS VARCHAR) DESC" if "_run_id" in columns else ""
    return (f"SELECT {', '.join(sel)} FROM staged.{q(table)} {where} "
            f"QUALIFY row_number() OVER (PARTITION BY _source_key {order}) = 1")


def has_duplicate_keys(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """True when ``staged.<table>`` holds more than one row for some ``_source_key``."""
    n, k = con.execute(f"SELECT count(*), count(DISTINCT _source_key) FROM staged."
                       f"{quote_ident(table)}").fetchall()[0]
    return n != k


def prepare_inputs(con: duckdb.DuckDBPyConnection, run_id: str,
                   contracts: Mapping[str, Any]) -> dict[str, int]:
    """Create ``chk_rec``, ``chk_pair`` and ``chk_death`` for the run; return row counts.

    ``contracts`` maps source name -> contract (``kind``, ``department``); staged tables
    without a contract are skipped (their kind is unknown, so no rule can use them).
    """
    parts = []
    for t in staged_tables(con):
        c = contracts.get(t)
        cols = _columns(con, "staged", t)
        if c is None or "_source_key" not in cols:
            continue
        parts.append(source_select_sql(t, cols, c.kind, c.department, run_id,
                                       dedupe=has_duplicate_keys(con, t)))
    if not parts:
        empty = ", ".join([f"NULL::VARCHAR AS {c}" for c in
                           ("source", "source_key", "kind", "department", "row_hash")]
                          + [f"NULL::{t} AS {f}" for f, t in REC_FIELDS.items()])
        parts = [f"SELECT {empty} WHERE FALSE"]
    std_cols = _columns(con, "std", "record")
    std_sel = ", ".join(f"{expr} AS {name}" if std_cols else f"NULL AS {name}"
                        for name, expr in STD_FIELDS.items())
    std_join = ("LEFT JOIN std.record s ON s.source = u.source AND s.source_key = u.source_key"
                if std_cols else "")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE chk_rec AS
        WITH u AS ({' UNION ALL BY NAME '.join(parts)})
        SELECT u.*, l.person_id, {std_sel},
               coalesce(u.collected_at, u.issued_at, u.source_updated_at,
                        u.case_date::TIMESTAMP) AS event_time
        FROM u JOIN link.person_link l ON l.source = u.source AND l.source_key = u.source_key
        {std_join}""")
    pair_cols = _columns(con, "link", "pair")
    need = {"source_l", "source_key_l", "source_r", "source_key_r", "band", "match_weight"}
    if need <= pair_cols:
        con.execute("""
            CREATE OR REPLACE TEMP TABLE chk_pair AS
            WITH reg AS (SELECT DISTINCT source FROM chk_rec WHERE kind = 'household_registry')
            SELECT source_l, CAST(source_key_l AS VARCHAR) AS source_key_l, source_r,
                   CAST(source_key_r AS VARCHAR) AS source_key_r, band, match_weight
            FROM link.pair
            WHERE band IN ('review', 'match') AND source_l IN (SELECT source FROM reg)
              AND source_r IN (SELECT source FROM reg)""")
    else:
        con.execute("""CREATE OR REPLACE TEMP TABLE chk_pair (source_l VARCHAR,
            source_key_l VARCHAR, source_r VARCHAR, source_key_r VARCHAR, band VARCHAR,
            match_weight DOUBLE)""")
    kinds = ", ".join(f"'{k}'" for k in DEATH_KINDS)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE chk_death AS
        WITH ev AS (
            SELECT person_id, source, source_key, row_hash, kind, kind IN ({kinds}) AS direct,
                   id18, name_pyf || '|' || CAST(birth_date AS VARCHAR) AS ident,
                   CASE WHEN kind IN ({kinds}) THEN death_date ELSE cancel_date END AS d
            FROM chk_rec
            WHERE (kind IN ({kinds}) AND death_date IS NOT NULL)
               OR (kind = 'household_registry' AND registry_status = '注销'
                   AND cancel_reason = '死亡' AND cancel_date IS NOT NULL))
        SELECT person_id,
               coalesce(min(d) FILTER (WHERE direct), min(d)) AS death_date,
               bool_or(direct) AS direct,
               list(struct_pack(source := source, source_key := source_key,
                                row_hash := row_hash) ORDER BY source, source_key) AS records,
               string_agg(DISTINCT kind, ',' ORDER BY kind) AS evidence_kinds,
               coalesce(list(DISTINCT id18) FILTER (WHERE id18 IS NOT NULL), []) AS ids,
               coalesce(list(DISTINCT ident) FILTER (WHERE ident IS NOT NULL), []) AS idents
        FROM ev GROUP BY person_id""")
    return {t: int(con.execute(f"SELECT count(*) FROM chk_{t}").fetchall()[0][0])
            for t in ("rec", "death")}
