"""Incremental publish driven by the night's deltas: rebuild only the rows the night touched.

The building file is a byte copy of the live master (catalog ``build``); the live master is
attached read-only as ``prev``. Instead of building every table in full and diffing
(:mod:`warehouse.master_diff` alone), the touched keys are worked out from what the earlier
stages wrote, each master table's rows of those keys are built with the very builders of a full
build (:mod:`warehouse.master_build`, given restricted input relations) into the scratch catalog
``fresh``, and :func:`warehouse.master_diff.apply_diff` with a ``scope`` replaces exactly the
rows that differ. What a full build computes over everything, the master file keeps between
publishes in its ``publish_state`` schema (every record's ``rec`` row, the houses before they
take their grid's parts), so a house, household or grid touched by one record is rebuilt from
all of its records without rereading the work database.

Touched (all relative to ``R0``, the run of the live master):

- records ``t_rec``: standardised after R0 (``std.record.run_id``), staged after R0 (a newer row
  in ``staged.<source>``), in ``std.delta``, or linked (now or in the live master) to a touched
  person;
- persons ``t_per``: ``link.delta_person``, and the persons (now or before) of touched records;
- houses / households / grids: those of touched records, before (``publish_state``) and now;
  grids of touched houses; houses of a grid whose parts changed that take their parts from it.

Small tables (review queue, source status, the audit tables) are rebuilt in full and diffed.

:func:`plan` refuses (the caller then builds in full and diffs, as before) when a delta would not
be trustworthy: no delta of this run (or a full one), no ``publish_state`` in the live master, a
re-run of the live master's own run, a district whose name (majority) changes (it reaches every
record of the district), too large a share of records touched, or when the **premise** fails:
the links (and golden records) of every person outside ``t_per`` must be exactly the live
master's (count and sum of row hashes). The premise catches deltas taken against another base
than the live master (a night whose publish failed): the change of that night shows up as a
link or person outside the delta.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import duckdb

from warehouse.master_build import (HOUSE_BASE_COLUMNS, PREV, STATE, WORK, _lit,
                                    link_fingerprint_sql,
                                    build_grid, build_household, build_house,
                                    build_person, build_person_house, build_person_link,
                                    build_source_status, carry_audit, columns_of, create_tables,
                                    district_names_sql, event_source, fill_house_from_grid,
                                    house_id_sql, select_or_null, stage_inputs, staged_sql, tables_in)
from warehouse.master_diff import apply_diff
from warehouse.schema import DUCKDB_TYPES, quote, table

FRESH = "fresh"
BUILD = "build"

MAX_TOUCHED_SHARE = 0.25
"""Above this share of records touched, building in full and diffing is as cheap: refuse."""



@dataclass
class DeltaPlan:
    """Whether the night's deltas can drive the publish, and the touched key counts."""

    ok: bool
    reason: str
    r0: str | None = None
    counts: dict[str, int] = field(default_factory=dict)


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    return con.execute(sql, params or []).fetchone()


def _meta(con: duckdb.DuckDBPyConnection, schema: str) -> tuple | None:
    """(run_id, full) of ``<schema>.delta_meta`` in the work database, or None."""
    cols = columns_of(con, WORK, schema, "delta_meta")
    if not {"run_id", "full"} <= set(cols):
        return None
    row = con.execute(f'SELECT CAST(run_id AS VARCHAR), "full" FROM {WORK}.{schema}.delta_meta '
                      "ORDER BY run_id DESC LIMIT 1").fetchone()
    return row


def _state_ok(con: duckdb.DuckDBPyConnection) -> bool:
    rec = columns_of(con, PREV, STATE, "rec")
    base = columns_of(con, PREV, STATE, "house_base")
    return (bool(rec) and "district_raw" in rec and list(base) == list(HOUSE_BASE_COLUMNS)
            and "link_fingerprint" in columns_of(con, PREV, STATE, "meta"))


