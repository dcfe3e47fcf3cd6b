"""Assembly of ``std.record``: every staged record of every source, identity fields standardised.

One row per staged record (the record's subject person: a birth certificate's subject is the
child; the parents' standardised ID numbers are kept as extra columns, and the household of the
parents in the registry becomes ``family_household_no``, how a newborn meets its registry row).
All standardisation is the pure vectorised functions of :mod:`matching.standardise`; this
module only reads the staged tables, calls them and writes the result.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Iterator

import duckdb
import numpy as np
import pandas as pd

from warehouse.connection import quote_ident, table_exists

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
                      run_id: str, key_filter: str = "") -> str:
    """SELECT over one ``staged.<source>`` table giving the std input columns.

    ``staged.<source>`` holds the source as it stands (the validate stage stages only new and
    changed rows and removes keys that disappeared from a full snapshot): the latest row per
    key up to ``run_id`` is the record. ``key_filter``: an extra SQL condition on the staged
    rows (e.g. only some keys).
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
    run = f"CAST(_run_id AS VARCHAR) <= '{run_id}'" + (f" AND {key_filter}" if key_filter else "")
    where = (f"WHERE {run} QUALIFY row_number() OVER (PARTITION BY _source_key "
             "ORDER BY _run_id DESC) = 1")
    return f"SELECT {', '.join(sel)} FROM {table} {where}"


def _staged_tables(con: duckdb.DuckDBPyConnection, contracts: dict[str, Any] | None,
                   sources: tuple[str, ...] | None) -> list[tuple[str, set[str], str, str]]:
    """(table, columns, kind, department) of each ``staged.<source>`` with lineage columns."""
    contracts = contracts or {}
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'staged' "
        "ORDER BY table_name").fetchall()]
    out = []
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
        out.append((t, cols, kind, dept.replace("'", "''")))
    return out


