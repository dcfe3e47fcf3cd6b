"""Delta-driven incremental publish (:mod:`warehouse.master_delta`): equal to a full rebuild.

Day 1 is published in full; day 2's work database is day 1's with one kind of change made the
way the earlier stages make it, and the deltas they would write (``std.record.run_id`` of the
re-standardised records, a newer staged row, ``std.delta``, ``link.delta_person``, both
``delta_meta``) derived from the before / after work databases by :func:`write_deltas`. Home
``inc`` publishes incrementally (and must take the delta path), home ``full`` rebuilds; every
declared table and the kept ``publish_state`` must agree. Then several nights of random changes
in a row, and the cases where the deltas must not be trusted (the publish falls back to the
full build and diff, and still publishes the same).
"""

from __future__ import annotations

import random
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Callable

import duckdb
import pytest

from tests.warehouse.conftest import settings_at
from tests.warehouse.factory import GRID, PENSION, REGISTRY, execute, make_work_db
from unigrid.settings import Settings
from warehouse.publish import publish
from warehouse.queries import open_master
from warehouse.schema import ALL_TABLES, duckdb_ddl, quote, table

RUN1 = "20261120"
PERSONS = 60


def pid(i: int) -> str:
    """The factory's person id of person ``i``."""
    return f"P{i + 1:012X}"


def write_deltas(before: Path, after: Path, run_id: str) -> None:
    """Write into ``after`` what standardise and match write for the night from ``before`` to
    ``after``: re-standardised records get ``run_id``, ``std.delta``, ``link.delta_person``
    (persons whose links, records or golden record changed) and both ``delta_meta`` rows."""
    con = duckdb.connect(str(after))
    try:
        con.execute(f"ATTACH '{before}' AS b (READ_ONLY)")
        con.execute("""
            CREATE OR REPLACE TEMP TABLE chg AS
            SELECT source, source_key, 'changed' AS change FROM (
                SELECT * EXCLUDE (run_id) FROM std.record
                EXCEPT SELECT * EXCLUDE (run_id) FROM b.std.record) n
            SEMI JOIN b.std.record o USING (source, source_key)
            UNION ALL SELECT source, source_key, 'new' FROM std.record
                ANTI JOIN b.std.record USING (source, source_key)
            UNION ALL SELECT source, source_key, 'removed' FROM b.std.record
                ANTI JOIN std.record USING (source, source_key)""")
        con.execute("UPDATE std.record SET run_id = ? WHERE (source, source_key) IN "
                    "(SELECT (source, source_key) FROM chg)", [run_id])
        con.execute("""CREATE OR REPLACE TABLE std.delta AS SELECT NULL::BIGINT AS record_id,
                       source, source_key, change FROM chg""")
        con.execute("""CREATE OR REPLACE TABLE std.delta_meta AS SELECT ? AS run_id,
                       FALSE AS "full", (SELECT count(*) FROM std.record) AS records,
                       0::BIGINT AS new, 0::BIGINT AS changed, 0::BIGINT AS removed""",
                    [run_id])
        con.execute("""
            CREATE OR REPLACE TABLE link.delta_person AS
            WITH x AS (SELECT n.person_id AS now_id, o.person_id AS prev_id
                       FROM link.person_link n FULL JOIN b.link.person_link o
                       USING (source, source_key)
                       WHERE n.person_id IS DISTINCT FROM o.person_id
                          OR n.method IS DISTINCT FROM o.method
                          OR n.score IS DISTINCT FROM o.score),
            p AS (SELECT now_id AS person_id FROM x UNION SELECT prev_id FROM x
                  UNION SELECT l.person_id FROM link.person_link l SEMI JOIN chg
                        USING (source, source_key)
                  UNION SELECT person_id FROM (SELECT * FROM link.person
                                               EXCEPT SELECT * FROM b.link.person)
                  UNION SELECT person_id FROM (SELECT * FROM b.link.person
                                               EXCEPT SELECT * FROM link.person))
            SELECT person_id, 'changed' AS change FROM p WHERE person_id IS NOT NULL""")
        con.execute("""CREATE OR REPLACE TABLE link.delta_meta AS SELECT ? AS run_id,
                       FALSE AS "full", 0::BIGINT AS pairs_scored,
                       (SELECT count(*) FROM link.delta_person) AS persons_touched""",
                    [run_id])
        con.execute("CHECKPOINT")
    finally:
        con.close()


