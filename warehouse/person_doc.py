"""master.person_doc: each person's whole picture as one precomputed JSON document.

``GET /persons/{id_number}`` used to run about eight indexed queries per lookup (golden record,
records by department, households and members, houses, findings, merges and splits); at
thousands of lookups a second that is the whole budget. Publish now renders the picture once per
person, in SQL, and the service reads it with one primary-key point query on ``id_key``.

Keys: each person's document is stored **once**:

- under its ID number when it is the first person (by person id) carrying that number; the row's
  ``other_person_ids`` lists the other persons with the same number (usually empty);
- under its person id otherwise (persons without an ID number, or the second and later persons
  sharing a number).

A lookup by ID number reads the row keyed by the number; a lookup by person id (merges followed)
reads the row keyed by the id, or, if there is none, the row keyed by the person's ID number.

The document has exactly the shape :func:`unigrid.service.queries.person_picture` returns
(``person_id``, ``n_records``, ``sources``, ``golden``, ``lineage``, ``records_by_department``,
``households``, ``houses``, ``findings``, ``events``) except ``run_id``: the service adds the
row's ``run_id`` (the publishing run) when it reads the document, so a person whose picture did
not change keeps the same stored text from one publish to the next. Dates as ISO text, decimals
as numbers, timestamps as ISO 8601 in UTC; every list in a fixed order (ties broken down to the
source key). Findings carry their published status; the service lays reviews made since the
publish over them and masks per role on the way out. Built after every other master table and
the carried-forward ``audit.finding``.

An incremental publish renders only the documents of the persons a change touches
(:func:`refresh_person_docs`); the rest of the table is carried unchanged but for the run stamp.
"""

from __future__ import annotations

import logging
import time

import duckdb

from warehouse.master_build import _insert, _lit
from warehouse.schema import GOLDEN_FIELDS, quote

log = logging.getLogger(__name__)

EVENTS_PER_PERSON = 50
"""Most recent merges / splits kept in a document (as the per-query picture did)."""


def ts_iso(expr: str) -> str:
    """SQL rendering a TIMESTAMPTZ as ISO 8601 in UTC (``2026-11-20T02:14:09+00:00``;
    microseconds only when not zero, as Python's ``isoformat``)."""
    u = f"timezone('UTC', {expr})"
    return (f"CASE WHEN {expr} IS NULL THEN NULL WHEN microsecond({u}) % 1000000 = 0 "
            f"THEN strftime({u}, '%Y-%m-%dT%H:%M:%S') || '+00:00' "
            f"ELSE strftime({u}, '%Y-%m-%dT%H:%M:%S.%f') || '+00:00' END")


def _golden_sql(alias: str) -> str:
    parts = [f"{quote(n)} := {alias}.{quote(n)}" for n, *_ in GOLDEN_FIELDS]
    parts += [f"is_deceased := {alias}.is_deceased", f"house_id := {alias}.house_id"]
    return "struct_pack(" + ", ".join(parts) + ")"


def _lineage_sql(alias: str) -> str:
    entries = ", ".join(
        f"struct_pack(k := '{n}', v := struct_pack(source := {alias}.{quote(n + '_source')}, "
        f"source_key := {alias}.{quote(n + '_source_key')}))" for n, *_ in GOLDEN_FIELDS)
    return (f"map_from_entries(list_filter([{entries}], lambda e: e.v.source IS NOT NULL))")


def _array(row_json: str, order: str) -> str:
    """SQL: a JSON array (text) of per-row JSON texts in ``order`` (NULL when no rows).

    Arrays are assembled as text from flat per-row ``to_json`` joined in an ordered ``list``:
    DuckDB's ``to_json`` of a list of structs, and ``string_agg`` with ``ORDER BY``, each cost
    several times more (measured at 200,000 persons: the whole table in 48 s with nested
    ``to_json``, 33 s with ``string_agg``)."""
    return f"'[' || array_to_string(list({row_json} ORDER BY {order}), ',') || ']'"


def _row(*fields: str) -> str:
    """SQL: one row as JSON text; ``fields`` are ``name := expr`` items."""
    return f"CAST(to_json(struct_pack({', '.join(fields)})) AS VARCHAR)"


REC = _row("source := l.source", "source_key := l.source_key", "kind := l.kind",
           "method := l.method", "score := l.score", "fields := r.fields")
MEMBER = _row("person_id := h.person_id", "name := p.name",
              "relation_to_head := h.relation_to_head", "is_head := h.is_head",
              "is_active := h.is_active", "registry_status := h.registry_status",
              "registered_at := h.registered_at", "cancel_date := h.cancel_date",
              "cancel_reason := h.cancel_reason", "house_id := h.house_id")