def staged_queries(con: duckdb.DuckDBPyConnection, run_id: str,
                   contracts: dict[str, Any] | None = None,
                   sources: tuple[str, ...] | None = None,
                   only_todo: bool = False) -> list[str]:
    """One SELECT per ``staged.<source>`` table giving its current records (std input).

    ``only_todo``: only the keys marked ``todo`` in ``std.stage_keys`` (:func:`plan_keys`).
    """
    parts = []
    for t, cols, kind, dept in _staged_tables(con, contracts, sources):
        lit = t.replace("'", "''")
        todo = (f"CAST(_source_key AS VARCHAR) IN (SELECT source_key FROM std.stage_keys "
                f"WHERE source = '{lit}' AND todo)") if only_todo else ""
        parts.append(staged_select_sql(f"staged.{quote_ident(t)}", cols, lit, kind, dept, run_id,
                                       todo))
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
    """The staged records of ``queries`` in frames of about ``chunk_rows`` rows (read on a
    separate cursor so the caller can write between chunks). Small results of several queries
    are put together into one frame: each standardiser call has a fixed cost, and on an
    incremental night every source has only a few changed records."""
    cur = con.cursor()
    buf: list[pd.DataFrame] = []
    held = 0
    try:
        for q in queries:
            res = cur.execute(q)
            while True:
                chunk = res.fetch_df_chunk(max(1, chunk_rows // 2048))
                if chunk is None or len(chunk) == 0:
                    break
                buf.append(chunk)
                held += len(chunk)
                if held >= chunk_rows:
                    yield buf[0] if len(buf) == 1 else pd.concat(buf, ignore_index=True)
                    buf, held = [], 0
        if buf:
            yield buf[0] if len(buf) == 1 else pd.concat(buf, ignore_index=True)
    finally:
        cur.close()


def _as_frame(x: pd.Series | pd.DataFrame, name: str) -> pd.DataFrame:
    return x.to_frame(name) if isinstance(x, pd.Series) else x


def _dates(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, errors="coerce").dt.normalize()


def once_per_distinct(s: pd.Series, fn: Callable[[pd.Series], pd.DataFrame]) -> pd.DataFrame:
    """``fn`` (row-wise: each output row depends on its input row only) applied once per
    distinct value of ``s`` and taken back to the rows of ``s`` (same index).

    The distinct values go in with a null appended, so null rows get exactly what ``fn`` gives a
    null. Names, addresses and ID numbers repeat across departments and household members.
    """
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    distinct = pd.concat([pd.Series(uniques, dtype=s.dtype),
                          pd.Series([pd.NA], dtype=s.dtype)], ignore_index=True)
    done = fn(distinct)
    take = np.where(codes >= 0, codes, len(uniques))
    return done.iloc[take].set_axis(s.index)


def id_fields(s: pd.Series) -> pd.DataFrame:
    """ID columns of std.record (``id_raw`` ... ``id_region``) from raw ID numbers (pure)."""
    from matching.standardise import ids

    idf = ids.classify_ids(s)
    out = pd.DataFrame({"id_raw": ids.clean_id(s)}, index=s.index)
    for c in ("id18", "id_key", "id_status", "id_sex", "id_region"):
        out[c] = idf[c]
    out["id_birth_date"] = _dates(idf["id_birth_date"])
    return out


def name_fields(raw: pd.Series) -> pd.DataFrame:
    """Name columns of std.record (``name`` ... ``name_unknown``) from raw names (pure)."""
    from matching.standardise import names

    out = pd.DataFrame(index=raw.index)
    norm = names.normalise_name(raw)
    out["name"] = norm.mask(norm == "")
    out["name_py"] = names.name_pinyin(out["name"])
    out["name_pyf"] = names.pinyin_fuzzy(out["name_py"])
    out["surname"] = names.split_surname(out["name"])["surname"]
    out["surname_py"] = names.name_pinyin(out["surname"])
    flags = _as_frame(names.name_flags(raw), "flags")
    unknown_cols = [c for c in flags.columns if "unknown" in c or "rare" in c]
    if unknown_cols:
        out["name_unknown"] = flags[unknown_cols].astype(bool).any(axis=1)
    else:
        out["name_unknown"] = out["name"].str.contains(r"[?？\ue000-\uf8ff]", regex=True,
                                                       na=False)
    return out


ADDRESS_FIELDS = ("district_code", "compound", "building", "unit", "room", "house_key")
"""Parsed address columns of std.record."""


def address_fields(s: pd.Series) -> pd.DataFrame:
    """Parsed address columns of std.record from raw addresses (pure)."""
    from matching.standardise import addresses

    adr = addresses.parse_addresses(s)
    return pd.DataFrame({c: adr[c] if c in adr.columns else None for c in ADDRESS_FIELDS},
                        index=s.index)


def standardise_records(staged: pd.DataFrame) -> pd.DataFrame:
    """Standardise the identity fields of staged records (pure; vectorised).

    ``staged`` has the columns of :func:`read_staged`; the result has :data:`STD_COLUMNS`
    except ``record_id`` and ``family_household_no`` (added in SQL by :func:`apply_std`).
    ID numbers, names and addresses are standardised once per distinct value
    (:func:`once_per_distinct`).
    """
    from matching.standardise import ids, phones, sex

    out = staged[["source", "source_key", "kind", "department", "run_id", "row_hash"]].copy()
    out["source_key"] = out["source_key"].astype(str)
    idf = once_per_distinct(staged["id_number"].astype("string"), id_fields)
    for c in idf.columns:
        out[c] = idf[c]

    raw_name = staged["name"].astype("string")
    out["name_raw"] = raw_name
    nf = once_per_distinct(raw_name, name_fields)
    for c in nf.columns:
        out[c] = nf[c]

    out["sex"] = sex.normalise_sex(staged["sex"].astype("string"))
    out["birth_date"] = _dates(staged["birth_date"])
    month = _dates(staged["birth_month"])
    out["birth_month"] = month.fillna(out["birth_date"]).dt.to_period("M").dt.to_timestamp()
    out["ethnicity"] = staged["ethnicity"]
    out["phone"] = phones.normalise_phone(staged["phone"].astype("string"))
    out["address"] = staged["address"]
    adr = once_per_distinct(staged["address"].astype("string"), address_fields)
    for c in ADDRESS_FIELDS:
        out[c] = adr[c]
    for c in ("household_no", "relation_to_head", "registry_status", "cancel_reason"):
        out[c] = staged[c]
    for c in ("cancel_date", "death_date"):
        out[c] = _dates(staged[c])
    for c in ("mother", "father"):
        parent = staged[f"{c}_id_number"].astype("string")
        out[f"{c}_id_key"] = once_per_distinct(
            parent, lambda u: ids.classify_ids(u)[["id_key"]])["id_key"]
    out["record_time"] = pd.to_datetime(staged["record_time"], errors="coerce")
    out["flags"] = staged["flags"]
    return out


# ------------------------------------------------------------------ incremental std.record

KEY_COLUMNS: dict[str, str] = {"source": "VARCHAR", "source_key": "VARCHAR", "record_id": "BIGINT"}
"""Columns of ``std.record_key``: the append-only map giving every key ever seen its id."""

DELTA_COLUMNS: dict[str, str] = {"record_id": "BIGINT", "source": "VARCHAR",
                                 "source_key": "VARCHAR", "change": "VARCHAR"}
"""Columns of ``std.delta`` (one row per record new, changed or removed in the last run)."""

DELTA_META_COLUMNS: dict[str, str] = {"run_id": "VARCHAR", "full": "BOOLEAN", "records": "BIGINT",
                                      "new": "BIGINT", "changed": "BIGINT", "removed": "BIGINT"}
"""Columns of ``std.delta_meta`` (one row describing the last run)."""

_FHN_SQL = """
    WITH hh AS (SELECT id_key, min(household_no) AS household_no FROM {t}
                WHERE id_key IS NOT NULL AND household_no IS NOT NULL
                  AND kind = 'household_registry' GROUP BY id_key)
    SELECT t.record_id, coalesce(mh.household_no, fh.household_no) AS family_household_no
    FROM {t} t
    LEFT JOIN hh mh ON mh.id_key = t.mother_id_key
    LEFT JOIN hh fh ON fh.id_key = t.father_id_key"""
"""Each record's ``family_household_no``: the mother's (else the father's) registry household."""


_FHN_DELTA_SQL = """
    CREATE OR REPLACE TEMP TABLE std_fhn AS
    WITH k AS (SELECT id_key FROM std_new WHERE kind = 'household_registry'
               UNION SELECT id_key FROM std.record_undo WHERE kind = 'household_registry'),
    todo AS (SELECT record_id, mother_id_key, father_id_key, family_household_no
             FROM std.record
             WHERE record_id IN (SELECT record_id FROM std_new)
                OR mother_id_key IN (SELECT id_key FROM k)
                OR father_id_key IN (SELECT id_key FROM k)),
    hh AS (SELECT id_key, min(household_no) AS household_no FROM std.record
           WHERE id_key IS NOT NULL AND household_no IS NOT NULL
             AND kind = 'household_registry'
             AND id_key IN (SELECT mother_id_key FROM todo UNION SELECT father_id_key FROM todo)
           GROUP BY id_key),
    f AS (SELECT t.record_id, t.family_household_no AS was,
                 coalesce(mh.household_no, fh.household_no) AS family_household_no
          FROM todo t LEFT JOIN hh mh ON mh.id_key = t.mother_id_key
          LEFT JOIN hh fh ON fh.id_key = t.father_id_key)
    SELECT record_id, family_household_no FROM f
    WHERE was IS DISTINCT FROM family_household_no"""
"""Incremental ``family_household_no`` (after the run's rows replaced theirs; ``std_new``: the
new rows, ``std.record_undo``: the rows they replaced or removed): only a registry row of an ID
number can change that number's household, so only the new rows and the records whose mother
or father has such a number are recomputed (as :data:`_FHN_SQL` would). Rows whose value
differs, with the new value."""


def _ddl(columns: dict[str, str]) -> str:
    return ", ".join(f"{quote_ident(c)} {t}" for c, t in columns.items())


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? "
        "AND table_name = ? ORDER BY ordinal_position", [schema, table]).fetchall()]


