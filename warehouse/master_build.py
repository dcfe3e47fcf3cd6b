"""Build the master tables from the work database, in SQL, inside the builder connection.

The builder connection is opened on the new (``.building-<run>``) master file; the work
database is attached read-only as ``work`` (``ATTACH ... (READ_ONLY)``), the previous master as
``prev`` and the decisions database as ``dec`` when they exist. Nothing goes through pandas.

Inputs (work database):
- ``link.person``, ``link.person_link``, ``link.person_event`` (matching stage);
- ``std.record``: one row per current staged record, with kind, department and address parts;
- ``staged.<source>``: the registry and grid fields std.record does not carry (registration
  date, grid code, resident type, collection time).

A missing input column is read as NULL (the inputs grow while the pipeline is built), so the
master always has the declared shape (:mod:`warehouse.schema`).
"""

from __future__ import annotations

import duckdb

from warehouse.schema import (AUDIT_TABLES, CARRIED_FORWARD, DUCKDB_TYPES,
                              MASTER_TABLES, duckdb_ddl, quote, table)

WORK = "work"
PREV = "prev"
DECISIONS = "dec"

STAGED_FIELDS: dict[str, str] = {
    "household_no": "VARCHAR", "relation_to_head": "VARCHAR", "registry_status": "VARCHAR",
    "registered_at": "DATE", "cancel_date": "DATE", "cancel_reason": "VARCHAR",
    "grid_code": "VARCHAR", "resident_type": "VARCHAR", "collected_at": "TIMESTAMPTZ",
}
"""Canonical staged fields the house / household / grid tables read (absent ones are NULL)."""

STD_FIELDS: dict[str, str] = {
    "kind": "VARCHAR", "department": "VARCHAR", "district": "VARCHAR",
    "district_code": "VARCHAR", "street": "VARCHAR", "community": "VARCHAR",
    "compound": "VARCHAR", "building": "VARCHAR", "unit": "VARCHAR", "room": "VARCHAR",
    "house_key": "VARCHAR", "address": "VARCHAR", "household_no": "VARCHAR",
    "relation_to_head": "VARCHAR",
    "registry_status": "VARCHAR", "cancel_date": "DATE", "cancel_reason": "VARCHAR",
}
"""std.record columns the builder reads (absent ones are NULL)."""

ADDRESS_PARTS: dict[str, tuple[str, ...]] = {
    "district": (r"市(\p{Han}{1,4}?[区县])",),
    "street": (r"[区县](\p{Han}{2,6}?(?:街道|镇|乡))",),
    "community": (r"(?:街道|镇|乡)(\p{Han}{2,8}?社区)", r"(?:街道|镇|乡)(\p{Han}{2,6}?村)"),
}
"""Fallback for address parts std.record does not give (patterns tried in order): the names in
full-style addresses (``湖北省宜昌市点军区点军街道合益路社区...``). The district name is taken per
district code (majority over all records); street and community per record, then by majority
per house and grid."""

CANCELLED = "注销"
HEAD = "户主"
REGISTRY_KIND = "household_registry"
GRID_KIND = "grid_collection"


def house_id_sql(key: str) -> str:
    """SQL expression of the house id of a house key: ``H`` + 16 hex digits of its md5."""
    return f"CASE WHEN {key} IS NOT NULL THEN 'H' || upper(substr(md5({key}), 1, 16)) END"


def columns_of(con: duckdb.DuckDBPyConnection, database: str, schema: str,
               name: str) -> dict[str, str]:
    """Column name -> type of a table (empty if the table does not exist)."""
    rows = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? "
        "AND schema_name = ? AND table_name = ? ORDER BY column_index",
        [database, schema, name]).fetchall()
    return {r[0]: r[1] for r in rows}


def tables_in(con: duckdb.DuckDBPyConnection, database: str, schema: str) -> list[str]:
    """Table names of one schema of an attached database."""
    return [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = ? "
        "ORDER BY table_name", [database, schema]).fetchall()]