def night(s: Settings, run_id: str, *sql: str, deltas: bool = True) -> None:
    """Make the next night's work database: ``sql`` on a copy of the current one, plus this
    run's events (two) and, with ``deltas``, the deltas."""
    before = s.work_db.with_name(f"before-{run_id}.duckdb")
    shutil.copyfile(s.work_db, before)
    con = duckdb.connect(str(s.work_db))
    try:
        for q in sql:
            con.execute(q.replace("{run}", run_id))
        con.execute(f"""
            CREATE OR REPLACE TABLE link.person_event AS
            SELECT '{run_id}-' || lpad(CAST(row_number() OVER (ORDER BY person_id) AS VARCHAR),
                   7, '0') AS event_id, '{run_id}' AS run_id, 'update' AS event, person_id,
                   NULL::VARCHAR AS other_person_id, '{{}}' AS detail,
                   TIMESTAMPTZ '2026-11-21 02:00:00+00' AS "at"
            FROM (SELECT person_id FROM link.person ORDER BY person_id LIMIT 2)""")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    if deltas:
        write_deltas(before, s.work_db, run_id)
    before.unlink()


def grid_key(i: int) -> str:
    return f"CJ{i:08d}"


def reg_key(i: int) -> str:
    return f"HJ{i:010d}"


def pen_key(i: int) -> str:
    return f"{900000000000 + i:012d}"


def changed_person(i: int) -> list[str]:
    """Person i's golden name and death date change (a record of theirs was corrected)."""
    return [f"UPDATE link.person SET name = name || '改', death_date = DATE '2026-11-01' "
            f"WHERE person_id = '{pid(i)}'",
            f"UPDATE std.record SET relation_to_head = '户主' WHERE source_key = '{reg_key(i)}'"]


def merged(i: int, j: int) -> list[str]:
    """Person j is merged into person i (another household): j's links move, its row goes."""
    return [f"UPDATE link.person_link SET person_id = '{pid(i)}' WHERE person_id = '{pid(j)}'",
            f"DELETE FROM link.person WHERE person_id = '{pid(j)}'",
            f"UPDATE link.person SET n_records = n_records + 2 WHERE person_id = '{pid(i)}'"]


def split(i: int) -> list[str]:
    """Person i's grid record becomes a new person of its own."""
    new = f"P{0xF00 + i:012X}"
    return [f"UPDATE link.person_link SET person_id = '{new}', method = 'single', score = NULL "
            f"WHERE source_key = '{grid_key(i)}'",
            f"INSERT INTO link.person SELECT * REPLACE ('{new}' AS person_id, 1 AS n_records) "
            f"FROM link.person WHERE person_id = '{pid(i)}'",
            f"UPDATE link.person SET n_records = n_records - 1 WHERE person_id = '{pid(i)}'"]


def moved_house(i: int) -> list[str]:
    """Person i's grid record moves to another house and grid (a newer staged row)."""
    return [f"UPDATE std.record SET room = '7{i:02d}', house_key = house_key || '-m{i}' "
            f"WHERE source_key = '{grid_key(i)}'",
            f"INSERT INTO staged.{GRID} SELECT * REPLACE ('{{run}}' AS _run_id, "
            f"'420502999999' AS grid_code, TIMESTAMP '2026-11-21 08:00:00' AS collected_at) "
            f"FROM staged.{GRID} WHERE _source_key = '{grid_key(i)}' "
            f"QUALIFY row_number() OVER (ORDER BY _run_id DESC) = 1"]


def removed_record(i: int) -> list[str]:
    """Person i's registry record is cancelled out of the source (the key is gone)."""
    k = reg_key(i)
    return [f"DELETE FROM std.record WHERE source_key = '{k}'",
            f"DELETE FROM link.person_link WHERE source_key = '{k}'",
            f"DELETE FROM staged.{REGISTRY} WHERE _source_key = '{k}'",
            f"UPDATE link.person SET n_records = n_records - 1 WHERE person_id = '{pid(i)}'",
            f"DELETE FROM link.person WHERE person_id = '{pid(i)}' AND person_id NOT IN "
            f"(SELECT person_id FROM link.person_link)"]


def staged_only(i: int) -> list[str]:
    """Person i's registry record gets a newer staged row that changes no std field."""
    return [f"INSERT INTO staged.{REGISTRY} SELECT * REPLACE ('{{run}}' AS _run_id, "
            f"DATE '2020-02-02' AS registered_at) FROM staged.{REGISTRY} "
            f"WHERE _source_key = '{reg_key(i)}'"]


def id_moved(i: int, j: int) -> list[str]:
    """Person i's ID number is corrected to person j's (now shared with j and j's sharers)."""
    return [f"UPDATE link.person SET id_number = (SELECT id_number FROM link.person "
            f"WHERE person_id = '{pid(j)}') WHERE person_id = '{pid(i)}'"]