HOUSEHOLD = ("""'{"household_no":' || CAST(to_json(x.household_no) AS VARCHAR)"""
             """ || ',"members":' || m.members || '}'""")
HOUSE = _row("house_id := ph.house_id", "standard_address := h.standard_address",
             "grid_code := h.grid_code", "district := h.district", "street := h.street",
             "community := h.community", "relation := ph.relation",
             "is_current := ph.is_current", "valid_from := ph.valid_from",
             "valid_to := ph.valid_to", "source := ph.source", "source_key := ph.source_key")
FINDING = _row("finding_id := finding_id", "rule := rule", "status := status",
               "months := months", "amount_monthly := amount_monthly",
               "amount_total := amount_total", "first_seen_run := first_seen_run",
               "last_seen_run := last_seen_run", "evidence_hash := evidence_hash",
               f"status_at := {ts_iso('status_at')}")
EVENT = _row("event_id := event_id", "run_id := run_id", "event := event",
             "person_id := person_id", "other_person_id := other_person_id",
             f'"at" := {ts_iso(chr(34) + "at" + chr(34))}')


def person_doc_select(run_id: str, only: str | None = None) -> str:
    """SELECT of (id_key, person_id, other_person_ids, doc, run_id) over the built master.

    ``only``: a relation with a ``person_id`` column; when given, only those persons' documents
    are rendered (each as in a full build: the households and ID-number groups a document shows
    are read whole). Which persons need a new document after a change is
    :func:`touched_persons_sql`'s business.
    """
    rid = _lit(run_id)
    sel = f"(SELECT person_id FROM {only})" if only else None

    def keep(col: str) -> str:
        return f"WHERE {col} IN {sel}" if sel else ""

    def also(col: str) -> str:
        return f"AND {col} IN {sel}" if sel else ""

    member_filter = (f"""WHERE EXISTS (SELECT 1 FROM master.household z
                                       WHERE z.person_id IN {sel}
                                         AND z.household_no IS NOT DISTINCT FROM h.household_no)"""
                     if sel else "")
    # the few persons' source records found by person id first, then read whole by row id
    # (DuckDB then decompresses the JSON of those rows only)
    records = (f"""(SELECT * FROM master.source_record WHERE rowid IN (
                     SELECT rowid FROM master.source_record WHERE person_id IN {sel}))"""
               if sel else "master.source_record")
    persons = (f"""(SELECT * FROM master.person
                    WHERE person_id IN {sel} OR id_number IN
                          (SELECT id_number FROM master.person WHERE person_id IN {sel}))"""
               if sel else "master.person")
    head = _row("person_id := k.person_id", "n_records := k.n_records", "sources := k.sources",
                f"golden := {_golden_sql('k')}",
                f"lineage := {_lineage_sql('k')}")
    return f"""
    WITH recs AS (
        SELECT l.person_id, coalesce(l.department, 'unknown') AS department,
               {_array(REC, 'l.source, l.source_key')} AS items
        FROM master.person_link l
        LEFT JOIN {records} r
               ON r.source = l.source AND r.source_key = l.source_key
              AND r.person_id = l.person_id
        {keep('l.person_id')}
        GROUP BY ALL
    ), by_dept AS (
        SELECT person_id,
               '{{' || array_to_string(list(CAST(to_json(department) AS VARCHAR) || ':'
                                            || items ORDER BY department), ',') || '}}' AS m
        FROM recs GROUP BY person_id
    ), members AS (
        SELECT h.household_no, {_array(MEMBER, 'h.is_head DESC, h.person_id, h.source, h.source_key')} AS members
        FROM master.household h LEFT JOIN master.person p USING (person_id)
        {member_filter}
        GROUP BY h.household_no
    ), hh AS (
        SELECT x.person_id, {_array(HOUSEHOLD, 'x.household_no')} AS households
        FROM (SELECT DISTINCT person_id, household_no FROM master.household
              WHERE person_id IS NOT NULL {also('person_id')}) x
        JOIN members m ON m.household_no IS NOT DISTINCT FROM x.household_no
        GROUP BY x.person_id
    ), houses AS (
        SELECT ph.person_id,
               {_array(HOUSE, 'ph.is_current DESC, ph.valid_from DESC NULLS LAST, ph.house_id, '
                              'ph.relation, ph.source, ph.source_key')} AS houses
        FROM master.person_house ph LEFT JOIN master.house h USING (house_id)
        {keep('ph.person_id')}
        GROUP BY ph.person_id
    ), fnd AS (
        SELECT person_id, {_array(FINDING, 'rule, finding_id')} AS findings
        FROM audit.finding WHERE person_id IS NOT NULL {also('person_id')} GROUP BY person_id
    ), ev_one AS (
        SELECT e.person_id AS owner, e.* FROM master.person_event e
        WHERE e.event IN ('merge', 'split') AND e.person_id IS NOT NULL {also('e.person_id')}
        UNION
        SELECT e.other_person_id AS owner, e.* FROM master.person_event e
        WHERE e.event IN ('merge', 'split') AND e.other_person_id IS NOT NULL
              {also('e.other_person_id')}
    ), ev AS (
        SELECT owner AS person_id,
               {_array(EVENT, '"at" DESC NULLS LAST, event_id DESC')} AS events
        FROM (SELECT * FROM ev_one
              QUALIFY row_number() OVER (PARTITION BY owner
                                         ORDER BY "at" DESC NULLS LAST, event_id DESC)
                      <= {EVENTS_PER_PERSON})
        GROUP BY owner
    ), keyed AS (
        SELECT p.*,
               CASE WHEN p.id_number IS NOT NULL
                         AND row_number() OVER (PARTITION BY p.id_number
                                                ORDER BY p.person_id) = 1
                    THEN p.id_number ELSE p.person_id END AS id_key,
               CASE WHEN p.id_number IS NULL THEN []::VARCHAR[]
                    ELSE list(p.person_id) OVER (PARTITION BY p.id_number, p.alone
                                                 ORDER BY p.person_id
                                                 ROWS BETWEEN 1 FOLLOWING
                                                 AND UNBOUNDED FOLLOWING) END AS others
        FROM (SELECT *, CASE WHEN id_number IS NULL THEN person_id END AS alone
              FROM {persons}) p
    )
    SELECT k.id_key, k.person_id,
           CASE WHEN k.id_key = k.person_id THEN []::VARCHAR[]
                ELSE coalesce(k.others, []::VARCHAR[]) END,
           left({head}, -1)
             || ',"records_by_department":' || coalesce(d.m, '{{}}')
             || ',"households":' || coalesce(hh.households, '[]')
             || ',"houses":' || coalesce(ho.houses, '[]')
             || ',"findings":' || coalesce(f.findings, '[]')
             || ',"events":' || coalesce(ev.events, '[]') || '}}',
           '{rid}'
    FROM keyed k
    LEFT JOIN by_dept d USING (person_id)
    LEFT JOIN hh USING (person_id)
    LEFT JOIN houses ho USING (person_id)
    LEFT JOIN fnd f USING (person_id)
    LEFT JOIN ev USING (person_id)
    {keep('k.person_id')}"""