def select_or_null(available: dict[str, str], wanted: dict[str, str], alias: str = "") -> str:
    """``TRY_CAST(col AS type) AS col`` for present columns, ``NULL::type AS col`` otherwise."""
    pre = f"{alias}." if alias else ""
    return ", ".join(
        f"TRY_CAST({pre}{quote(c)} AS {t}) AS {quote(c)}" if c in available
        else f"NULL::{t} AS {quote(c)}" for c, t in wanted.items())


def keys_filter(keys: str | None, source: str, column: str = "_source_key") -> str:
    """SQL condition: ``column`` is a key of ``source`` in the relation ``keys`` (source,
    source_key); empty when ``keys`` is None (every record)."""
    if keys is None:
        return ""
    return (f" AND CAST({column} AS VARCHAR) IN (SELECT source_key FROM {keys} "
            f"WHERE source = '{_lit(source)}')")


def staged_sql(con: duckdb.DuckDBPyConnection, run_id: str,
               keys: str | None = None) -> tuple[str, str]:
    """Two SELECTs over every ``work.staged.<source>`` table with lineage columns.

    First: the latest row per record up to ``run_id`` with :data:`STAGED_FIELDS`
    (source, source_key, ...); only the records in ``keys`` (a relation of source,
    source_key) when given. Second: the records of each table's latest run up to ``run_id``
    (source, source_key): records every run must link whatever the source's snapshot mode.
    """
    latest, last_run = [], []
    rid = run_id.replace("'", "''")
    for t in tables_in(con, WORK, "staged"):
        cols = columns_of(con, WORK, "staged", t)
        if "_source_key" not in cols or "_run_id" not in cols:
            continue
        src = f"'{_lit(t)}'"  # the contract name, as std.record has it
        tbl = f"{WORK}.staged.{quote(t)}"
        run_ok = f"CAST(_run_id AS VARCHAR) <= '{rid}'"
        latest.append(
            f"SELECT {src} AS source, CAST(_source_key AS VARCHAR) AS source_key, "
            f"{select_or_null(cols, STAGED_FIELDS)} FROM {tbl} WHERE {run_ok}"
            f"{keys_filter(keys, t)} "
            "QUALIFY row_number() OVER (PARTITION BY _source_key ORDER BY _run_id DESC) = 1")
        last_run.append(
            f"SELECT DISTINCT {src} AS source, CAST(_source_key AS VARCHAR) AS source_key "
            f"FROM {tbl} WHERE CAST(_run_id AS VARCHAR) = (SELECT max(CAST(_run_id AS VARCHAR)) "
            f"FROM {tbl} WHERE {run_ok})")
    empty = ", ".join(f"NULL::{t} AS {c}" for c, t in STAGED_FIELDS.items())
    if not latest:
        return (f"SELECT NULL::VARCHAR AS source, NULL::VARCHAR AS source_key, {empty} LIMIT 0",
                "SELECT NULL::VARCHAR AS source, NULL::VARCHAR AS source_key LIMIT 0")
    return " UNION ALL ".join(latest), " UNION ALL ".join(last_run)