def decided(s: Settings, i: int) -> list[str]:
    """A steward decides person i's pension record is someone else: it becomes a new person
    (decision recorded in the decisions database, link method ``human`` on the other side)."""
    con = duckdb.connect(str(s.decisions_db))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS audit")
        con.execute(duckdb_ddl((table("audit.decision"),)).replace("CREATE TABLE",
                                                                  "CREATE TABLE IF NOT EXISTS"))
        con.execute(f"INSERT INTO audit.decision (decision_id, left_source, left_key, "
                    f"right_source, right_key, verdict, \"user\", reason, decided_at) VALUES "
                    f"({1000 + i}, '{REGISTRY}', '{reg_key(i)}', '{PENSION}', '{pen_key(i)}', "
                    f"'different', 'steward01', 'test', TIMESTAMPTZ '2026-11-21 01:00:00+00')")
    finally:
        con.close()
    new = f"P{0xE00 + i:012X}"
    return [f"UPDATE link.person_link SET person_id = '{new}', method = 'single', score = NULL "
            f"WHERE source_key = '{pen_key(i)}'",
            f"UPDATE link.person_link SET method = 'human', score = 1.0 "
            f"WHERE source_key = '{reg_key(i)}'",
            f"INSERT INTO link.person SELECT * REPLACE ('{new}' AS person_id, 1 AS n_records) "
            f"FROM link.person WHERE person_id = '{pid(i)}'"]


CASES: dict[str, Callable[[Settings], list[str]]] = {
    "nothing changed": lambda s: [],
    "a changed person": lambda s: changed_person(3),
    "a merged pair": lambda s: merged(2, 9),
    "a split": lambda s: split(7),
    "a moved house": lambda s: moved_house(13),
    "a removed record": lambda s: removed_record(21),
    "a newer staged row only": lambda s: staged_only(22),
    "a human decision": lambda s: decided(s, 25),
    "an ID number moved": lambda s: id_moved(20, 7),
}


def rows(s: Settings, t: str) -> list[tuple]:
    """Every row of a table of the published master, sorted (audit.run: its stable columns)."""
    cols = "*"
    if t == "audit.run":
        cols = "run_id, status, persons, person_links, houses, previous_run_id"
    elif not t.startswith("publish_state"):
        cols = ", ".join(quote(c) for c in table(t).column_names())
    with open_master(s) as con:
        return con.execute(f"SELECT {cols} FROM {t} ORDER BY ALL").fetchall()


COMPARED = [t.qualified for t in ALL_TABLES] + ["publish_state.rec",
                                                "publish_state.house_base"]


def assert_same(inc: Settings, full: Settings, label: str) -> None:
    for t in COMPARED:
        assert rows(inc, t) == rows(full, t), f"{label}: {t}"


def two_homes(tmp_path: Path) -> tuple[Settings, Settings]:
    inc = settings_at(tmp_path / "inc")
    (tmp_path / "inc").mkdir()
    make_work_db(inc.work_db, persons=PERSONS, run_id=RUN1)
    con = duckdb.connect(str(inc.work_db))  # persons i and i + 50 share an ID number
    con.execute("ALTER TABLE link.person ADD COLUMN id_number VARCHAR")
    con.execute("UPDATE link.person SET id_number = 'ID' || (CAST('0x' || substr(person_id, 2) "
                "AS BIGINT) - 1) % 50")
    con.close()
    assert publish(inc, RUN1).mode == "full"
    shutil.copytree(tmp_path / "inc", tmp_path / "full")
    return inc, settings_at(tmp_path / "full")


def copy_work(src: Settings, dst: Settings) -> None:
    for a, b in ((src.work_db, dst.work_db), (src.decisions_db, dst.decisions_db)):
        if a.exists():
            shutil.copyfile(a, b)


@pytest.mark.parametrize("case", list(CASES))
def test_delta_publish_equals_full_rebuild(tmp_path: Path, case: str) -> None:
    inc, full = two_homes(tmp_path)
    night(inc, "20261121", *CASES[case](inc))
    copy_work(inc, full)
    a = publish(inc, "20261121")
    b = publish(full, "20261121", full_rebuild=True)
    assert a.mode == "incremental" and a.delta.startswith("deltas:"), a.delta
    assert a.counts == b.counts
    assert_same(inc, full, case)
    if case == "nothing changed":  # only this run's events and their persons' documents
        moved = {t for t, c in a.changes.items() if c["inserted"] or c["deleted"]}
        assert moved <= {"master.person_event", "master.person_doc", "audit.source_status"}, \
            a.changes


