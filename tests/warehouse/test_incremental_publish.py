"""Incremental publish: the same master a full rebuild gives, every table row for row.

Two homes share day 1's published master (the second is a copy); day 2's work database is
changed one way per case, then home ``inc`` publishes incrementally and home ``full`` rebuilds
from scratch. Every declared table must agree (audit.run only on its run list: its timings
differ). Failure cases: a failed audit or an error while the diff is applied keeps the live
master byte-identical, and so does a publish killed after its copy was changed.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Callable

import duckdb
import pytest

from tests.warehouse.conftest import settings_at, sha256
from tests.warehouse.factory import execute, make_work_db
from tests.warehouse.test_isolation import kill_publish_at
from unigrid.settings import Settings
from unigrid.stages import RunContext
from warehouse import master_diff
from warehouse.connection import connect_attached
from warehouse.master_diff import apply_diff, declared_signature, schema_signature, stamp_column
from warehouse.publish import PublishCheckFailed, choose_mode, publish, publish_stage
from warehouse.queries import latest_run, open_master
from warehouse.schema import ALL_TABLES, MASTER_TABLES, quote, table

RUN1, RUN2 = "20261120", "20261121"
PERSONS = 40
MOVE_EVERY_RUN = ("master.person_event", "master.person_doc")
"""Tables whose rows change every run even when no record did: the factory writes new events
for each run, and those events are in the documents of the persons they name."""


def _grow(s: Settings) -> None:
    make_work_db(s.work_db, persons=PERSONS + 4, run_id=RUN2, replace=False)


def _shrink(s: Settings) -> None:
    make_work_db(s.work_db, persons=PERSONS - 2, run_id=RUN2)


def _same(s: Settings) -> None:
    make_work_db(s.work_db, persons=PERSONS, run_id=RUN2, replace=False)


def _fields(s: Settings) -> None:
    _same(s)
    execute(s.work_db,
            "UPDATE link.person SET name = name || '改', death_date = DATE '2026-11-01' "
            "WHERE person_id IN ('P000000000003', 'P000000000007')",
            "UPDATE std.record SET room = '909', house_key = house_key || '-9' "
            "WHERE source_key IN ('HJ0000000005', 'CJ00000011')",
            "UPDATE link.person_link SET score = 0.5 WHERE source_key = 'HJ0000000002'")


def _merge(s: Settings) -> None:
    _same(s)  # person 2 absorbs person 5 (another household): its links move, its record goes
    execute(s.work_db,
            "UPDATE link.person_link SET person_id = 'P000000000002' "
            "WHERE person_id = 'P000000000005'",
            "DELETE FROM link.person WHERE person_id = 'P000000000005'",
            "INSERT INTO link.person_event SELECT '20261121-merge', '20261121', 'merge', "
            "'P000000000002', 'P000000000005', '{}', TIMESTAMPTZ '2026-11-21 02:00:00+00'")


CASES: dict[str, tuple[Callable[[Settings], None], bool]] = {
    # case: (day-2 change, whether the master tables' content changes)
    "nothing changed": (_same, False),
    "persons added": (_grow, True),
    "persons removed": (_shrink, True),
    "fields, houses and scores changed": (_fields, True),
    "two persons merged": (_merge, True),
}


def _rows(s: Settings, t: str) -> list[tuple]:
    spec = table(t)
    cols = ", ".join(quote(c) for c in spec.column_names())
    if t == "audit.run":  # timings and messages differ between the two ways of publishing
        cols = "run_id, status, persons, person_links, houses, previous_run_id"
    with open_master(s) as con:
        return con.execute(f"SELECT {cols} FROM {t} ORDER BY ALL").fetchall()


def _two_homes(tmp_path: Path) -> tuple[Settings, Settings]:
    inc = settings_at(tmp_path / "inc")
    (tmp_path / "inc").mkdir()
    make_work_db(inc.work_db, persons=PERSONS, run_id=RUN1)
    first = publish(inc, RUN1)
    assert first.mode == "full" and first.mode_reason == "no previous master"
    shutil.copytree(tmp_path / "inc", tmp_path / "full")
    return inc, settings_at(tmp_path / "full")


@pytest.mark.parametrize("case", list(CASES))
def test_incremental_day2_equals_full_rebuild_in_every_table(tmp_path: Path, case: str) -> None:
    change, changes_master = CASES[case]
    inc, full = _two_homes(tmp_path)
    day1 = {t.qualified: _rows(inc, t.qualified) for t in ALL_TABLES}
    for s in (inc, full):
        change(s)
    a = publish(inc, RUN2)
    b = publish(full, RUN2, full_rebuild=True)
    assert (a.mode, b.mode) == ("incremental", "full")
    assert b.mode_reason == "full rebuild asked"
    assert a.counts == b.counts
    for t in ALL_TABLES:
        assert _rows(inc, t.qualified) == _rows(full, t.qualified), f"{case}: {t.qualified}"
    # the stamp is the publishing run on every row, as a full rebuild writes it
    with open_master(inc) as con:
        for t in MASTER_TABLES:
            if stamp_column(t):
                assert con.execute(f"SELECT DISTINCT run_id FROM {t.qualified}").fetchall() \
                    in ([(RUN2,)], [])
        assert latest_run(con)["run_id"] == RUN2
    # counts report what moved, and they are exactly the row difference
    moved = sum(a.changes[t.qualified]["inserted"] + a.changes[t.qualified]["deleted"]
                for t in MASTER_TABLES if t.qualified not in MOVE_EVERY_RUN)
    assert (moved > 0) == changes_master, a.changes
    for t in MASTER_TABLES:
        q = t.qualified
        assert len(day1[q]) + a.changes[q]["inserted"] - a.changes[q]["deleted"] \
            == a.counts[q], q
    assert set(a.changes) == {t.qualified for t in ALL_TABLES}
    # documents are re-rendered for the touched persons only, not for everyone
    docs = a.changes["master.person_doc"]
    assert docs["inserted"] < a.counts["master.person_doc"], docs
    assert a.steps.keys() >= {"copy", "build", "checks", "apply", "checkpoint", "swap"}
    assert b.steps.keys() >= {"build", "checks", "keys", "checkpoint", "swap"}


def test_incremental_master_keeps_keys_and_indexes(tmp_path: Path) -> None:
    inc, _ = _two_homes(tmp_path)
    _merge(inc)
    publish(inc, RUN2)
    con = connect_attached(inc.master_db, "mdb", read_only=True)
    try:
        assert schema_signature(con, "mdb") == declared_signature()
    finally:
        con.close()
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(inc.master_db, copy)
    con = connect_attached(copy, "mdb")
    try:  # the primary key is still enforced after the diff
        pid = con.execute("SELECT min(person_id) FROM master.person").fetchone()[0]
        with pytest.raises(duckdb.ConstraintException):
            con.execute("INSERT INTO master.person (person_id, run_id) VALUES (?, 'x')", [pid])
    finally:
        con.close()


@pytest.mark.parametrize("prepare, expected", [
    ("none", ("incremental", "previous master has today's schema")),
    ("full_rebuild", ("full", "full rebuild asked")),
    ("no_master", ("full", "no previous master")),
    ("stale_wal", ("full", "previous master has a stale WAL")),
    ("extra_column", ("full", "schema of the previous master differs from the declarations")),
    ("missing_index", ("full", "schema of the previous master differs from the declarations")),
    ("extra_table", ("full", "schema of the previous master differs from the declarations")),
])
def test_mode_choice(settings: Settings, prepare: str, expected: tuple[str, str]) -> None:
    publish(settings, RUN1)
    live = settings.master_db
    if prepare == "no_master":
        live.unlink()
    elif prepare == "stale_wal":
        Path(str(live) + ".wal").write_bytes(b"")
    elif prepare in ("extra_column", "missing_index", "extra_table"):
        sql = {"extra_column": "ALTER TABLE master.house ADD COLUMN note VARCHAR",
               "missing_index": "DROP INDEX master.person_name_py",
               "extra_table": "CREATE TABLE master.retired_table (x INTEGER)"}[prepare]
        con = connect_attached(live, "mdb")
        con.execute(sql)
        con.execute("CHECKPOINT")
        con.close()
    assert choose_mode(live, full_rebuild=prepare == "full_rebuild") == expected
    if prepare != "stale_wal":  # the publish itself takes the chosen way and succeeds
        res = publish(settings, RUN2, full_rebuild=prepare == "full_rebuild")
        assert (res.mode, res.mode_reason) == expected


def test_failed_audit_in_incremental_publish_keeps_master_byte_identical(
        settings: Settings) -> None:
    publish(settings, RUN1)
    before = sha256(settings.master_db)
    _same(settings)
    execute(settings.work_db, "DELETE FROM link.person_link WHERE source_key = 'HJ0000000004'")
    with pytest.raises(PublishCheckFailed) as err:
        publish(settings, RUN2)
    assert [c.check for c in err.value.failed] == ["staged_records_linked"]
    assert sha256(settings.master_db) == before
    assert not list(settings.home.glob("master.duckdb.building-*"))
    failure = list(settings.home.glob("master.duckdb.failed-*.json"))
    assert len(failure) == 1 and '"incremental: publish of run' in failure[0].read_text()


def test_error_while_applying_the_diff_keeps_master_byte_identical(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    publish(settings, RUN1)
    before = sha256(settings.master_db)
    _grow(settings)
    real, calls = master_diff.apply_diff, []

    def breaking(con, target, source, t, run_id, keep=False):  # the third table fails
        calls.append(t.qualified)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(con, target, source, t, run_id, keep)

    monkeypatch.setattr(master_diff, "apply_diff", breaking)
    with pytest.raises(OSError, match="disk full"):
        publish(settings, RUN2)
    assert len(calls) == 3
    assert sha256(settings.master_db) == before
    assert not list(settings.home.glob("master.duckdb.building-*"))
    monkeypatch.setattr(master_diff, "apply_diff", real)
    assert publish(settings, RUN2).mode == "incremental"


@pytest.mark.slow
@pytest.mark.parametrize("stop_at", ["built", "applied", "before_swap"])
def test_killed_incremental_publish_keeps_master_and_next_run_succeeds(
        settings: Settings, stop_at: str) -> None:
    publish(settings, RUN1)
    before = sha256(settings.master_db)
    _grow(settings)
    kill_publish_at(settings, stop_at, RUN2)
    assert sha256(settings.master_db) == before
    with open_master(settings) as con:
        assert latest_run(con)["run_id"] == RUN1
    res = publish(settings, RUN2)
    assert res.mode == "incremental" and f"master.duckdb.building-{RUN2}" in res.removed_leftovers
    with open_master(settings) as con:
        assert con.execute("SELECT count(*) FROM master.person").fetchone()[0] == PERSONS + 4


def test_publish_stage_counts_mode_and_changes(settings: Settings) -> None:
    ctx = RunContext.for_date(__import__("datetime").date(2026, 11, 20))
    first = publish_stage(settings, ctx)
    assert first.counts["mode"] == "full"
    assert first.counts["inserted"]["master.person"] == PERSONS
    assert first.counts["deleted"] == {}
    _grow(settings)
    ctx2 = replace(ctx, run_id=RUN2)
    second = publish_stage(settings, ctx2)
    assert second.status == "ok" and second.counts["mode"] == "incremental"
    assert second.counts["inserted"]["master.person"] >= 4
    assert "incremental" in second.messages[0]
    third = publish_stage(settings, replace(ctx2, full_rebuild=True))
    assert third.counts["mode"] == "full"
    assert third.counts["deleted"]["master.person"] == PERSONS + 4


@pytest.mark.parametrize("column, stamped", [
    ("master.person", True), ("master.person_event", False), ("audit.run", False),
    ("audit.source_status", False), ("master.house", True),
])
def test_only_the_shared_run_stamp_is_a_stamp(column: str, stamped: bool) -> None:
    assert (stamp_column(table(column)) == "run_id") == stamped


def test_apply_diff_table(tmp_path: Path) -> None:
    con = duckdb.connect()
    spec = table("master.grid")
    con.execute("ATTACH ':memory:' AS a")
    con.execute("ATTACH ':memory:' AS b")
    from warehouse.schema import duckdb_ddl
    for db in ("a", "b"):
        con.execute(f"USE {db}")
        con.execute(duckdb_ddl((spec,)))
    con.execute("USE a")
    rows = {"g1": "c1", "g2": "c2", "g3": None}
    for g, c in rows.items():
        con.execute("INSERT INTO a.master.grid (grid_code, community, run_id) VALUES (?, ?, 'r1')",
                    [g, c])
    new = {"g1": "c1", "g2": "c2x", "g4": None}  # g2 changed, g3 vanished, g4 new, g1 same
    for g, c in new.items():
        con.execute("INSERT INTO b.master.grid (grid_code, community, run_id) VALUES (?, ?, 'r2')",
                    [g, c])
    assert apply_diff(con, "a", "b", spec, "r2") == {"inserted": 2, "deleted": 2}
    got = con.execute("SELECT grid_code, community, run_id FROM a.master.grid ORDER BY 1").fetchall()
    assert got == [("g1", "c1", "r2"), ("g2", "c2x", "r2"), ("g4", None, "r2")]
    assert apply_diff(con, "a", "b", spec, "r2") == {"inserted": 0, "deleted": 0}