def plan(con: duckdb.DuckDBPyConnection, run_id: str, r0: str | None,
         max_share: float = MAX_TOUCHED_SHARE, golden_premise: bool = False) -> DeltaPlan:
    """Decide whether the deltas can drive this publish; on yes, leave the temp tables
    ``t_per`` (person_id) and ``t_rec`` (source, source_key).

    ``golden_premise``: also compare every untouched person's golden record with the live
    master's (about half of this function's time at 1,000,000 persons). Without it, an
    untouched person's golden record is taken as unchanged because its records and links are
    (the other checks) and the link fingerprint (model, term frequencies, survivorship rules)
    is the one the live master was built with."""
    if r0 is None:
        return DeltaPlan(False, "no published run in the live master")
    if run_id <= r0:
        return DeltaPlan(False, f"run {run_id} is not after the live master's run {r0}")
    if not _state_ok(con):
        return DeltaPlan(False, "live master has no publish_state")
    for schema in ("std", "link"):
        m = _meta(con, schema)
        if m is None:
            return DeltaPlan(False, f"no {schema}.delta_meta")
        if m[0] != run_id:
            return DeltaPlan(False, f"{schema}.delta_meta is of run {m[0]}, not {run_id}")
        if m[1]:
            return DeltaPlan(False, f"{schema} delta is full")
    same_link = _one(con, f"SELECT {link_fingerprint_sql(con)} IS NOT DISTINCT FROM "
                          f"(SELECT max(link_fingerprint) FROM {PREV}.{STATE}.meta)")[0]
    if not same_link:
        return DeltaPlan(False, "link model or rules changed since the live master")
    if not columns_of(con, WORK, "link", "delta_person") or \
            "run_id" not in columns_of(con, WORK, "std", "record"):
        return DeltaPlan(False, "no link.delta_person or std.record.run_id")
    rid, r0l = _lit(run_id), _lit(r0)
    parts = [f"SELECT CAST(source AS VARCHAR) AS source, CAST(source_key AS VARCHAR) AS "
             f"source_key FROM {WORK}.std.record WHERE CAST(run_id AS VARCHAR) > '{r0l}'"]
    if columns_of(con, WORK, "std", "delta"):
        parts.append(f"SELECT CAST(source AS VARCHAR), CAST(source_key AS VARCHAR) "
                     f"FROM {WORK}.std.delta")
    for t in tables_in(con, WORK, "staged"):
        cols = columns_of(con, WORK, "staged", t)
        if "_source_key" in cols and "_run_id" in cols:
            parts.append(f"SELECT '{_lit(t)}', CAST(_source_key AS VARCHAR) "
                         f"FROM {WORK}.staged.{quote(t)} WHERE CAST(_run_id AS VARCHAR) "
                         f"> '{r0l}' AND CAST(_run_id AS VARCHAR) <= '{rid}'")
    con.execute("CREATE OR REPLACE TEMP TABLE t_rec0 AS " + " UNION ".join(parts))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE t_per AS
        SELECT CAST(person_id AS VARCHAR) AS person_id FROM {WORK}.link.delta_person
        WHERE person_id IS NOT NULL
        UNION SELECT l.person_id FROM {WORK}.link.person_link l
              SEMI JOIN t_rec0 k ON k.source = l.source AND k.source_key = l.source_key
        UNION SELECT l.person_id FROM {PREV}.master.person_link l
              SEMI JOIN t_rec0 k ON k.source = l.source AND k.source_key = l.source_key""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE t_rec AS
        SELECT source, source_key FROM t_rec0
        UNION SELECT source, source_key FROM {WORK}.link.person_link
              WHERE person_id IN (SELECT person_id FROM t_per)
        UNION SELECT source, source_key FROM {PREV}.master.person_link
              WHERE person_id IN (SELECT person_id FROM t_per)""")
    con.execute("DROP TABLE t_rec0")
    n_rec, n_per = (int(_one(con, f"SELECT count(*) FROM {t}")[0]) for t in ("t_rec", "t_per"))
    total = int(_one(con, f"SELECT count(*) FROM {PREV}.{STATE}.rec")[0])
    counts = {"touched_records": n_rec, "touched_persons": n_per}
    if total and n_rec > max_share * total:
        return DeltaPlan(False, f"{n_rec} of {total} records touched", r0, counts)
    # premise: outside the touched persons, links (and golden records) are the live master's
    link_cols = "source, source_key, person_id, method, score"
    now, before = (_one(con, f"""
        SELECT count(*), coalesce(sum(hash({link_cols})), 0) FROM {db}.person_link
        WHERE person_id NOT IN (SELECT person_id FROM t_per)""")
                   for db in (f"{WORK}.link", f"{PREV}.master"))
    if now != before:
        return DeltaPlan(False, "links outside the delta differ from the live master's "
                         f"({now[0]} vs {before[0]} rows)", r0, counts)
    if golden_premise:
        have = columns_of(con, WORK, "link", "person")
        spec = table("master.person")
        wanted = {c.name: DUCKDB_TYPES[c.type] for c in spec.columns
                  if c.name not in ("is_deceased", "house_id", "run_id")}
        sel = select_or_null(have, wanted)
        names = ", ".join(quote(c) for c in wanted)
        now = _one(con, f"""SELECT count(*), coalesce(sum(hash({names})), 0)
                            FROM (SELECT {sel} FROM {WORK}.link.person)
                            WHERE person_id NOT IN (SELECT person_id FROM t_per)""")
        before = _one(con, f"""SELECT count(*), coalesce(sum(hash({names})), 0)
                               FROM {PREV}.master.person
                               WHERE person_id NOT IN (SELECT person_id FROM t_per)""")
        if now != before:
            return DeltaPlan(False, "golden records outside the delta differ from the live "
                             "master's", r0, counts)
    return DeltaPlan(True, f"{n_rec} records and {n_per} persons touched since run {r0}",
                     r0, counts)


def _scoped_rec(con: duckdb.DuckDBPyConnection, run_id: str) -> str | None:
    """``rec_s``: the touched records' rec rows (district names as in the live master). None
    when a district's name (the majority of its records) changes: refuse then."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE dn_old AS "
                f"{district_names_sql(f'{PREV}.{STATE}.rec')}")
    stage_inputs(con, run_id, keys="t_rec", district_names="dn_old", into="rec_s")
    con.execute(f"CREATE OR REPLACE TEMP TABLE staged_now AS {staged_sql(con, run_id)[1]}")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE dn_new AS {district_names_sql(f'''(
        SELECT district_code, district_raw FROM {PREV}.{STATE}.rec r
        ANTI JOIN t_rec k ON k.source = r.source AND k.source_key = r.source_key
        UNION ALL SELECT district_code, district_raw FROM rec_s)''')}""")
    n = int(_one(con, """SELECT count(*) FROM dn_old FULL JOIN dn_new USING (district_code)
                         WHERE dn_old.district IS DISTINCT FROM dn_new.district""")[0])
    return None if n else "ok"


def _apply(con: duckdb.DuckDBPyConnection, qualified: str, run_id: str, scope: str | None,
           changes: dict, seconds: dict) -> None:
    """Check the fresh rows' keys are unique, then :func:`apply_diff` them over ``scope``."""
    t0 = time.perf_counter()
    key = ", ".join(quote(k) for k in table(qualified).primary_key)
    n = int(_one(con, f"SELECT count(*) FROM (SELECT {key} FROM {FRESH}.{qualified} "
                      f"GROUP BY ALL HAVING count(*) > 1)")[0])
    if n:
        raise DeltaCheckFailed("keys_unique", f"{n} duplicate keys in the touched rows of "
                               f"{qualified}")
    changes[qualified] = apply_diff(con, BUILD, FRESH, table(qualified), run_id, keep=True,
                                    scope=scope)
    seconds[qualified] = round(time.perf_counter() - t0, 3)