def test_several_nights_of_random_changes(tmp_path: Path) -> None:
    inc, full = two_homes(tmp_path)
    rng = random.Random(8)
    kinds = [changed_person, split, moved_house, removed_record, staged_only,
             lambda i: id_moved(i, (i * 7) % PERSONS)]
    free = list(range(1, PERSONS))
    rng.shuffle(free)
    for n, run in enumerate(("20261121", "20261122", "20261123", "20261124")):
        sql: list[str] = []
        for _ in range(3):
            kind = rng.choice(kinds)
            # split and move need a grid record (persons i with i % 3 != 2 have one)
            i = next(i for i in reversed(free)
                     if i % 3 != 2 or kind not in (split, moved_house))
            free.remove(i)
            sql += kind(i)
        sql += merged(free.pop(), free.pop())
        night(inc, run, *sql)
        copy_work(inc, full)
        a = publish(inc, run)
        b = publish(full, run, full_rebuild=True)
        assert a.delta.startswith("deltas:"), (run, a.delta)
        assert a.counts == b.counts, run
        assert_same(inc, full, f"night {n + 2}")
        # the next night starts from the full rebuild's master too (the same content)
        shutil.copyfile(inc.master_db, full.master_db)


@pytest.mark.parametrize("why, prepare, reason", [
    ("links changed outside the delta",
     lambda s: night(s, "20261121", *merged(2, 9), deltas=True) or _execute(
         s, f"UPDATE link.person_link SET score = 0.5 WHERE source_key = '{reg_key(30)}'"),
     "links outside the delta"),
    ("golden record changed outside the delta (checked when asked)",
     lambda s: night(s, "20261121") or _execute(
         s, f"UPDATE link.person SET name = '别名' WHERE person_id = '{pid(31)}'"),
     "golden records outside the delta"),
    ("link model or rules changed",
     lambda s: night(s, "20261121") or _execute(
         s, "CREATE TABLE link.link_state AS SELECT 'other' AS fingerprint"),
     "link model or rules changed"),
    ("no deltas written", lambda s: night(s, "20261121", *split(7), deltas=False),
     "no std.delta_meta"),
    ("delta of another run",
     lambda s: night(s, "20261121") or _execute(s, "UPDATE std.delta_meta SET run_id = '1'"),
     "std.delta_meta is of run 1"),
    ("full linkage", lambda s: night(s, "20261121") or _execute(
        s, 'UPDATE link.delta_meta SET "full" = TRUE'), "link delta is full"),
])
def test_untrusted_deltas_fall_back_to_the_full_build(tmp_path: Path, why: str, prepare,
                                                      reason: str) -> None:
    inc, full = two_homes(tmp_path)
    prepare(inc)
    copy_work(inc, full)
    a = publish(replace(inc, extra={"UNIGRID_PUBLISH_GOLDEN_CHECK": "1"}), "20261121")
    b = publish(full, "20261121", full_rebuild=True)
    assert a.mode == "incremental" and a.delta.startswith("full build and diff: " + reason), \
        (why, a.delta)
    assert_same(inc, full, why)


def test_rerun_of_the_published_run_and_master_without_state_fall_back(tmp_path: Path) -> None:
    inc, _ = two_homes(tmp_path)
    night(inc, RUN1)  # deltas of the live master's own run
    assert publish(inc, RUN1).delta.startswith("full build and diff: run 20261120 is not after")
    with duckdb.connect(str(inc.master_db)) as con:
        con.execute("DROP SCHEMA publish_state CASCADE")
    night(inc, "20261121")
    a = publish(inc, "20261121")
    assert a.delta == "full build and diff: live master has no publish_state"
    # that publish wrote the state again: the next night is delta-driven
    night(inc, "20261122", *split(7))
    assert publish(inc, "20261122").delta.startswith("deltas:")


def test_delta_publish_can_be_turned_off_and_run_the_full_checks(tmp_path: Path) -> None:
    inc, full = two_homes(tmp_path)
    night(inc, "20261121", *merged(2, 9))
    copy_work(inc, full)
    off = replace(inc, extra={"UNIGRID_PUBLISH_DELTA": "0"})
    assert publish(off, "20261121").delta.startswith("full build and diff: turned off")
    night(inc, "20261122", *split(7))
    checked = replace(inc, extra={"UNIGRID_PUBLISH_FULL_CHECKS": "1"})
    a = publish(checked, "20261122")
    assert a.delta.startswith("deltas:")
    assert {c.check for c in a.checks} >= {"links_unique", "keys_unique", "staged_records_linked"}
    night(inc, "20261123", *changed_person(3))
    scoped = publish(inc, "20261123")
    assert {c.check for c in scoped.checks} >= {"links_count", "persons_have_links"}


def _execute(s: Settings, *sql: str) -> None:
    execute(s.work_db, *sql)