def _require(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> dict[str, str]:
    cols = columns_of(con, WORK, schema, name)
    if not cols:
        raise LookupError(f"work database has no table {schema}.{name}: run the stage that "
                          "makes it first")
    return cols


def stage_inputs(con: duckdb.DuckDBPyConnection, run_id: str, keys: str | None = None,
                 district_names: str | None = None, into: str = "rec") -> None:
    """Temp tables ``stg`` (staged fields), ``staged_now`` (keys to link) and ``rec``.

    ``rec``: one row per current record (std.record) with kind, department, address parts and
    registry / grid fields (from the record's latest staged row), and ``district_raw``: the
    record's own district (std, else parsed from its address), whose majority per district code
    names the code's district (``district_name``). Scoped (incremental publish): ``keys`` limits
    ``rec`` (named ``into``) to those records and ``district_names`` (district_code, district)
    is given instead of computed; ``staged_now`` is then not made.
    """
    std_cols = _require(con, "std", "record")
    latest, last_run = staged_sql(con, run_id, keys)
    con.execute(f"CREATE OR REPLACE TEMP TABLE stg AS {latest}")
    if keys is None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE staged_now AS {last_run}")
    std_sel = select_or_null(std_cols, STD_FIELDS, "s")
    stg_only = [c for c in STAGED_FIELDS if c not in STD_FIELDS]
    both = [c for c in STAGED_FIELDS if c in STD_FIELDS]
    parsed = {k: "coalesce(" + ", ".join(f"nullif(regexp_extract(s.address, '{rx}', 1), '')"
                                          for rx in rxs) + ")"
              for k, rxs in ADDRESS_PARTS.items()}
    only = (f"SEMI JOIN {keys} k ON k.source = CAST(s.source AS VARCHAR) "
            "AND k.source_key = CAST(s.source_key AS VARCHAR)" if keys else "")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE std_cur AS
        SELECT *, coalesce(district, {parsed['district']}) AS district_raw FROM (
            SELECT CAST(s.source AS VARCHAR) AS source,
                   CAST(s.source_key AS VARCHAR) AS source_key, {std_sel}
            FROM {WORK}.std.record s {only}
            QUALIFY row_number() OVER (PARTITION BY s.source, s.source_key
                                       ORDER BY s.source) = 1) s""")
    if district_names is None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE district_name AS "
                    f"{district_names_sql('std_cur')}")
        district_names = "district_name"
    filled = {"district": "coalesce(s.district, dn.district) AS district",
              "street": f"coalesce(s.street, {parsed['street']}) AS street",
              "community": f"coalesce(s.community, {parsed['community']}) AS community"}
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {into} AS
        SELECT s.source, s.source_key,
               {', '.join(filled.get(c, f's.{c}') for c in STD_FIELDS if c not in both)},
               {', '.join(f'coalesce(s.{c}, g.{c}) AS {c}' for c in both)},
               {', '.join(f'g.{c}' for c in stg_only)}, s.district_raw
        FROM std_cur s LEFT JOIN stg g USING (source, source_key)
        LEFT JOIN {district_names} dn ON dn.district_code = s.district_code""")
    con.execute("DROP TABLE std_cur")


