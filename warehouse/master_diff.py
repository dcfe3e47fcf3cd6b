"""Incremental publish: bring a copy of the live master up to date by primary key, in SQL.

An incremental publish builds every table's new content exactly as a full publish does (same
:func:`warehouse.master_build.build_master`), but into a scratch catalog (:data:`FRESH`, a file
next to the building one) instead of the building file. The building file starts as a byte copy of the live master; each
declared table of it is then made equal to its fresh content by deleting the rows that changed
or vanished and inserting the new and changed ones (by primary key), so primary keys and indexes
are maintained rather than rebuilt, and only changed row groups are rewritten at ``CHECKPOINT``.

Nothing here knows a particular table: every table in ``MASTER_TABLES + AUDIT_TABLES`` is kept
by :func:`apply_diff` from its declaration (columns, primary key, and the run stamp column).
The one exception is the publish's own: ``master.person_doc`` is not built in full at all on an
incremental publish; the changed keys of the other tables (kept by ``apply_diff(keep=True)``)
tell :func:`warehouse.person_doc.refresh_person_docs` whose documents to re-render.

A previous master is only reused when its catalog is exactly the one a full publish would create
today (:func:`schema_signature` against :func:`declared_signature`): a schema change, or a master
written by another schema version, makes the publish a full one.
"""

from __future__ import annotations

import time
from functools import lru_cache

import duckdb

from warehouse.schema import ALL_TABLES, RUN_ID, TableSpec, quote

FRESH = "fresh"
"""Catalog alias of the scratch database an incremental publish builds the new content in."""

SCHEMAS = ("master", "audit")

Signature = tuple[tuple[str, ...], ...]


def stamp_column(t: TableSpec) -> str | None:
    """The column stamped with the publishing run on every row (``run_id``), if the table has it.

    Only the shared :data:`warehouse.schema.RUN_ID` declaration counts: a ``run_id`` that is data
    (the run of an event, of an audit row) is compared like any other column.
    """
    return RUN_ID.name if RUN_ID in t.columns else None


def schema_signature(con: duckdb.DuckDBPyConnection, database: str) -> Signature:
    """Tables, columns (type, nullability), constraints and indexes of the ``master`` and
    ``audit`` schemas of an attached database, sorted (names of the database left out)."""
    db = database.replace("'", "''")
    schemas = ", ".join(f"'{s}'" for s in SCHEMAS)
    rows = con.execute(f"""
        SELECT 'column', schema_name, table_name, column_name, data_type,
               CAST(is_nullable AS VARCHAR)
        FROM duckdb_columns() WHERE database_name = '{db}' AND schema_name IN ({schemas})
        UNION ALL
        SELECT 'constraint', schema_name, table_name, constraint_type,
               array_to_string(constraint_column_names, ','), ''
        FROM duckdb_constraints() WHERE database_name = '{db}' AND schema_name IN ({schemas})
        UNION ALL
        SELECT 'index', schema_name, table_name, index_name, expressions,
               CAST(is_unique AS VARCHAR)
        FROM duckdb_indexes() WHERE database_name = '{db}' AND schema_name IN ({schemas})
        ORDER BY ALL""").fetchall()
    return tuple(tuple(str(v) for v in r) for r in rows)


@lru_cache(maxsize=1)
def declared_signature() -> Signature:
    """The signature of the catalog a full publish creates today (tables, keys and indexes made
    the same way, in a throwaway in-memory database)."""
    from warehouse.master_build import add_primary_keys, create_tables

    con = duckdb.connect(":memory:")
    try:
        create_tables(con)
        add_primary_keys(con)
        return schema_signature(con, "memory")
    finally:
        con.close()


def key_join(left: str, right: str, t: TableSpec) -> str:
    """``left.k1 = right.k1 AND ...`` over the table's primary key."""
    return " AND ".join(f"{left}.{quote(k)} = {right}.{quote(k)}" for k in t.primary_key)


def diff_name(qualified: str) -> str:
    """Temp table keeping the changed keys of a table after :func:`apply_diff` (``keep``):
    columns ``in_old``, ``in_new`` and the primary key."""
    return "_diff_" + qualified.replace(".", "_")