def std_record_current(con: duckdb.DuckDBPyConnection) -> bool:
    """True when ``std.record`` exists with exactly :data:`STD_COLUMNS` (names, order, types)."""
    return _columns(con, "std", "record") == list(STD_COLUMNS.items())


def ensure_std_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``std.record_key``, ``std.delta`` and ``std.delta_meta`` when missing. A new key
    map is seeded from an existing ``std.record`` (its ids are kept)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS std")
    if not table_exists(con, "std", "record_key"):
        con.execute(f"CREATE TABLE std.record_key ({_ddl(KEY_COLUMNS)})")
        if {"source", "source_key", "record_id"} <= {c for c, _ in _columns(con, "std", "record")}:
            con.execute("INSERT INTO std.record_key SELECT DISTINCT CAST(source AS VARCHAR), "
                        "CAST(source_key AS VARCHAR), CAST(record_id AS BIGINT) FROM std.record "
                        "WHERE record_id IS NOT NULL")
    con.execute(f"CREATE TABLE IF NOT EXISTS std.delta ({_ddl(DELTA_COLUMNS)})")
    con.execute(f"CREATE TABLE IF NOT EXISTS std.delta_meta ({_ddl(DELTA_META_COLUMNS)})")


def rollback_run(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    """Undo what an earlier standardisation of this same run did to ``std.record`` (so a re-run
    starts from the state before it and gives the same table and delta). True if undone.

    Only the last run can be undone: its replaced and removed rows are kept in
    ``std.record_undo`` (after a full rebuild: the whole previous table). The key map is not
    rolled back (append-only: a re-run finds the same ids there).
    """
    ensure_std_tables(con)
    meta = con.execute('SELECT "full" FROM std.delta_meta WHERE run_id = ?', [run_id]).fetchall()
    if not meta:
        return False
    con.execute("BEGIN")
    try:
        if meta[0][0]:
            con.execute("DROP TABLE IF EXISTS std.record")
            if table_exists(con, "std", "record_undo"):
                con.execute("ALTER TABLE std.record_undo RENAME TO record")
        else:
            con.execute("DELETE FROM std.record WHERE record_id IN (SELECT record_id FROM "
                        "std.delta WHERE change IN ('new', 'changed'))")
            if table_exists(con, "std", "record_undo"):
                con.execute("INSERT INTO std.record SELECT * FROM std.record_undo")
        con.execute("DROP TABLE IF EXISTS std.record_undo")
        con.execute("DELETE FROM std.delta")
        con.execute("DELETE FROM std.delta_meta")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return True


def staged_keys_sql(con: duckdb.DuckDBPyConnection, run_id: str,
                    contracts: dict[str, Any] | None = None,
                    sources: tuple[str, ...] | None = None) -> str | None:
    """SELECT of every current staged key: ``source, source_key, run_id, row_hash`` (the latest
    row per key up to ``run_id``, as :func:`staged_select_sql` reads it)."""
    parts = []
    for t, cols, _, _ in _staged_tables(con, contracts, sources):
        lit = t.replace("'", "''")
        rh = "CAST(_row_hash AS VARCHAR)" if "_row_hash" in cols else "NULL::VARCHAR"
        parts.append(
            f"SELECT '{lit}' AS source, CAST(_source_key AS VARCHAR) AS source_key, "
            f"CAST(_run_id AS VARCHAR) AS run_id, {rh} AS row_hash FROM staged.{quote_ident(t)} "
            f"WHERE CAST(_run_id AS VARCHAR) <= '{run_id}' QUALIFY row_number() OVER "
            "(PARTITION BY _source_key ORDER BY _run_id DESC) = 1")
    return " UNION ALL ".join(parts) if parts else None


def plan_keys(con: duckdb.DuckDBPyConnection, run_id: str, full: bool,
              contracts: dict[str, Any] | None = None,
              sources: tuple[str, ...] | None = None) -> tuple[int, int]:
    """Write ``std.stage_keys(source, source_key, todo)``: every current staged key, ``todo``
    when it must be standardised (full run; key not in ``std.record``; or its staged row is a
    newer version than the one standardised: different ``run_id`` or ``row_hash``). Committed
    (a real table) so that :func:`iter_staged`'s separate cursor can read it. Returns (keys, todo).
    """
    con.execute("CREATE SCHEMA IF NOT EXISTS std")
    keys = staged_keys_sql(con, run_id, contracts, sources)
    if keys is None:
        con.execute("CREATE OR REPLACE TABLE std.stage_keys (source VARCHAR, source_key VARCHAR, "
                    "todo BOOLEAN)")
        return 0, 0
    if full or not std_record_current(con):
        con.execute(f"CREATE OR REPLACE TABLE std.stage_keys AS SELECT source, source_key, "
                    f"TRUE AS todo FROM ({keys}) k")
    else:
        con.execute(f"""
            CREATE OR REPLACE TABLE std.stage_keys AS
            SELECT k.source, k.source_key,
                   (r.source IS NULL OR r.run_id IS DISTINCT FROM k.run_id
                    OR r.row_hash IS DISTINCT FROM k.row_hash) AS todo
            FROM ({keys}) k
            LEFT JOIN std.record r ON r.source = k.source AND r.source_key = k.source_key""")
    n, todo = con.execute("SELECT count(*), count(*) FILTER (WHERE todo) "
                          "FROM std.stage_keys").fetchall()[0]
    return int(n), int(todo)


def _collect(con: duckdb.DuckDBPyConnection, std: pd.DataFrame | Iterable[pd.DataFrame]) -> None:
    """Insert standardised frames (one, or several one at a time) into TEMP ``std_parts``."""
    cols = [c for c in STD_COLUMNS if c not in ("record_id", "family_household_no")]
    casts = ", ".join(f"TRY_CAST(s.{c} AS {STD_COLUMNS[c]}) AS {c}" for c in cols)
    con.execute("CREATE OR REPLACE TEMP TABLE std_parts AS SELECT "
                + ", ".join(f"NULL::{STD_COLUMNS[c]} AS {c}" for c in cols) + " LIMIT 0")
    for part in ([std] if isinstance(std, pd.DataFrame) else std):
        con.register("std_in", part)
        try:
            con.execute(f"INSERT INTO std_parts SELECT {casts} FROM std_in s")
        finally:
            con.unregister("std_in")


def apply_std(con: duckdb.DuckDBPyConnection, std: pd.DataFrame | Iterable[pd.DataFrame],
              run_id: str | None, full: bool, scope: tuple[str, ...] | None = None
              ) -> dict[str, Any]:
    """Write standardised records into ``std.record`` and record the run's delta.

    ``full``: ``std`` is every record; ``std.record`` is rebuilt from it (also when it is
    missing or has other columns). Otherwise ``std`` holds the records of the keys marked
    ``todo`` in ``std.stage_keys`` (new or newer versions): those replace their rows, and
    records whose key is no longer in ``std.stage_keys`` are deleted (only of the ``scope``
    sources when given). Ids come from ``std.record_key`` (new keys appended in (source, key)
    order); ``family_household_no`` is recomputed for every record, and a record whose value
    changes counts as changed. Writes ``std.delta``, ``std.delta_meta`` and the undo rows of
    :func:`rollback_run` in one transaction. Returns the ``std.delta_meta`` row as a dict.
    """
    con.execute("CREATE SCHEMA IF NOT EXISTS std")
    _collect(con, std)
    ensure_std_tables(con)
    full = full or not std_record_current(con)
    select = ", ".join("f.family_household_no" if c == "family_household_no" else f"t.{c}"
                       for c in STD_COLUMNS)
    plain = ", ".join("NULL::VARCHAR AS family_household_no" if c == "family_household_no"
                      else f"t.{c}" for c in STD_COLUMNS)
    con.execute("BEGIN")
    try:
        con.execute("""
            INSERT INTO std.record_key
            SELECT p.source, p.source_key, coalesce((SELECT max(record_id) FROM std.record_key),
                   -1) + row_number() OVER (ORDER BY p.source, p.source_key)
            FROM (SELECT DISTINCT source, source_key FROM std_parts) p
            ANTI JOIN std.record_key k ON k.source = p.source AND k.source_key = p.source_key""")
        con.execute("""
            CREATE OR REPLACE TEMP TABLE std_new AS
            SELECT k.record_id, p.* FROM std_parts p
            JOIN std.record_key k ON k.source = p.source AND k.source_key = p.source_key""")
        con.execute("DROP TABLE std_parts")
        con.execute("DELETE FROM std.delta")
        con.execute("DROP TABLE IF EXISTS std.record_undo")
        if full:
            had = table_exists(con, "std", "record")
            if had:
                con.execute("ALTER TABLE std.record RENAME TO record_undo")
            con.execute(f"""
                CREATE TABLE std.record AS SELECT {select}
                FROM std_new t JOIN ({_FHN_SQL.format(t='std_new')}) f USING (record_id)
                ORDER BY t.record_id""")
            con.execute("INSERT INTO std.delta SELECT record_id, source, source_key, 'new' "
                        "FROM std.record")
            if had and {"source", "source_key"} <= {c for c, _ in
                                                    _columns(con, "std", "record_undo")}:
                con.execute("""
                    INSERT INTO std.delta
                    SELECT k.record_id, k.source, k.source_key, 'removed'
                    FROM (SELECT DISTINCT CAST(source AS VARCHAR) AS source,
                                 CAST(source_key AS VARCHAR) AS source_key
                          FROM std.record_undo) u
                    JOIN std.record_key k ON k.source = u.source AND k.source_key = u.source_key
                    ANTI JOIN std.record r ON r.source = u.source AND r.source_key = u.source_key""")
        else:
            in_scope = ("TRUE" if not scope else
                        "r.source IN (" + ", ".join("'" + s.replace("'", "''") + "'"
                                                    for s in scope) + ")")
            # rows leaving std.record: replaced by a new version, or their key is gone
            con.execute(f"""
                INSERT INTO std.delta
                SELECT r.record_id, r.source, r.source_key,
                       CASE WHEN n.record_id IS NULL THEN 'removed' ELSE 'changed' END
                FROM std.record r LEFT JOIN std_new n ON n.record_id = r.record_id
                WHERE n.record_id IS NOT NULL OR ({in_scope} AND NOT EXISTS (
                    SELECT 1 FROM std.stage_keys k
                    WHERE k.source = r.source AND k.source_key = r.source_key))""")
            con.execute("CREATE TABLE std.record_undo AS SELECT * FROM std.record "
                        "WHERE record_id IN (SELECT record_id FROM std.delta)")
            con.execute("DELETE FROM std.record WHERE record_id IN "
                        "(SELECT record_id FROM std.delta)")
            con.execute(f"INSERT INTO std.record SELECT {plain} FROM std_new t")
            con.execute("INSERT INTO std.delta SELECT n.record_id, n.source, n.source_key, 'new' "
                        "FROM std_new n ANTI JOIN std.delta d ON d.record_id = n.record_id")
            # family households follow the parents' registry rows: recompute them for the
            # new rows and for the children of the ID numbers whose registry rows changed
            con.execute(_FHN_DELTA_SQL)
            con.execute("""
                INSERT INTO std.record_undo SELECT * FROM std.record
                WHERE record_id IN (SELECT record_id FROM std_fhn)
                  AND record_id NOT IN (SELECT record_id FROM std_new)""")
            con.execute("""
                INSERT INTO std.delta SELECT r.record_id, r.source, r.source_key, 'changed'
                FROM std.record r
                WHERE r.record_id IN (SELECT record_id FROM std_fhn)
                  AND r.record_id NOT IN (SELECT record_id FROM std_new)""")
            con.execute("""
                UPDATE std.record SET family_household_no = f.family_household_no
                FROM std_fhn f WHERE std.record.record_id = f.record_id""")
            con.execute("DROP TABLE std_fhn")
        con.execute("DROP TABLE std_new")
        records, new, changed, removed = con.execute("""
            SELECT (SELECT count(*) FROM std.record), count(*) FILTER (WHERE change = 'new'),
                   count(*) FILTER (WHERE change = 'changed'),
                   count(*) FILTER (WHERE change = 'removed') FROM std.delta""").fetchall()[0]
        meta = {"run_id": run_id, "full": bool(full), "records": int(records), "new": int(new),
                "changed": int(changed), "removed": int(removed)}
        con.execute("DELETE FROM std.delta_meta")
        con.execute("INSERT INTO std.delta_meta VALUES (?, ?, ?, ?, ?, ?)", list(meta.values()))
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return meta


def write_std(con: duckdb.DuckDBPyConnection, std: pd.DataFrame | Iterable[pd.DataFrame]) -> int:
    """Replace ``std.record`` with ``std`` (one frame, or frames written one at a time): a full
    rebuild (:func:`apply_std`); ids from the key map, family households from the registry
    rows. Returns the record count."""
    return int(apply_std(con, std, None, full=True)["records"])