def district_names_sql(records: str) -> str:
    """SELECT (district_code, district): each district code's name, the majority of its
    records' ``district_raw``. Every majority here (``mode(x ORDER BY x)``) breaks ties by the
    smallest value, whatever order the rows come in: a build from other inputs (an incremental
    publish's) picks the same."""
    return (f"SELECT district_code, mode(district_raw ORDER BY district_raw) AS district "
            f"FROM {records} "
            "WHERE district_code IS NOT NULL AND district_raw IS NOT NULL GROUP BY district_code")


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The master tables without keys (checked, then keyed) and the audit tables with keys."""
    con.execute(duckdb_ddl(MASTER_TABLES, primary_keys=False))
    con.execute(duckdb_ddl(AUDIT_TABLES))


def _insert(con: duckdb.DuckDBPyConnection, qualified: str, select: str) -> int:
    """INSERT ``select`` into a declared table by its column names; the rows inserted."""
    cols = ", ".join(quote(c) for c in table(qualified).column_names())
    return int(con.execute(f"INSERT INTO {qualified} ({cols}) {select}").fetchone()[0])


def build_person(con: duckdb.DuckDBPyConnection, run_id: str, where: str = "") -> None:
    """master.person from link.person (golden fields and lineage; absent ones NULL); ``where``:
    a condition on ``l`` (link.person) limiting the persons."""
    cols = _require(con, "link", "person")
    spec = table("master.person")
    wanted = {c.name: DUCKDB_TYPES[c.type] for c in spec.columns
              if c.name not in ("is_deceased", "house_id", "run_id")}
    _insert(con, "master.person", f"""
        SELECT p.*, p.death_date IS NOT NULL AS is_deceased,
               {house_id_sql('p.house_key')} AS house_id, '{_lit(run_id)}' AS run_id
        FROM (SELECT {select_or_null(cols, wanted, 'l')} FROM {WORK}.link.person l
              {f'WHERE {where}' if where else ''}) p""")


def _lit(s: str) -> str:
    return s.replace("'", "''")


def build_person_link(con: duckdb.DuckDBPyConnection, run_id: str, where: str = "",
                      rec: str = "rec") -> None:
    """master.person_link from link.person_link, with the record's kind and department
    (``where``: a condition on ``l`` limiting the links; ``rec``: the records relation)."""
    cols = _require(con, "link", "person_link")
    sel = select_or_null(cols, {"source": "VARCHAR", "source_key": "VARCHAR",
                                "person_id": "VARCHAR", "method": "VARCHAR",
                                "score": "DOUBLE"}, "l")
    _insert(con, "master.person_link", f"""
        SELECT l.source, l.source_key, l.person_id, r.kind, r.department, l.method, l.score,
               '{_lit(run_id)}'
        FROM (SELECT {sel} FROM {WORK}.link.person_link l {f'WHERE {where}' if where else ''}) l
        LEFT JOIN {rec} r USING (source, source_key)""")


def event_source(con: duckdb.DuckDBPyConnection) -> tuple[str, dict[str, str]]:
    """The work DB's event table and its columns: ``link.person_event_history`` (every run)
    when it exists, else ``link.person_event`` (this run); no columns when neither does."""
    for src in ("person_event_history", "person_event"):
        cols = columns_of(con, WORK, "link", src)
        if cols:
            return src, cols
    return "person_event", {}


def build_person_event(con: duckdb.DuckDBPyConnection, has_prev: bool) -> None:
    """master.person_event: the work DB's events plus other runs' events of the previous master.

    Reads ``link.person_event_history`` (every run) when the work DB has it, else
    ``link.person_event`` (this run).
    """
    src, cols = event_source(con)
    spec = table("master.person_event")
    wanted = {c.name: DUCKDB_TYPES[c.type] for c in spec.columns}
    if cols:
        _insert(con, "master.person_event",
                f"SELECT {select_or_null(cols, wanted)} FROM {WORK}.link.{src}")
    if has_prev and columns_of(con, PREV, "master", "person_event"):
        names = ", ".join(quote(c) for c in wanted)
        _insert(con, "master.person_event", f"""
            SELECT {names} FROM {PREV}.master.person_event
            WHERE run_id NOT IN (SELECT DISTINCT run_id FROM master.person_event
                                 WHERE run_id IS NOT NULL)""")


def build_person_house(con: duckdb.DuckDBPyConnection, run_id: str, rec: str = "rec",
                       links: str = "master.person_link") -> None:
    """master.person_house: registered residence (registry) and actual residence (grid).
    ``rec`` / ``links``: the records and links relations (all of a person's records together:
    the current grid residence is chosen per person)."""
    _insert(con, "master.person_house", f"""
        WITH r AS (
            SELECT l.person_id, {house_id_sql('r.house_key')} AS house_id,
                   CASE r.kind WHEN '{REGISTRY_KIND}' THEN 'registered' ELSE 'actual' END
                     AS relation,
                   r.source, r.source_key, r.kind,
                   CASE WHEN r.kind = '{REGISTRY_KIND}' THEN r.registered_at
                        ELSE CAST(r.collected_at AS DATE) END AS valid_from,
                   CASE WHEN r.kind = '{REGISTRY_KIND}' THEN r.cancel_date END AS valid_to,
                   r.registry_status, r.resident_type, r.collected_at
            FROM {rec} r JOIN {links} l USING (source, source_key)
            WHERE r.kind IN ('{REGISTRY_KIND}', '{GRID_KIND}') AND r.house_key IS NOT NULL)
        SELECT person_id, house_id, relation, source, source_key, valid_from, valid_to,
               CASE WHEN relation = 'registered'
                    THEN coalesce(registry_status, '') <> '{CANCELLED}' AND valid_to IS NULL
                    ELSE row_number() OVER (
                        PARTITION BY person_id, relation
                        ORDER BY collected_at DESC NULLS LAST, source DESC, source_key DESC) = 1
               END AS is_current,
               registry_status, resident_type, '{_lit(run_id)}'
        FROM r""")


def build_house(con: duckdb.DuckDBPyConnection, run_id: str, rec: str = "rec",
                person_house: str = "master.person_house") -> None:
    """master.house: one row per house key, parts by majority, grid from grid records
    (``rec``: every record of the houses built; ``person_house``: their occupants)."""
    parts = ("district", "district_code", "street", "community", "compound", "building",
             "unit", "room")
    modes = ",\n".join(f"mode({p} ORDER BY {p}) FILTER (WHERE {p} IS NOT NULL) AS {p}"
                       for p in parts)
    _insert(con, "master.house", f"""
        WITH h AS (
            SELECT house_key, {modes},
                   mode(grid_code ORDER BY grid_code)
                     FILTER (WHERE kind = '{GRID_KIND}' AND grid_code IS NOT NULL)
                     AS grid_code,
                   count(*) AS n_records
            FROM {rec} WHERE house_key IS NOT NULL GROUP BY house_key),
        occ AS (
            SELECT house_id,
                   count(DISTINCT person_id) FILTER (WHERE relation = 'registered') AS n_reg,
                   count(DISTINCT person_id) FILTER (WHERE relation = 'actual') AS n_act
            FROM {person_house} WHERE is_current GROUP BY house_id)
        SELECT {house_id_sql('h.house_key')} AS house_id, h.house_key,
               nullif(concat_ws('', h.district, h.street, h.community, h.compound,
                      h.building || '号楼', h.unit || '单元', h.room || '室'), '')
                 AS standard_address,
               h.district, h.district_code, h.street, h.community, h.compound, h.building,
               h.unit, h.room, h.grid_code,
               coalesce(o.n_reg, 0), coalesce(o.n_act, 0), h.n_records, '{_lit(run_id)}'
        FROM h LEFT JOIN occ o ON o.house_id = {house_id_sql('h.house_key')}""")


def build_household(con: duckdb.DuckDBPyConnection, run_id: str, rec: str = "rec",
                    links: str = "master.person_link") -> None:
    """master.household: one row per registry record with a household number (``rec``: every
    registry record of the households built)."""
    _insert(con, "master.household", f"""
        WITH m AS (
            SELECT r.household_no, l.person_id, r.source, r.source_key, r.relation_to_head,
                   coalesce(r.relation_to_head = '{HEAD}', FALSE) AS is_head,
                   r.registry_status,
                   coalesce(r.registry_status, '') <> '{CANCELLED}' AND r.cancel_date IS NULL
                     AS is_active,
                   r.registered_at, r.cancel_date, r.cancel_reason,
                   {house_id_sql('r.house_key')} AS house_id
            FROM {rec} r JOIN {links} l USING (source, source_key)
            WHERE r.kind = '{REGISTRY_KIND}' AND r.household_no IS NOT NULL)
        SELECT m.*,
               min(person_id) FILTER (WHERE is_head AND is_active)
                 OVER (PARTITION BY household_no) AS head_person_id,
               count(*) FILTER (WHERE is_active) OVER (PARTITION BY household_no) AS n_members,
               '{_lit(run_id)}'
        FROM m""")


def build_grid(con: duckdb.DuckDBPyConnection, run_id: str, rec: str = "rec",
               house: str = "master.house", person_house: str = "master.person_house") -> None:
    """master.grid: one row per grid code; community > street > district by majority over its
    collection records and the houses in it (``rec`` / ``house``: every record / house (before
    :func:`fill_house_from_grid`) of the grids built)."""
    parts = ("community", "street", "district", "district_code")
    modes = ", ".join(f"mode({p} ORDER BY {p}) FILTER (WHERE {p} IS NOT NULL) AS {p}"
                      for p in parts)
    _insert(con, "master.grid", f"""
        WITH g AS (
            SELECT grid_code, count(*) AS n_records,
                   min(collected_at) AS first_at, max(collected_at) AS last_at
            FROM {rec} WHERE grid_code IS NOT NULL GROUP BY grid_code),
        parts AS (
            SELECT grid_code, {modes} FROM (
                SELECT grid_code, {', '.join(parts)} FROM {rec} WHERE grid_code IS NOT NULL
                UNION ALL
                SELECT grid_code, {', '.join(parts)} FROM {house} WHERE grid_code IS NOT NULL)
            GROUP BY grid_code),
        hs AS (SELECT grid_code, count(*) AS n FROM {house}
               WHERE grid_code IS NOT NULL GROUP BY grid_code),
        res AS (SELECT r.grid_code, count(DISTINCT ph.person_id) AS n
                FROM {person_house} ph JOIN {rec} r USING (source, source_key)
                WHERE ph.relation = 'actual' AND ph.is_current AND r.grid_code IS NOT NULL
                GROUP BY r.grid_code)
        SELECT g.grid_code, p.community, p.street, p.district, p.district_code,
               coalesce(hs.n, 0), coalesce(res.n, 0), g.n_records, g.first_at, g.last_at,
               '{_lit(run_id)}'
        FROM g JOIN parts p USING (grid_code) LEFT JOIN hs USING (grid_code)
        LEFT JOIN res USING (grid_code)""")


def fill_house_from_grid(con: duckdb.DuckDBPyConnection, house: str = "master.house",
                         grid: str = "master.grid") -> None:
    """Houses whose records never name their street / community take their grid's."""
    con.execute(f"""
        UPDATE {house} h SET street = coalesce(h.street, g.street),
               community = coalesce(h.community, g.community),
               district = coalesce(h.district, g.district),
               standard_address = nullif(concat_ws('', coalesce(h.district, g.district),
                   coalesce(h.street, g.street), coalesce(h.community, g.community), h.compound,
                   h.building || '号楼', h.unit || '单元', h.room || '室'), '')
        FROM {grid} g
        WHERE g.grid_code = h.grid_code
          AND (h.street IS NULL OR h.community IS NULL OR h.district IS NULL)""")


