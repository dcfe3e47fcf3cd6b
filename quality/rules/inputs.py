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

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import duckdb

from warehouse.connection import quote_ident, table_exists

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


class Role(NamedTuple):
    """What the rules need of a source contract: its kind and department."""

    kind: str
    department: str


def contract_roles(folder: Path | str) -> dict[str, Role]:
    """Source name -> :class:`Role` from the contract files ``folder/*.yaml``.

    Reads only ``name``, ``kind`` and ``department`` with a plain YAML parser: the full
    contract model (``connectors.contract``, pydantic) costs more than a second to import, and
    the extract stage has validated the same files before this stage runs. A file without
    these keys is skipped (no rule could use its records).
    """
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out: dict[str, Role] = {}
    for p in sorted(Path(folder).glob("*.yaml")):
        d = yaml.load(p.read_text(encoding="utf-8"), Loader=loader) or {}
        if isinstance(d, dict) and all(isinstance(d.get(k), str)
                                       for k in ("name", "kind", "department")):
            out[d["name"]] = Role(d["kind"], d["department"])
    return out


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
                      run_id: str, dedupe: bool = True, keys: str | None = None) -> str:
    """SELECT of one staged table's current rows (latest version per key up to ``run_id``).

    ``dedupe=False`` skips the window that keeps the latest row per key (for a table already
    holding one row per key, as validation writes it: the window costs more than the rest).
    ``keys``: only the keys listed for this source in that table (``source``, ``source_key``).
    """
    lit = lambda s: "'" + str(s).replace("'", "''") + "'"  # noqa: E731
    q = quote_ident
    sel = [f"{lit(table)} AS source", "CAST(_source_key AS VARCHAR) AS source_key",
           f"{lit(kind)} AS kind", f"{lit(department)} AS department",
           ("CAST(_row_hash AS VARCHAR)" if "_row_hash" in columns else "NULL::VARCHAR")
           + " AS row_hash"]
    for f, typ in REC_FIELDS.items():
        sel.append(f"TRY_CAST({q(f)} AS {typ}) AS {f}" if f in columns else f"NULL::{typ} AS {f}")
    conds = [f"CAST(_run_id AS VARCHAR) <= {lit(run_id)}"] if "_run_id" in columns else []
    if keys is not None:  # rows found on the key column alone, then read by rowid: reading
        # every column of every row before a join filters them costs ten times more
        conds.append(f"rowid IN (SELECT rowid FROM staged.{q(table)} WHERE CAST(_source_key AS "
                     f"VARCHAR) IN (SELECT source_key FROM {keys} WHERE source = {lit(table)}))")
    where = f"WHERE {' AND '.join(conds)}" if conds else ""
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


CHANGED_COLUMNS = "person_id, source, source_key, kind, subsidy_case_no, id18, id_ok"
"""What ``chk_changed`` keeps of a changed row: what the rules' scopes are computed from."""

STATE_VERSION = 1
"""Bump when the definition of ``"check".rec`` changes: the next run rebuilds it in full."""


