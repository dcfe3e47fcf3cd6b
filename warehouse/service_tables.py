"""Master tables the query service reads: source records, the name index, the review queue.

Built in the publish builder connection (see :mod:`warehouse.master_build`), after
``master.person_link``, from the work database attached read-only as ``work``. The service never
opens the work database: everything a person lookup, a name search or a review page needs is
published here. Absent inputs (a work database without ``link.review_queue`` or without names)
give empty tables of the declared shape.
"""

from __future__ import annotations

import duckdb

from warehouse.master_build import (WORK, _insert, _lit, columns_of, keys_filter,
                                    select_or_null, tables_in)
from warehouse.schema import quote

LINEAGE_PREFIX = "_"
"""Staged columns starting with this are lineage (run, row number, hash, flags), not fields."""


def build_source_record(con: duckdb.DuckDBPyConnection, run_id: str,
                        links: str = "master.person_link", keys: str | None = None) -> None:
    """master.source_record: each linked record's canonical staged fields as JSON (only the
    records in ``keys`` (source, source_key) when given; ``links``: the links relation)."""
    rid = _lit(run_id)
    for t in tables_in(con, WORK, "staged"):
        cols = columns_of(con, WORK, "staged", t)
        if "_source_key" not in cols or "_run_id" not in cols:
            continue
        fields = [c for c in cols if not c.startswith(LINEAGE_PREFIX)]
        packed = ("to_json(struct_pack(" + ", ".join(f"{quote(c)} := s.{quote(c)}"
                                                      for c in fields) + "))"
                  if fields else "'{}'::JSON")
        _insert(con, "master.source_record", f"""
            SELECT l.source, l.source_key, l.person_id, l.kind, l.department, s.f, '{rid}'
            FROM (SELECT CAST(_source_key AS VARCHAR) AS source_key, {packed} AS f
                  FROM {WORK}.staged.{quote(t)} s
                  WHERE CAST(_run_id AS VARCHAR) <= '{rid}'{keys_filter(keys, t)}
                  QUALIFY row_number() OVER (PARTITION BY _source_key
                                             ORDER BY _run_id DESC) = 1) s
            JOIN {links} l ON l.source = '{_lit(t)}' AND l.source_key = s.source_key""")


def build_person_name(con: duckdb.DuckDBPyConnection, run_id: str,
                      links: str = "master.person_link", keys: str | None = None) -> None:
    """master.person_name: every linked record's name, pinyin and folded pinyin (std.record);
    ``links`` / ``keys`` as in :func:`build_source_record`."""
    only = (f"SEMI JOIN {keys} k ON k.source = CAST(r.source AS VARCHAR) "
            "AND k.source_key = CAST(r.source_key AS VARCHAR)" if keys else "")
    cols = columns_of(con, WORK, "std", "record")
    sel = select_or_null(cols, {"source": "VARCHAR", "source_key": "VARCHAR",
                                "name": "VARCHAR", "name_py": "VARCHAR",
                                "name_pyf": "VARCHAR", "birth_date": "DATE",
                                "id_birth_date": "DATE"}, "r")
    _insert(con, "master.person_name", f"""
        SELECT r.source, r.source_key, l.person_id, r.name, r.name_py, r.name_pyf,
               coalesce(r.birth_date, r.id_birth_date), '{_lit(run_id)}'
        FROM (SELECT {sel} FROM {WORK}.std.record r {only}) r
        JOIN {links} l USING (source, source_key)
        WHERE r.name IS NOT NULL OR r.name_py IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY r.source, r.source_key ORDER BY r.name) = 1""")


def build_review_queue(con: duckdb.DuckDBPyConnection, run_id: str,
                       links: str = "master.person_link") -> None:
    """master.review_queue: the run's link.review_queue with departments and person ids."""
    cols = columns_of(con, WORK, "link", "review_queue")
    if not cols:
        return
    sel = select_or_null(cols, {
        "queue_no": "BIGINT", "reason": "VARCHAR", "left_source": "VARCHAR",
        "left_key": "VARCHAR", "right_source": "VARCHAR", "right_key": "VARCHAR",
        "match_weight": "DOUBLE", "match_probability": "DOUBLE", "linked_now": "BOOLEAN",
        "decided": "VARCHAR", "explanation": "VARCHAR"}, "q")
    _insert(con, "master.review_queue", f"""
        SELECT q.queue_no, q.reason, q.left_source, q.left_key, a.person_id, a.department,
               q.right_source, q.right_key, b.person_id, b.department, q.match_weight,
               q.match_probability, q.linked_now, q.decided, TRY_CAST(q.explanation AS JSON),
               '{_lit(run_id)}'
        FROM (SELECT {sel} FROM {WORK}.link.review_queue q) q
        LEFT JOIN {links} a ON a.source = q.left_source AND a.source_key = q.left_key
        LEFT JOIN {links} b ON b.source = q.right_source
                                      AND b.source_key = q.right_key""")


def build_service_tables(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Fill the three service tables (after master.person_link is built)."""
    build_source_record(con, run_id)
    build_person_name(con, run_id)
    build_review_queue(con, run_id)


INDEXES: tuple[str, ...] = (
    "CREATE INDEX IF NOT EXISTS person_name_py ON master.person_name (name_py)",
    "CREATE INDEX IF NOT EXISTS person_name_pyf ON master.person_name (name_pyf)",
    "CREATE INDEX IF NOT EXISTS person_id_number ON master.person (id_number)",
    "CREATE INDEX IF NOT EXISTS person_link_person ON master.person_link (person_id)",
    "CREATE INDEX IF NOT EXISTS source_record_person ON master.source_record (person_id)",
    "CREATE INDEX IF NOT EXISTS person_house_person ON master.person_house (person_id)",
    "CREATE INDEX IF NOT EXISTS household_no ON master.household (household_no)",
    "CREATE INDEX IF NOT EXISTS household_person ON master.household (person_id)",
    "CREATE INDEX IF NOT EXISTS finding_person ON audit.finding (person_id)",
)
"""Point-lookup indexes for the service (``GET /persons/{id_number}`` reads by these)."""


def add_service_indexes(con: duckdb.DuckDBPyConnection) -> None:
    """Create the service's lookup indexes (after the checks, with the primary keys)."""
    for sql in INDEXES:
        con.execute(sql)