def apply_diff(con: duckdb.DuckDBPyConnection, target: str, source: str, t: TableSpec,
               run_id: str, keep: bool = False, scope: str | None = None,
               stamp_all: bool = True) -> dict[str, int]:
    """Make ``target``'s table ``t`` equal to ``source``'s; return inserted / deleted row counts.

    One full outer join of the two sides on the primary key finds the keys whose rows differ
    in any column but the run stamp (``IS DISTINCT FROM``: NULLs compare equal), or exist on
    one side only. Those rows are deleted from ``target`` by key and inserted from ``source``.
    Unchanged rows are left alone except for their run stamp, set to ``run_id`` (a full
    publish stamps every row; only that one column is rewritten). ``source``'s rows must be
    unique by primary key (the publish audit checks it first). ``keep``: leave the changed
    keys in the temp table :func:`diff_name` (for what depends on the changes).

    ``scope``: a relation of primary keys; then ``source`` holds the new content of those keys
    only (its own keys are added to the scope) and only ``target``'s rows of the scope are
    compared (the incremental builders of :mod:`warehouse.master_delta`). ``stamp_all`` False
    leaves the run stamp of the unchanged rows to the caller.
    """
    stamp = stamp_column(t)
    values = [c for c in t.column_names() if c != stamp]
    keys = [quote(k) for k in t.primary_key]
    others = [quote(c) for c in values if c not in t.primary_key]
    old, new = f"{target}.{t.qualified}", f"{source}.{t.qualified}"
    differs = " OR ".join(f"a.{c} IS DISTINCT FROM b.{c}" for c in others) or "FALSE"
    key = ", ".join(keys)
    old_rows = old
    if scope is not None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE diff_scope AS SELECT DISTINCT {key} FROM "
                    f"(SELECT {key} FROM {scope} UNION ALL SELECT {key} FROM {new})")
        # rows found by key first, then read whole by row id (DuckDB then reads the wide
        # columns of those rows only, not of the whole table)
        old_rows = (f"(SELECT * FROM {old} WHERE rowid IN (SELECT x.rowid FROM {old} x "
                    f"SEMI JOIN diff_scope USING ({key})))")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE diff_keys AS
        SELECT a._here AS in_old, b._here AS in_new,
               {', '.join(f'coalesce(a.{k}, b.{k}) AS {k}' for k in keys)}
        FROM (SELECT TRUE AS _here, * FROM {old_rows}) a
        FULL JOIN (SELECT TRUE AS _here, * FROM {new}) b ON {key_join('a', 'b', t)}
        WHERE a._here IS NULL OR b._here IS NULL OR {differs}""")
    deleted, inserted = (int(v or 0) for v in con.execute(
        "SELECT count(*) FILTER (WHERE in_old), count(*) FILTER (WHERE in_new) "
        "FROM diff_keys").fetchone())
    if scope is not None:
        con.execute("DROP TABLE diff_scope")
    if deleted:
        con.execute(f"DELETE FROM {old} USING (SELECT {key} FROM diff_keys WHERE in_old) g "
                    f"WHERE {key_join(old, 'g', t)}")
    if inserted:
        cols = ", ".join(quote(c) for c in values)
        lit = run_id.replace("'", "''")
        con.execute(f"INSERT INTO {old} ({cols}{', ' + quote(stamp) if stamp else ''}) "
                    f"SELECT {cols}{f', {chr(39)}{lit}{chr(39)}' if stamp else ''} FROM {new} "
                    f"SEMI JOIN (SELECT {key} FROM diff_keys WHERE in_new) g USING ({key})")
    if stamp and stamp_all:
        con.execute(f"UPDATE {old} SET {quote(stamp)} = ? WHERE {quote(stamp)} IS DISTINCT FROM ?",
                    [run_id, run_id])
    if keep:
        con.execute(f"DROP TABLE IF EXISTS {diff_name(t.qualified)}")
        con.execute(f"ALTER TABLE diff_keys RENAME TO {diff_name(t.qualified)}")
    else:
        con.execute("DROP TABLE diff_keys")
    return {"inserted": inserted, "deleted": deleted}


def apply_all(con: duckdb.DuckDBPyConnection, target: str, source: str, run_id: str,
              seconds: dict[str, float] | None = None, skip: tuple[str, ...] = (),
              keep: bool = False) -> dict[str, dict[str, int]]:
    """:func:`apply_diff` for every declared table but ``skip`` (its seconds into ``seconds``,
    if given; ``keep`` as there); raises if any table's row count then differs from
    ``source``'s (a guard: the diff must reproduce the fresh content)."""
    out = {}
    tables = [t for t in ALL_TABLES if t.qualified not in skip]
    for t in tables:
        t0 = time.perf_counter()
        out[t.qualified] = apply_diff(con, target, source, t, run_id, keep)
        if seconds is not None:
            seconds[t.qualified] = round(time.perf_counter() - t0, 3)
    for t in tables:
        a, b = (int(con.execute(f"SELECT count(*) FROM {db}.{t.qualified}").fetchone()[0])
                for db in (target, source))
        if a != b:
            raise RuntimeError(f"incremental publish left {t.qualified} with {a} rows, its "
                               f"fresh content has {b}")
    return out