def build_source_status(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """audit.source_status: each source's extract status in this run, and since when it is stale."""
    if not columns_of(con, WORK, "meta", "source_run"):
        return
    _insert(con, "audit.source_status", f"""
        WITH r AS (SELECT * FROM {WORK}.meta.source_run WHERE run_id <= '{_lit(run_id)}'),
        cur AS (SELECT * FROM r WHERE run_id = '{_lit(run_id)}'),
        ok AS (SELECT source, max(run_id) AS last_ok_run, max(finished_at) AS last_ok_at
               FROM r WHERE status = 'ok' GROUP BY source),
        since AS (SELECT r.source, min(r.run_id) AS stale_since_run FROM r
                  LEFT JOIN ok USING (source)
                  WHERE r.status <> 'ok' AND (ok.last_ok_run IS NULL OR r.run_id > ok.last_ok_run)
                  GROUP BY r.source)
        SELECT cur.source, cur.run_id, CASE WHEN cur.status = 'ok' THEN 'ok' ELSE 'failed' END,
               cur.rows_read, cur.error, ok.last_ok_run, ok.last_ok_at, cur.status <> 'ok',
               CASE WHEN cur.status <> 'ok' THEN since.stale_since_run END
        FROM cur LEFT JOIN ok USING (source) LEFT JOIN since USING (source)""")


def carry_audit(con: duckdb.DuckDBPyConnection, has_prev: bool, has_decisions: bool) -> None:
    """Copy audit.run / finding / access_log from the previous master, decisions from theirs.

    Only columns both sides have are copied (declared columns added later start NULL).
    """
    findings_from_work = bool(columns_of(con, WORK, "check", "finding"))
    sources = [(q, PREV) for q in CARRIED_FORWARD
               if has_prev and not (q == "audit.finding" and findings_from_work)]
    if findings_from_work:
        # the check stage ran before publish: its table holds every finding ever seen, with
        # the auditors' statuses applied, so it replaces the previous master's copy
        sources.append(("audit.finding", f'{WORK}."check"'))
    if has_decisions:
        sources.append(("audit.decision", DECISIONS))
        if columns_of(con, DECISIONS, "audit", "access_log"):
            # the log is written to the decisions database during the day: it is the complete
            # record, so it replaces the previous master's copy
            sources = [(q, db) for q, db in sources if q != "audit.access_log"]
            sources.append(("audit.access_log", DECISIONS))
    for qualified, db in sources:
        schema, name = qualified.split(".")
        if "." in db:
            db, schema = db.split(".")
        have = columns_of(con, db, schema.strip('"'), name)
        common = [c for c in table(qualified).column_names() if c in have]
        if not common:
            continue
        cols = ", ".join(quote(c) for c in common)
        con.execute(f"INSERT INTO {qualified} ({cols}) SELECT {cols} FROM {db}.{schema}.{name}")


def build_master(con: duckdb.DuckDBPyConnection, run_id: str, has_prev: bool,
                 has_decisions: bool, person_doc: bool = True) -> dict[str, int]:
    """Create and fill every master and audit table; return row counts per table.

    ``con`` is the builder connection with the work database attached as ``work`` (and the
    previous master as ``prev``, the decisions database as ``dec`` when the flags say so).
    """
    create_tables(con)
    stage_inputs(con, run_id)
    build_person(con, run_id)
    build_person_link(con, run_id)
    build_person_event(con, has_prev)
    build_person_house(con, run_id)
    build_house(con, run_id)
    build_household(con, run_id)
    build_grid(con, run_id)
    save_state(con)
    fill_house_from_grid(con)
    from warehouse.service_tables import build_service_tables
    build_service_tables(con, run_id)
    build_source_status(con, run_id)
    carry_audit(con, has_prev, has_decisions)
    if person_doc:  # else the incremental publish renders only the touched persons' documents
        from warehouse.person_doc import build_person_doc
        build_person_doc(con, run_id)
    return table_counts(con)


STATE = "publish_state"
"""Schema of the master file holding what an incremental publish needs of the last build
(not published: not part of the declared catalog, nor copied to PostgreSQL)."""

HOUSE_BASE_COLUMNS = ("house_id", "house_key", "grid_code", "district", "district_code",
                      "street", "community")
"""Columns of ``publish_state.house_base``: the houses before :func:`fill_house_from_grid`."""


def save_state(con: duckdb.DuckDBPyConnection) -> None:
    """``publish_state.rec`` (every record's ``rec`` row), ``publish_state.house_base`` (the
    houses' own parts, before they take their grid's) and ``publish_state.meta`` (the link
    fingerprint the master was built from) in the current catalog, for the next incremental
    publish (:mod:`warehouse.master_delta`)."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {STATE}")
    con.execute(f"CREATE OR REPLACE TABLE {STATE}.rec AS SELECT * FROM rec")
    con.execute(f"CREATE OR REPLACE TABLE {STATE}.house_base AS SELECT "
                f"{', '.join(HOUSE_BASE_COLUMNS)} FROM master.house")
    con.execute(f"CREATE OR REPLACE TABLE {STATE}.meta AS SELECT {link_fingerprint_sql(con)} "
                "AS link_fingerprint")


def link_fingerprint_sql(con: duckdb.DuckDBPyConnection) -> str:
    """SQL of the fingerprint (model, term frequencies, rules) the work database's link tables
    were built with (``link.link_state``), NULL when unknown."""
    if "fingerprint" not in columns_of(con, WORK, "link", "link_state"):
        return "NULL::VARCHAR"
    return f"(SELECT max(fingerprint) FROM {WORK}.link.link_state)"


def table_counts(con: duckdb.DuckDBPyConnection, database: str | None = None) -> dict[str, int]:
    """Row count of every declared table (``schema.name`` -> rows) in a database."""
    db = f"{database}." if database else ""
    out = {}
    for t in MASTER_TABLES + AUDIT_TABLES:
        if database and not columns_of(con, database, t.schema, t.name):
            continue
        out[t.qualified] = int(con.execute(f"SELECT count(*) FROM {db}{t.qualified}")
                               .fetchone()[0])
    return out


def add_primary_keys(con: duckdb.DuckDBPyConnection) -> None:
    """Key the master tables once the checks have passed (uniqueness already proven)."""
    for t in MASTER_TABLES:
        con.execute(f"ALTER TABLE {t.qualified} ADD PRIMARY KEY "
                    f"({', '.join(quote(k) for k in t.primary_key)})")
    from warehouse.service_tables import add_service_indexes
    add_service_indexes(con)