SLICE_PERSONS = 200_000
"""A full build renders the documents in slices of about this many persons (by a hash of the
person id), so its memory does not grow with the city."""


def build_person_doc(con: duckdb.DuckDBPyConnection, run_id: str,
                     slice_persons: int = SLICE_PERSONS) -> None:
    """Fill master.person_doc from the master tables built in ``con`` (last step of the build,
    after ``audit.finding`` is carried), one slice of persons at a time (a document needs only
    its own person in ``only``: the rendering reads the whole households and ID-number groups
    it shows)."""
    n = int(con.execute("SELECT count(*) FROM master.person").fetchone()[0])
    slices = max(1, -(-n // max(1, slice_persons)))
    for i in range(slices):
        con.execute("CREATE OR REPLACE TEMP TABLE doc_slice AS SELECT person_id FROM master.person "
                    f"WHERE hash(person_id) % {slices} = {i}")
        _insert(con, "master.person_doc", person_doc_select(run_id, only="doc_slice"))
    con.execute("DROP TABLE IF EXISTS doc_slice")


DOC_INPUTS: dict[str, tuple[str, ...]] = {
    "master.person": ("person_id",),
    "master.person_link": ("person_id",),
    "master.source_record": ("person_id",),
    "master.person_house": ("person_id",),
    "master.household": ("person_id",),
    "audit.finding": ("person_id",),
    "master.person_event": ("person_id", "other_person_id"),
}
"""The tables a document shows, with the columns naming whose document a changed row is in
(``master.house`` is reached through ``person_house``; household members and persons sharing an
ID number through :func:`touched_persons_sql`'s closure)."""


HOUSE_SHOWN = ("standard_address", "grid_code", "district", "street", "community")
"""The ``master.house`` columns a document shows (its counts are not shown)."""


def touched_persons_sql(old: str, new: str) -> str:
    """SELECT of the persons whose document may differ between the master in catalog ``old``
    and the one in ``new``, given the changed keys :func:`warehouse.master_diff.apply_diff`
    kept for every table of :data:`DOC_INPUTS` and ``master.house``.

    Persons named by a changed row (old or new version); the occupants of a house whose shown
    columns (:data:`HOUSE_SHOWN`) changed; every member (before and after) of a household with
    a changed row or with a member whose name changed (a document lists its households'
    members with their names); every person (before and after) carrying an ID number that a
    person gained, lost, or took with them when added or removed (a document is keyed by the
    number's first person and lists the others).
    """
    from warehouse.master_diff import diff_name
    from warehouse.schema import ALL_TABLES

    spec = {t.qualified: t for t in ALL_TABLES}
    direct = []
    for qualified, cols in DOC_INPUTS.items():
        key = ", ".join(quote(k) for k in spec[qualified].primary_key)
        for db, side in ((old, "in_old"), (new, "in_new")):
            for c in cols:
                direct.append(f"SELECT x.{quote(c)} AS person_id FROM {db}.{qualified} x "
                              f"JOIN {diff_name(qualified)} d USING ({key}) WHERE d.{side}")
    shown = " OR ".join(f"a.{c} IS DISTINCT FROM b.{c}" for c in HOUSE_SHOWN)
    direct.append(f"""SELECT person_id FROM {new}.master.person_house
        WHERE house_id IN (
            SELECT d.house_id FROM {diff_name('master.house')} d
            LEFT JOIN {old}.master.house a ON d.in_old AND a.house_id = d.house_id
            LEFT JOIN {new}.master.house b ON d.in_new AND b.house_id = d.house_id
            WHERE a.house_id IS NULL OR b.house_id IS NULL OR {shown})""")
    both = [old, new]
    hh_key = ", ".join(quote(k) for k in spec["master.household"].primary_key)
    hh = " UNION ".join(
        [f"SELECT x.household_no FROM {db}.master.household x JOIN "
         f"{diff_name('master.household')} d USING ({hh_key}) WHERE d.{side}"
         for db, side in ((old, "in_old"), (new, "in_new"))]
        + [f"SELECT household_no FROM {db}.master.household "
           f"WHERE person_id IN (SELECT person_id FROM moved WHERE name_changed)" for db in both])
    members = " UNION ".join(
        f"SELECT h.person_id FROM {db}.master.household h "
        f"WHERE EXISTS (SELECT 1 FROM hh WHERE hh.household_no IS NOT DISTINCT FROM "
        f"h.household_no)" for db in both)
    sharing = " UNION ".join(f"SELECT person_id FROM {db}.master.person "
                             f"WHERE id_number IN (SELECT id_number FROM ids)" for db in both)
    return f"""
    WITH direct AS ({" UNION ALL ".join(direct)}),
    moved AS (
        SELECT d.person_id, a.id_number AS old_id, b.id_number AS new_id,
               a.person_id IS NULL OR b.person_id IS NULL
                 OR a.name IS DISTINCT FROM b.name AS name_changed,
               a.person_id IS NULL OR b.person_id IS NULL
                 OR a.id_number IS DISTINCT FROM b.id_number AS id_changed
        FROM {diff_name('master.person')} d
        LEFT JOIN {old}.master.person a ON d.in_old AND a.person_id = d.person_id
        LEFT JOIN {new}.master.person b ON d.in_new AND b.person_id = d.person_id),
    hh AS ({hh}),
    ids AS (SELECT old_id AS id_number FROM moved WHERE id_changed AND old_id IS NOT NULL
            UNION SELECT new_id FROM moved WHERE id_changed AND new_id IS NOT NULL)
    SELECT DISTINCT person_id FROM (SELECT person_id FROM direct UNION {members}
                                    UNION {sharing})
    WHERE person_id IS NOT NULL"""


def refresh_person_docs(con: duckdb.DuckDBPyConnection, run_id: str, old: str,
                        new: str) -> dict[str, int]:
    """Incremental publish: re-render the documents of the persons :func:`touched_persons_sql`
    finds, in ``con``'s current catalog (the building master, every other table already
    brought up to date), and stamp the others with ``run_id``. Returns inserted / deleted
    counts. Equal to a full :func:`build_person_doc` (tested table against table)."""
    t0 = time.perf_counter()
    con.execute("CREATE OR REPLACE TEMP TABLE doc_touched AS " + touched_persons_sql(old, new))
    t1 = time.perf_counter()
    deleted = int(con.execute("DELETE FROM master.person_doc WHERE person_id IN "
                              "(SELECT person_id FROM doc_touched)").fetchone()[0])
    t2 = time.perf_counter()
    inserted = _insert(con, "master.person_doc", person_doc_select(run_id, only="doc_touched"))
    t3 = time.perf_counter()
    con.execute("UPDATE master.person_doc SET run_id = ? WHERE run_id IS DISTINCT FROM ?",
                [run_id, run_id])
    t4 = time.perf_counter()
    con.execute("DROP TABLE doc_touched")
    log.info(
        "person documents: %d re-rendered; seconds: touched %.2f, delete %.2f, render %.2f, "
        "stamp %.2f", inserted, t1 - t0, t2 - t1, t3 - t2, t4 - t3)
    return {"inserted": inserted, "deleted": deleted}