def inputs_fingerprint(contracts: Mapping[str, Any]) -> str:
    """Hash of what ``"check".rec`` is built from besides the data: contract kinds and
    departments, :data:`REC_FIELDS`, :data:`STD_FIELDS` and :data:`STATE_VERSION`."""
    roles = sorted((str(n), str(c.kind), str(c.department)) for n, c in contracts.items())
    text = json.dumps([STATE_VERSION, roles, REC_FIELDS, STD_FIELDS], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _rec_sql(con: duckdb.DuckDBPyConnection, run_id: str, contracts: Mapping[str, Any],
             keys: str | None = None) -> str:
    """SELECT of ``chk_rec`` rows: every current record, or only those whose
    ``(source, source_key)`` is in the table ``keys``."""
    parts = []
    for t in staged_tables(con):
        c = contracts.get(t)
        cols = _columns(con, "staged", t)
        if c is None or "_source_key" not in cols:
            continue
        if keys is None:
            parts.append(source_select_sql(t, cols, c.kind, c.department, run_id,
                                           dedupe=has_duplicate_keys(con, t)))
            continue
        parts.append(source_select_sql(t, cols, c.kind, c.department, run_id, dedupe=True,
                                       keys=keys))
    if not parts:
        empty = ", ".join([f"NULL::VARCHAR AS {c}" for c in
                           ("source", "source_key", "kind", "department", "row_hash")]
                          + [f"NULL::{t} AS {f}" for f, t in REC_FIELDS.items()])
        parts = [f"SELECT {empty} WHERE FALSE"]
    std_cols = _columns(con, "std", "record")
    std_sel = ", ".join(f"{expr} AS {name}" if std_cols else f"NULL AS {name}"
                        for name, expr in STD_FIELDS.items())
    if keys is None:
        std_join = ("LEFT JOIN std.record s ON s.source = u.source AND s.source_key = u.source_key"
                    if std_cols else "")
        return f"""
        WITH u AS ({' UNION ALL BY NAME '.join(parts)})
        SELECT u.*, l.person_id, {std_sel},
               coalesce(u.collected_at, u.issued_at, u.source_updated_at,
                        u.case_date::TIMESTAMP) AS event_time
        FROM u JOIN link.person_link l ON l.source = u.source AND l.source_key = u.source_key
        {std_join}"""
    # a few keys: each side restricted to them first (materialised), so that the joins are
    # between small tables (the planner otherwise hashes all of person_link or std.record)
    std_cte = (f""", s AS MATERIALIZED (SELECT * FROM std.record WHERE rowid IN (
                   SELECT r.rowid FROM std.record r SEMI JOIN {keys} k
                   ON k.source = r.source AND k.source_key = r.source_key))""" if std_cols else "")
    std_join = ("LEFT JOIN s ON s.source = u.source AND s.source_key = u.source_key"
                if std_cols else "")
    return f"""
        WITH u AS MATERIALIZED ({' UNION ALL BY NAME '.join(parts)}),
        l AS MATERIALIZED (SELECT p.source, p.source_key, p.person_id FROM link.person_link p
                           SEMI JOIN {keys} k ON k.source = p.source
                                             AND k.source_key = p.source_key){std_cte}
        SELECT u.*, l.person_id, {std_sel},
               coalesce(u.collected_at, u.issued_at, u.source_updated_at,
                        u.case_date::TIMESTAMP) AS event_time
        FROM u JOIN l ON l.source = u.source AND l.source_key = u.source_key
        {std_join}"""


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> Any:
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def incremental_base(con: duckdb.DuckDBPyConnection, run_id: str, fingerprint: str
                     ) -> str | None:
    """The run ``"check".rec`` can be brought forward from with the day's deltas, or None
    (then the stage rebuilds it in full).

    Incremental only when: ``"check".rec_state`` has the same input fingerprint; standardise
    and match ran incrementally for this run (``std.delta_meta``, ``link.delta_meta``); the
    previous match run ``P`` (``link.person_link_history``) is the run ``"check".rec`` was
    built for (or this run was already checked on top of ``P``: a re-run), and no staged row
    is from a run between ``P`` and this one (a night whose check did not run).
    """
    if not (table_exists(con, "check", "rec_state") and table_exists(con, "check", "rec")
            and table_exists(con, "std", "delta_meta") and table_exists(con, "std", "delta")
            and table_exists(con, "link", "delta_meta")
            and table_exists(con, "link", "delta_person")
            and table_exists(con, "link", "person_link_history")):
        return None
    state = con.execute('SELECT run_id, base_run, fingerprint FROM "check".rec_state').fetchall()
    if len(state) != 1 or state[0][2] != fingerprint:
        return None
    built, base_before, _ = state[0]
    std = con.execute('SELECT run_id, "full" FROM std.delta_meta').fetchall()
    link = con.execute('SELECT run_id, "full" FROM link.delta_meta').fetchall()
    if std != [(run_id, False)] or link != [(run_id, False)]:
        return None
    prev = _one(con, "SELECT max(run_id) FROM link.person_link_history WHERE run_id < ?",
                [run_id])
    if prev is None:
        return None
    if built == prev:
        base = prev
    elif built == run_id and base_before == prev:
        base = prev
    else:
        return None
    for t in staged_tables(con):
        if "_run_id" in _columns(con, "staged", t) and _one(
                con, f"SELECT count(*) FROM staged.{quote_ident(t)} "
                     "WHERE CAST(_run_id AS VARCHAR) > ? AND CAST(_run_id AS VARCHAR) < ?",
                [base, run_id]):
            return None
    return base


def _state_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute('CREATE SCHEMA IF NOT EXISTS "check"')
    con.execute('CREATE TABLE IF NOT EXISTS "check".rec_state (run_id VARCHAR, '
                'base_run VARCHAR, fingerprint VARCHAR, "full" BOOLEAN)')
    con.execute('CREATE TABLE IF NOT EXISTS "check".rec_dirty_key (source VARCHAR, '
                'source_key VARCHAR)')
    con.execute('CREATE TABLE IF NOT EXISTS "check".rec_dirty_person (person_id VARCHAR)')


def refresh_rec(con: duckdb.DuckDBPyConnection, run_id: str, contracts: Mapping[str, Any],
                full: bool = False) -> dict[str, Any]:
    """Bring ``"check".rec`` (the persistent ``chk_rec``) to ``run_id``; return what was done.

    In full (``full``, or :func:`incremental_base` finds no base) every record is selected
    again. Otherwise only the records whose row can differ from the stored one are rebuilt:
    keys with a staged row of this run, keys in ``std.delta`` (new, changed, removed records;
    ``family_household_no`` changes count as changed) and every record of a person in
    ``link.delta_person`` (new, changed or removed persons: a record moved between persons
    touches both). On a re-run of the same run the keys and persons of the earlier run are
    rebuilt too. When incremental, leaves the temp tables ``chk_changed`` (the rows removed
    and the rows inserted) and ``chk_touched`` (their persons and the delta's persons) for the
    rules. Either way the table equals a full selection (tests/rules/test_incremental.py).
    """
    _state_tables(con)
    for t in ("chk_changed", "chk_touched", "chk_rec_t"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    fp = inputs_fingerprint(contracts)
    built_before = _one(con, 'SELECT max(run_id) FROM "check".rec_state')
    base = None if full else incremental_base(con, run_id, fp)
    if base is None:
        con.execute('CREATE OR REPLACE TABLE "check".rec AS ' + _rec_sql(con, run_id, contracts))
        con.execute('DELETE FROM "check".rec_dirty_key')
        con.execute('DELETE FROM "check".rec_dirty_person')
        con.execute('DELETE FROM "check".rec_state')
        con.execute('INSERT INTO "check".rec_state VALUES (?, NULL, ?, TRUE)', [run_id, fp])
        return {"full": True, "rebuilt": None, "built_before": built_before}
    rerun = built_before == run_id
    staged = []
    for t in staged_tables(con):
        cols = _columns(con, "staged", t)
        if t in contracts and "_source_key" in cols and "_run_id" in cols:
            lit = t.replace("'", "''")
            staged.append(f"SELECT '{lit}' AS source, CAST(_source_key AS VARCHAR) AS source_key "
                          f"FROM staged.{quote_ident(t)} WHERE CAST(_run_id AS VARCHAR) > "
                          f"'{base}'")
    prev_keys = 'UNION SELECT source, source_key FROM "check".rec_dirty_key' if rerun else ""
    prev_persons = 'UNION SELECT person_id FROM "check".rec_dirty_person' if rerun else ""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE chk_dirty_key AS
        SELECT DISTINCT source, source_key FROM (
            {' UNION ALL '.join(staged + ['SELECT CAST(source AS VARCHAR), CAST(source_key AS VARCHAR) FROM std.delta'])}
            {prev_keys})""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE chk_dirty_person AS
        SELECT DISTINCT person_id FROM (
            SELECT CAST(person_id AS VARCHAR) AS person_id FROM link.delta_person {prev_persons})
        WHERE person_id IS NOT NULL""")
    # the records to select again: dirty keys, and every current record of a dirty person
    con.execute("""
        CREATE OR REPLACE TEMP TABLE chk_want AS
        SELECT source, source_key FROM chk_dirty_key
        UNION SELECT l.source, l.source_key FROM link.person_link l
              SEMI JOIN chk_dirty_person d ON d.person_id = l.person_id""")
    gone = """r.person_id IN (SELECT person_id FROM chk_dirty_person) OR EXISTS (
                  SELECT 1 FROM chk_want w WHERE w.source = r.source
                  AND w.source_key = r.source_key)"""
    # chk_changed: what the rules need of the rows leaving and the rows entering; chk_touched:
    # persons whose rows or person changed (the rules re-run for them, quality.rules.runner).
    # Rows are found on narrow columns and then read or deleted by rowid.
    con.execute(f'CREATE OR REPLACE TEMP TABLE chk_gone AS SELECT r.rowid AS rid '
                f'FROM "check".rec r WHERE {gone}')
    con.execute(f"""CREATE OR REPLACE TEMP TABLE chk_changed AS SELECT {CHANGED_COLUMNS}
                    FROM "check".rec WHERE rowid IN (SELECT rid FROM chk_gone)""")
    con.execute('DELETE FROM "check".rec WHERE rowid IN (SELECT rid FROM chk_gone)')
    con.execute("CREATE OR REPLACE TEMP TABLE chk_new AS "
                + _rec_sql(con, run_id, contracts, keys="chk_want"))
    con.execute('INSERT INTO "check".rec SELECT * FROM chk_new')
    con.execute(f"INSERT INTO chk_changed SELECT {CHANGED_COLUMNS} FROM chk_new")
    for t in ("chk_new", "chk_gone"):
        con.execute(f"DROP TABLE {t}")
    con.execute("""CREATE OR REPLACE TEMP TABLE chk_touched AS
                   SELECT person_id FROM chk_changed WHERE person_id IS NOT NULL
                   UNION SELECT person_id FROM chk_dirty_person""")
    con.execute('DELETE FROM "check".rec_dirty_key')
    con.execute('INSERT INTO "check".rec_dirty_key SELECT * FROM chk_dirty_key')
    con.execute('DELETE FROM "check".rec_dirty_person')
    con.execute('INSERT INTO "check".rec_dirty_person SELECT * FROM chk_dirty_person')
    con.execute('DELETE FROM "check".rec_state')
    con.execute('INSERT INTO "check".rec_state VALUES (?, ?, ?, FALSE)', [run_id, base, fp])
    n = _one(con, "SELECT count(*) FROM chk_want")
    for t in ("chk_dirty_key", "chk_dirty_person", "chk_want"):
        con.execute(f"DROP TABLE {t}")
    return {"full": False, "base_run": base, "rebuilt": int(n), "built_before": built_before}


PAIR_COLUMNS = ("source_l", "source_key_l", "source_r", "source_key_r", "band", "match_weight")


def pair_sql(con: duckdb.DuckDBPyConnection, keys: str | None = None) -> str:
    """SELECT of ``chk_pair`` rows from ``link.pair`` (match and review band, both records
    of household-registry sources); with ``keys``, only pairs whose two records are both in
    that table (``source``, ``source_key``)."""
    if not set(PAIR_COLUMNS) <= _columns(con, "link", "pair"):
        return ("SELECT NULL::VARCHAR AS source_l, NULL::VARCHAR AS source_key_l, "
                "NULL::VARCHAR AS source_r, NULL::VARCHAR AS source_key_r, NULL::VARCHAR AS band,"
                " NULL::DOUBLE AS match_weight WHERE FALSE")
    only = "" if keys is None else f"""
              AND EXISTS (SELECT 1 FROM {keys} k WHERE k.source = source_l
                          AND k.source_key = CAST(source_key_l AS VARCHAR))
              AND EXISTS (SELECT 1 FROM {keys} k WHERE k.source = source_r
                          AND k.source_key = CAST(source_key_r AS VARCHAR))"""
    return f"""
            WITH reg AS (SELECT DISTINCT source FROM chk_rec WHERE kind = 'household_registry')
            SELECT source_l, CAST(source_key_l AS VARCHAR) AS source_key_l, source_r,
                   CAST(source_key_r AS VARCHAR) AS source_key_r, band, match_weight
            FROM link.pair
            WHERE band IN ('review', 'match') AND source_l IN (SELECT source FROM reg)
              AND source_r IN (SELECT source FROM reg){only}"""


def death_sql(rec: str = "chk_rec") -> str:
    """SELECT of ``chk_death`` rows from the records in ``rec`` (a person's row depends on
    their own records only: give every record of the persons to recompute)."""
    kinds = ", ".join(f"'{k}'" for k in DEATH_KINDS)
    return f"""
        WITH ev AS (
            SELECT person_id, source, source_key, row_hash, kind, kind IN ({kinds}) AS direct,
                   id18, name_pyf || '|' || CAST(birth_date AS VARCHAR) AS ident,
                   CASE WHEN kind IN ({kinds}) THEN death_date ELSE cancel_date END AS d
            FROM {rec}
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
        FROM ev GROUP BY person_id"""


def prepare_inputs(con: duckdb.DuckDBPyConnection, run_id: str,
                   contracts: Mapping[str, Any], full: bool = False) -> dict[str, Any]:
    """Bring ``"check".rec`` to the run (:func:`refresh_rec`) and ``"check".death`` with it;
    create the views ``chk_rec`` and ``chk_death`` on them and, after a full refresh, the
    temp table ``chk_pair`` (an incremental run selects the pairs it needs:
    :mod:`quality.rules.runner`); return row counts and what the refresh did.

    ``contracts`` maps source name -> contract (``kind``, ``department``); staged tables
    without a contract are skipped (their kind is unknown, so no rule can use them).
    """
    refreshed = refresh_rec(con, run_id, contracts, full)
    con.execute("DROP TABLE IF EXISTS chk_pair")
    con.execute('CREATE OR REPLACE TEMP VIEW chk_rec AS SELECT * FROM "check".rec')
    if refreshed["full"] or not table_exists(con, "check", "death"):
        con.execute('CREATE OR REPLACE TABLE "check".death AS ' + death_sql())
    else:
        # every record of the touched persons, read by rowid (also the rules' per-person scope)
        con.execute("""CREATE OR REPLACE TEMP TABLE chk_rec_t AS SELECT * FROM "check".rec
                       WHERE rowid IN (SELECT r.rowid FROM "check".rec r
                                       SEMI JOIN chk_touched t ON t.person_id = r.person_id)""")
        con.execute('DELETE FROM "check".death WHERE person_id IN '
                    "(SELECT person_id FROM chk_touched)")
        con.execute('INSERT INTO "check".death ' + death_sql("chk_rec_t"))
    con.execute('CREATE OR REPLACE TEMP VIEW chk_death AS SELECT * FROM "check".death')
    if refreshed["full"]:
        con.execute("CREATE OR REPLACE TEMP TABLE chk_pair AS " + pair_sql(con))
    out: dict[str, Any] = {"rec": int(_one(con, 'SELECT count(*) FROM "check".rec')),
                           "death": int(_one(con, 'SELECT count(*) FROM "check".death')),
                           "refresh": refreshed}
    return out