def build_and_apply(con: duckdb.DuckDBPyConnection, run_id: str, has_dec: bool,
                    seconds: dict[str, float]) -> dict[str, dict[str, int]] | None:
    """Build the touched rows into ``fresh`` and apply them to ``build`` (after :func:`plan`
    said yes). Returns inserted / deleted per table, or None when a district name changes (the
    caller then falls back to the full build; nothing has been written to ``build`` yet)."""
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        seconds[name] = round(now - clock[0], 3)
        clock[0] = now

    if _scoped_rec(con, run_id) is None:
        return None
    lap("(touched records' inputs)")
    con.execute(f"USE {FRESH}")
    create_tables(con)
    changes: dict[str, dict[str, int]] = {}
    B, S = BUILD, f"{BUILD}.{STATE}"
    # persons, links, events, residences: the touched persons' and records' rows
    build_person(con, run_id, where="l.person_id IN (SELECT person_id FROM t_per)")
    _apply(con, "master.person", run_id, "(SELECT person_id FROM t_per)", changes, seconds)
    build_person_link(con, run_id, rec="rec_s", where=(
        "EXISTS (SELECT 1 FROM t_rec k WHERE k.source = CAST(l.source AS VARCHAR) "
        "AND k.source_key = CAST(l.source_key AS VARCHAR))"))
    con.execute("""CREATE OR REPLACE TEMP TABLE t_link AS
                   SELECT * FROM fresh.master.person_link""")
    _apply(con, "master.person_link", run_id, "t_rec", changes, seconds)
    _events(con, run_id, changes, seconds)
    build_person_house(con, run_id, rec="rec_s", links="t_link")
    _apply(con, "master.person_house", run_id, "t_rec", changes, seconds)
    # touched houses, households and grids (before: publish_state; now: rec_s)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE old_rec AS
        SELECT r.* FROM {PREV}.{STATE}.rec r
        SEMI JOIN t_rec k ON k.source = r.source AND k.source_key = r.source_key""")
    con.execute(f"DELETE FROM {S}.rec r USING t_rec k WHERE k.source = r.source "
                "AND k.source_key = r.source_key")
    con.execute(f"INSERT INTO {S}.rec SELECT * FROM rec_s")
    clock[0] = time.perf_counter()
    con.execute("""CREATE OR REPLACE TEMP TABLE t_house AS
                   SELECT DISTINCT house_key FROM (SELECT house_key FROM old_rec
                                                   UNION ALL SELECT house_key FROM rec_s)
                   WHERE house_key IS NOT NULL""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE t_hh AS
                    SELECT DISTINCT household_no FROM (SELECT household_no FROM old_rec
                                                       UNION ALL SELECT household_no FROM rec_s)
                    WHERE household_no IS NOT NULL""")
    hid = house_id_sql("house_key")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE rec_h AS
        SELECT * FROM {S}.rec WHERE house_key IN (SELECT house_key FROM t_house)""")
    lap("(state rec, touched houses)")
    build_house(con, run_id, rec="rec_h", person_house=f"""(
        SELECT * FROM {B}.master.person_house
        WHERE house_id IN (SELECT {hid} FROM t_house))""")
    con.execute(f"DELETE FROM {S}.house_base WHERE house_key IN (SELECT house_key FROM t_house)")
    con.execute(f"INSERT INTO {S}.house_base SELECT {', '.join(HOUSE_BASE_COLUMNS)} "
                "FROM fresh.master.house")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE t_grid AS
        SELECT DISTINCT grid_code FROM (
            SELECT grid_code FROM old_rec UNION ALL SELECT grid_code FROM rec_s
            UNION ALL SELECT grid_code FROM {PREV}.{STATE}.house_base
                      WHERE house_key IN (SELECT house_key FROM t_house)
            UNION ALL SELECT grid_code FROM fresh.master.house)
        WHERE grid_code IS NOT NULL""")
    lap("(build houses)")
    in_grid = "grid_code IN (SELECT grid_code FROM t_grid)"
    build_grid(con, run_id, rec=f"(SELECT * FROM {S}.rec WHERE {in_grid})",
               house=f"(SELECT * FROM {S}.house_base WHERE {in_grid})",
               person_house=f"{B}.master.person_house")
    # grids whose parts changed hand them to their houses without parts of their own
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE grid_moved AS
        SELECT coalesce(a.grid_code, b.grid_code) AS grid_code
        FROM (SELECT * FROM {B}.master.grid WHERE {in_grid}) a
        FULL JOIN fresh.master.grid b USING (grid_code)
        WHERE a.grid_code IS NULL OR b.grid_code IS NULL
           OR a.community IS DISTINCT FROM b.community OR a.street IS DISTINCT FROM b.street
           OR a.district IS DISTINCT FROM b.district""")
    lap("(build grids)")
    _apply(con, "master.grid", run_id, "t_grid", changes, seconds)
    clock[0] = time.perf_counter()
    names = table("master.house").column_names()
    own = {"district": "b.district", "street": "b.street", "community": "b.community",
           "standard_address": "nullif(concat_ws('', b.district, b.street, b.community, "
                               "h.compound, h.building || '号楼', h.unit || '单元', "
                               "h.room || '室'), '')"}
    con.execute(f"""
        INSERT INTO fresh.master.house ({', '.join(quote(c) for c in names)})
        SELECT {', '.join(own.get(c, f'h.{quote(c)}') for c in names)}
        FROM {B}.master.house h JOIN {S}.house_base b USING (house_id)
        WHERE b.grid_code IN (SELECT grid_code FROM grid_moved)
          AND (b.street IS NULL OR b.community IS NULL OR b.district IS NULL)
          AND h.house_id NOT IN (SELECT house_id FROM fresh.master.house)
          AND b.house_key NOT IN (SELECT house_key FROM t_house)""")
    fill_house_from_grid(con, house="fresh.master.house", grid=f"{B}.master.grid")
    lap("(fill houses)")
    _apply(con, "master.house", run_id, f"(SELECT {hid} AS house_id FROM t_house)", changes,
           seconds)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE t_hh_keys AS
        SELECT source, source_key FROM {B}.master.household
        WHERE household_no IN (SELECT household_no FROM t_hh)
        UNION SELECT source, source_key FROM t_rec""")
    build_household(con, run_id, links=f"{B}.master.person_link", rec=f"""(
        SELECT * FROM {S}.rec WHERE household_no IN (SELECT household_no FROM t_hh))""")
    _apply(con, "master.household", run_id, "t_hh_keys", changes, seconds)
    # service tables
    from warehouse.service_tables import (build_person_name, build_review_queue,
                                          build_source_record)
    build_source_record(con, run_id, links="t_link", keys="t_rec")
    _apply(con, "master.source_record", run_id, "t_rec", changes, seconds)
    build_person_name(con, run_id, links="t_link", keys="t_rec")
    _apply(con, "master.person_name", run_id, "t_rec", changes, seconds)
    build_review_queue(con, run_id, links=f"{B}.master.person_link")
    _apply(con, "master.review_queue", run_id, None, changes, seconds)
    # small tables in full
    build_source_status(con, run_id)
    carry_audit(con, True, has_dec)
    for q in ("audit.run", "audit.finding", "audit.decision", "audit.source_status",
              "audit.access_log"):
        _apply(con, q, run_id, None, changes, seconds)
    con.execute(f"USE {BUILD}")
    return changes


def _events(con: duckdb.DuckDBPyConnection, run_id: str, changes: dict,
            seconds: dict) -> None:
    """master.person_event: this run's events replace the live master's of this run (older
    runs' events do not change: the work database's history of them is append-only). Checked
    against the full build's count: the work history plus the live master's other runs."""
    src, cols = event_source(con)
    spec = table("master.person_event")
    wanted = {c.name: DUCKDB_TYPES[c.type] for c in spec.columns}
    rid = _lit(run_id)
    if cols:
        con.execute(f"INSERT INTO master.person_event SELECT {select_or_null(cols, wanted)} "
                    f"FROM {WORK}.link.{src} WHERE CAST(run_id AS VARCHAR) = '{rid}'")
    _apply(con, "master.person_event", run_id,
           f"(SELECT event_id FROM {BUILD}.master.person_event WHERE run_id = '{rid}')",
           changes, seconds)
    if cols:
        want = int(_one(con, f"""
            SELECT (SELECT count(*) FROM {WORK}.link.{src})
                 + (SELECT count(*) FROM {PREV}.master.person_event
                    WHERE run_id NOT IN (SELECT DISTINCT CAST(run_id AS VARCHAR)
                                         FROM {WORK}.link.{src} WHERE run_id IS NOT NULL))""")[0])
        have = int(_one(con, f"SELECT count(*) FROM {BUILD}.master.person_event")[0])
        if want != have:
            raise RuntimeError(f"incremental publish left master.person_event with {have} "
                               f"rows, a full build has {want}")


class DeltaCheckFailed(RuntimeError):
    """A scoped build produced rows that break a key (the publish fails its audit)."""

    def __init__(self, check: str, detail: str):
        self.check, self.detail = check, detail
        super().__init__(f"{check}: {detail}")


_TOUCHED_NOW = ("(SELECT source, source_key FROM staged_now "
                "UNION SELECT source, source_key FROM rec_s)")

SCOPED_CHECKS: tuple[tuple[str, str, str], ...] = (
    ("staged_records_linked", "touched or newly staged records without a person_link",
     f"""SELECT source || ':' || source_key AS k FROM {_TOUCHED_NOW} r
         ANTI JOIN master.person_link l USING (source, source_key)"""),
    ("links_to_records", "touched person_link rows naming no current staged record",
     f"""SELECT l.source || ':' || l.source_key AS k FROM master.person_link l
         SEMI JOIN t_rec USING (source, source_key)
         ANTI JOIN {_TOUCHED_NOW} r USING (source, source_key)"""),
    ("links_count", "links other than one per current record (links, records)",
     f"""SELECT a || ' links, ' || b || ' records' AS k FROM (
            SELECT (SELECT count(*) FROM master.person_link) AS a,
                   (SELECT count(*) FROM {STATE}.rec) + (SELECT count(*) FROM staged_now s
                    ANTI JOIN {STATE}.rec r USING (source, source_key)) AS b) WHERE a <> b"""),
    ("links_to_persons", "touched person_link rows pointing at a missing person",
     """SELECT l.source || ':' || l.source_key || ' -> ' || coalesce(l.person_id, 'NULL') AS k
        FROM master.person_link l ANTI JOIN master.person p USING (person_id)
        WHERE l.person_id IN (SELECT person_id FROM t_per)
           OR EXISTS (SELECT 1 FROM t_rec t WHERE t.source = l.source
                      AND t.source_key = l.source_key)"""),
    ("person_id_unique", "touched persons without an id",
     "SELECT 'NULL' AS k FROM fresh.master.person WHERE person_id IS NULL"),
    ("persons_have_links", "touched persons without any linked record",
     """SELECT p.person_id AS k FROM master.person p
        ANTI JOIN master.person_link l USING (person_id)
        WHERE p.person_id IN (SELECT person_id FROM t_per)"""),
)
"""The publish audit scoped to the touched keys, run on the building file after the apply
(``staged_now``: the records of each source's latest staged run). Key uniqueness is checked on
each scoped build before it is applied (:func:`_apply`) and kept by the copy's primary keys."""
