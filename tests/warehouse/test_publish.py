"""Write-audit-publish: a clean publish, every audit check failing on purpose, history kept."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.warehouse.conftest import sha256
from tests.warehouse.factory import execute, make_work_db
from unigrid.settings import Settings
from warehouse.schema import ALL_TABLES
from warehouse.publish import (DEFAULT_BOUNDS, PublishBounds, PublishCheckFailed, amend_master,
                               bounds_check, publish, publish_stage)
from warehouse.queries import latest_run, open_master, person_links, resolve_person_id, row_counts

RUN1, RUN2, RUN3 = "20261120", "20261121", "20261122"


def _leftovers(s: Settings) -> list[str]:
    return sorted(p.name for p in s.master_db.parent.glob("master.duckdb.building-*"))


def test_first_publish_builds_every_table_and_records_the_run(settings: Settings) -> None:
    res = publish(settings, RUN1)
    assert all(c.ok for c in res.checks)
    assert res.counts["master.person"] == 40
    assert res.counts["master.person_link"] == 40 + 27 + 8  # registry + grid + pension
    with open_master(settings) as con:
        counts = row_counts(con)
        run = latest_run(con)
        assert counts["master.person"] == 40 and counts["audit.run"] == 1
        assert run["run_id"] == RUN1 and run["status"] == "published"
        assert run["failed_checks"] == [] and run["persons"] == 40
        # every staged record exactly once
        assert con.execute("SELECT count(*), count(DISTINCT (source, source_key)) "
                           "FROM master.person_link").fetchone() == (75, 75)
        # primary keys are in place once the checks passed
        pk = con.execute("SELECT count(*) FROM duckdb_constraints() WHERE database_name = "
                         "current_database() AND constraint_type = 'PRIMARY KEY'").fetchone()[0]
        assert pk == len(ALL_TABLES)
        assert person_links(con, "P000000000001") == [
            ("grid_collection", "CJ00000000"), ("hrss_pension_ledger", "900000000000"),
            ("ps_household_registry", "HJ0000000000")]
    assert _leftovers(settings) == []


def test_second_publish_keeps_history_and_compares_with_previous(settings: Settings) -> None:
    publish(settings, RUN1)
    make_work_db(settings.work_db, persons=41, run_id=RUN2, replace=False)
    res = publish(settings, RUN2)
    assert res.previous_run_id == RUN1
    bounds = next(c for c in res.checks if c.check == "row_counts_within_bounds")
    assert bounds.ok and "master.person 40->41" in bounds.detail
    with open_master(settings) as con:
        runs = con.execute("SELECT run_id, status FROM audit.run ORDER BY started_at").fetchall()
        assert runs == [(RUN1, "published"), (RUN2, "published")]
        # events of the earlier run survive, this run's events come from the work DB
        ev = dict(con.execute("SELECT run_id, count(*) FROM master.person_event "
                              "GROUP BY run_id").fetchall())
        assert ev == {RUN1: 4, RUN2: 5}


BREAKS = [
    ("links_unique", ["INSERT INTO link.person_link SELECT * FROM link.person_link "
                      "WHERE source_key = 'HJ0000000003'"]),
    ("links_to_persons", ["UPDATE link.person_link SET person_id = 'PFFFFFFFFFFFF' "
                          "WHERE source_key = 'HJ0000000003'"]),
    ("person_id_unique", ["INSERT INTO link.person SELECT * FROM link.person "
                          "WHERE person_id = 'P000000000004'"]),
    ("staged_records_linked", ["DELETE FROM link.person_link WHERE source_key = 'CJ00000004'"]),
    ("links_to_records", ["INSERT INTO link.person_link VALUES ('grid_collection', 'CJ99999999', "
                          "'P000000000001', 'model', 1.0)"]),
    ("persons_have_links", ["INSERT INTO link.person (person_id) VALUES ('P0000000000FF')"]),
    ("keys_unique", ["INSERT INTO link.person_event SELECT * FROM link.person_event LIMIT 1"]),
]


@pytest.mark.parametrize("check,sql", BREAKS, ids=[b[0] for b in BREAKS])
def test_failed_check_keeps_previous_master_byte_identical(settings: Settings, check: str,
                                                           sql: list[str]) -> None:
    publish(settings, RUN1)
    before = sha256(settings.master_db)
    make_work_db(settings.work_db, persons=40, run_id=RUN2, replace=False)
    execute(settings.work_db, *sql)
    with pytest.raises(PublishCheckFailed) as err:
        publish(settings, RUN2)
    assert check in {c.check for c in err.value.failed}
    assert check in str(err.value) and "previous master" in str(err.value)
    assert sha256(settings.master_db) == before
    assert _leftovers(settings) == []
    with open_master(settings) as con:
        assert latest_run(con)["run_id"] == RUN1
    failures = list(settings.master_db.parent.glob("master.duckdb.failed-*.json"))
    assert len(failures) == 1
    recorded = json.loads(failures[0].read_text(encoding="utf-8"))
    assert recorded["status"] == "failed" and check in recorded["failed_checks"]
    # the next good run publishes and folds the failure into audit.run
    make_work_db(settings.work_db, persons=40, run_id=RUN3, replace=False)
    publish(settings, RUN3)
    with open_master(settings) as con:
        rows = con.execute("SELECT run_id, status, failed_checks FROM audit.run "
                           "ORDER BY started_at").fetchall()
    assert [(r[0], r[1]) for r in rows] == [(RUN1, "published"), (RUN2, "failed"),
                                            (RUN3, "published")]
    assert check in rows[1][2]
    assert not list(settings.master_db.parent.glob("master.duckdb.failed-*.json"))


@pytest.mark.parametrize("persons,ok_forced", [(30, True), (60, True)])
def test_row_counts_out_of_bounds_fail_unless_forced(settings: Settings, persons: int,
                                                     ok_forced: bool) -> None:
    publish(settings, RUN1)
    before = sha256(settings.master_db)
    make_work_db(settings.work_db, persons=persons, run_id=RUN2)
    with pytest.raises(PublishCheckFailed) as err:
        publish(settings, RUN2)
    failed = {c.check: c.detail for c in err.value.failed}
    assert list(failed) == ["row_counts_within_bounds"]
    assert "master.person 40 -> " + str(persons) in failed["row_counts_within_bounds"]
    assert sha256(settings.master_db) == before
    res = publish(settings, RUN2, force=True)
    assert res.forced and res.counts["master.person"] == persons
    b = next(c for c in res.checks if c.check == "row_counts_within_bounds")
    assert b.ok and b.detail.startswith("waived by force")


def test_every_failed_check_is_listed_at_once(settings: Settings) -> None:
    publish(settings, RUN1)
    make_work_db(settings.work_db, persons=30, run_id=RUN2)
    execute(settings.work_db, BREAKS[0][1][0], BREAKS[2][1][0])
    with pytest.raises(PublishCheckFailed) as err:
        publish(settings, RUN2)
    names = {c.check for c in err.value.failed}
    assert {"links_unique", "person_id_unique", "row_counts_within_bounds"} <= names


def test_missing_work_tables_fail_and_keep_master(settings: Settings) -> None:
    publish(settings, RUN1)
    before = sha256(settings.master_db)
    execute(settings.work_db, "DROP TABLE link.person")
    with pytest.raises(LookupError, match="link.person"):
        publish(settings, RUN2)
    assert sha256(settings.master_db) == before and _leftovers(settings) == []


def test_id_like_keys_are_masked_in_check_details(settings: Settings) -> None:
    execute(settings.work_db, "INSERT INTO link.person_link VALUES ('grid_collection', "
            "'420502199001011234', 'P000000000001', 'model', 1.0)")
    with pytest.raises(PublishCheckFailed) as err:
        publish(settings, RUN1)
    assert "420502199001011234" not in str(err.value)
    assert "420502********1234" in str(err.value)
    assert not settings.master_db.exists()


def test_findings_and_auditor_statuses_survive_publishes(settings: Settings) -> None:
    publish(settings, RUN1)

    def add_finding(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("""INSERT INTO audit.finding (finding_id, rule, person_id, status,
                       dismissed_reason, status_by, first_seen_run, last_seen_run, evidence)
                       VALUES ('deceased_pensioner:P000000000032', 'deceased_pensioner',
                               'P000000000032', 'dismissed', '已核实', 'auditor01', ?, ?,
                               '{"months": 3}')""", [RUN1, RUN1])
        con.execute("INSERT INTO audit.access_log VALUES (1, now(), 'auditor01', 'auditor', "
                    "'view_person', 'P000000000032', '养老金核查')")

    amend_master(settings, add_finding, "findings")
    make_work_db(settings.work_db, persons=40, run_id=RUN2, replace=False)
    publish(settings, RUN2)
    with open_master(settings) as con:
        f = con.execute("SELECT status, dismissed_reason, status_by, evidence->>'months' "
                        "FROM audit.finding").fetchall()
        assert f == [("dismissed", "已核实", "auditor01", "3")]
        assert con.execute("SELECT count(*) FROM audit.access_log").fetchone()[0] == 1


def test_decisions_are_snapshotted(settings: Settings) -> None:
    from matching.decisions import RecordRef, record_decision
    record_decision(settings.decisions_db, RecordRef("ps_household_registry", "HJ0000000001"),
                    RecordRef("grid_collection", "CJ00000001"), "same", "steward07", "同一人")
    publish(settings, RUN1)
    with open_master(settings) as con:
        rows = con.execute('SELECT verdict, "user", reason FROM audit.decision').fetchall()
    assert rows == [("same", "steward07", "同一人")]


def test_merges_are_followed(settings: Settings) -> None:
    execute(settings.work_db, "INSERT INTO link.person_event VALUES ('m1', '20261120', 'merge', "
            "'P000000000001', 'P0000000000AA', '{}', TIMESTAMPTZ '2026-11-20 03:00:00+00')")
    publish(settings, RUN1)
    with open_master(settings) as con:
        assert resolve_person_id(con, "P0000000000AA") == "P000000000001"
        assert resolve_person_id(con, "P000000000002") == "P000000000002"
        assert resolve_person_id(con, "P0000000000BB") is None


def test_leftover_building_files_are_removed_by_next_run(settings: Settings) -> None:
    stale = settings.master_db.with_name("master.duckdb.building-20261101")
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"half a database")
    Path(str(stale) + ".wal").write_bytes(b"x")
    res = publish(settings, RUN1)
    assert set(res.removed_leftovers) == {stale.name, stale.name + ".wal"}
    assert _leftovers(settings) == []


@pytest.mark.parametrize("prev,new,ok", [
    (100, 95, True), (100, 94, False), (100, 120, True), (100, 121, False), (0, 5, True),
    (None, 5, True), (1000, 0, False)])
def test_bounds_table(prev: int | None, new: int, ok: bool) -> None:
    previous = {} if prev is None else {"master.person": prev}
    r = bounds_check({"master.person": new}, previous, PublishBounds(tables=("master.person",)))
    assert r.ok is ok and r.check == "row_counts_within_bounds"
    forced = bounds_check({"master.person": new}, previous,
                          PublishBounds(tables=("master.person",)), force=True)
    assert forced.ok


@given(prev=st.integers(1, 10**7), new=st.integers(0, 10**7))
def test_bounds_property(prev: int, new: int) -> None:
    r = bounds_check({"master.person": new}, {"master.person": prev}, DEFAULT_BOUNDS)
    inside = prev * 0.95 <= new <= prev * 1.2
    assert r.ok is inside


def test_publish_stage_results(settings: Settings) -> None:
    from unigrid.stages import RunContext
    from datetime import date
    ctx = RunContext.for_date(date(2026, 11, 20))
    r = publish_stage(settings, ctx)
    assert r.status == "ok" and r.counts["persons"] == 40 and r.counts["links"] == 75
    make_work_db(settings.work_db, persons=20, run_id="20261121")
    r2 = publish_stage(settings, RunContext.for_date(date(2026, 11, 21)))
    assert r2.status == "failed"
    assert any("row_counts_within_bounds" in m for m in r2.messages)


def test_event_history_table_is_preferred(settings: Settings) -> None:
    execute(settings.work_db,
            "CREATE TABLE link.person_event_history AS SELECT * FROM link.person_event",
            "INSERT INTO link.person_event_history VALUES ('20261101-0000001', '20261101', "
            "'create', 'P000000000001', NULL, '{\"records\": 1}', "
            "TIMESTAMPTZ '2026-11-01 02:00:00+00')")
    publish(settings, RUN1)
    with open_master(settings) as con:
        ev = dict(con.execute("SELECT run_id, count(*) FROM master.person_event "
                              "GROUP BY run_id").fetchall())
        detail = con.execute("SELECT detail->>'records' FROM master.person_event "
                             "WHERE run_id = '20261101'").fetchone()[0]
    assert ev == {"20261101": 1, RUN1: 4} and detail == "1"


def test_missing_work_db_is_a_lookup_error(tmp_path: Path) -> None:
    from tests.warehouse.conftest import settings_at
    s = settings_at(tmp_path)
    with pytest.raises(LookupError, match="no work database"):
        publish(s, RUN1)
    assert not s.master_db.exists() and _leftovers(s) == []


def test_work_db_open_for_writing_in_process_is_named(settings: Settings) -> None:
    held = duckdb.connect(str(settings.work_db))
    try:
        with pytest.raises(RuntimeError, match="cannot attach the work database"):
            publish(settings, RUN1)
    finally:
        held.close()
    assert publish(settings, RUN1).counts["master.person"] == 40
