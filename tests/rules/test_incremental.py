"""The check stage brought forward from the day's deltas equals a full check (issue #8).

Two work databases live through the same day 1 and the same day-2 changes; one checks day 2
incrementally (``"check".rec`` brought forward from ``std.delta``, ``link.delta_person`` and
the staged rows of the run), the other with ``full=True``. Their record tables and findings
must be equal, also after re-running the day; and the incremental path must refuse (rebuild in
full) when the deltas do not start from the run the record table was built for.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from quality.rules.runner import run_checks
from tests.rules.factory import CONTRACTS, build_work_db, pair, rec

R1, R2 = "20261120", "20261121"
D1, D2 = date(2026, 11, 20), date(2026, 11, 21)
KEY = b"test-key"
ID_A = "420502199001011234"

DAY1 = [
    rec("dcert", "D1", "P1", death_date="2025-03-10"),
    rec("pension", "S1", "P1", pension_last_paid_month="2026-10-01", pension_monthly_amount=3000),
    rec("reg", "H1", "P1", registry_status="正常", id18=ID_A, name_pyf="zhangwei",
        household_no="100"),
    rec("grid", "G1", "P9", id18=ID_A, name_pyf="lisi", collected_at="2026-01-01 10:00:00"),
    rec("reg", "H5", "P6", registry_status="正常", household_no="101"),
    rec("reg", "H6", "P6", registry_status="正常", household_no="102"),
    rec("pension", "S6", "P6", pension_last_paid_month="2026-10-01", pension_monthly_amount=2000),
    rec("wanted", "W1", "P5", case_no="A1"),
    rec("grid", "G5", "P5", collected_at="2026-05-01 10:00:00", address="桃花苑"),
    rec("bcert", "B1", "P7", birth_date="2026-01-01", family_household_no="103"),
    rec("subsidy", "DB1|1", "P1", subsidy_case_no="DB1", relation_to_head="户主",
        subsidy_last_paid_month="2026-10-01", subsidy_monthly_amount=500),
    # two registrations the matcher kept apart: a possible 重户 (pair finding P11+P12)
    rec("reg", "H11", "P11", name_pyf="wangwu", birth_date="1980-01-01", sex="男",
        registry_status="正常", household_no="201"),
    rec("reg", "H12", "P12", name_pyf="wangwu", birth_date="1980-01-01", sex="男",
        registry_status="正常", household_no="202"),
    pair("H11", "H12"),
    rec("reg", "H13", "P13", name_pyf="zhaoliu", birth_date="1980-01-01", sex="男",
        registry_status="正常", household_no="203"),
]

# (case, SQL run on day 2, std.delta rows (source, key, change), link.delta_person rows)
CASES = [
    ("a pension paid one more month",
     ["UPDATE staged.pension SET pension_last_paid_month = DATE '2026-11-01', _run_id = '{run}', "
      "_row_hash = 'h2' WHERE _source_key = 'S1'"],
     [("pension", "S1", "changed")], [("P1", "changed")]),
    ("a new death certificate of a living pensioner with two registrations",
     ["INSERT INTO staged.dcert (_run_id, _source, _source_key, _row_hash, death_date) "
      "VALUES ('{run}', 'dcert', 'D6', 'h-d6', DATE '2026-01-02')",
      "INSERT INTO std.record (source, source_key, id_status, name_unknown) "
      "VALUES ('dcert', 'D6', 'missing', FALSE)",
      "INSERT INTO link.person_link VALUES ('dcert', 'D6', 'P6', 'model', 1.0)"],
     [("dcert", "D6", "new")], [("P6", "changed")]),
    ("a record moved to another person (no staged change)",
     ["UPDATE link.person_link SET person_id = 'P1' WHERE source_key = 'G1'"],
     [], [("P1", "changed"), ("P9", "removed")]),
    ("a registration removed",
     ["DELETE FROM staged.reg WHERE _source_key = 'H6'",
      "DELETE FROM std.record WHERE source_key = 'H6'",
      "DELETE FROM link.person_link WHERE source_key = 'H6'"],
     [("reg", "H6", "removed")], [("P6", "changed")]),
    ("the child registered in the parents' household (another person)",
     ["INSERT INTO staged.reg (_run_id, _source, _source_key, _row_hash, registry_status, "
      "household_no, birth_date) VALUES ('{run}', 'reg', 'H7', 'h-h7', '正常', '103', "
      "DATE '2026-01-01')",
      "INSERT INTO std.record (source, source_key, id_status, name_unknown) "
      "VALUES ('reg', 'H7', 'missing', FALSE)",
      "INSERT INTO link.person_link VALUES ('reg', 'H7', 'P8', 'model', 1.0)"],
     [("reg", "H7", "new")], [("P8", "new")]),
    ("the head's subsidy paid one more month",
     ["UPDATE staged.subsidy SET subsidy_last_paid_month = DATE '2026-11-01', _run_id = '{run}',"
      " _row_hash = 'h2' WHERE _source_key = 'DB1|1'"],
     [("subsidy", "DB1|1", "changed")], [("P1", "changed")]),
    ("a wanted person's only other record removed",
     ["DELETE FROM staged.grid WHERE _source_key = 'G5'",
      "DELETE FROM std.record WHERE source_key = 'G5'",
      "DELETE FROM link.person_link WHERE source_key = 'G5'"],
     [("grid", "G5", "removed")], [("P5", "changed")]),
    ("one side of a possible 重户 changes its row (the other person untouched)",
     ["UPDATE staged.reg SET _row_hash = 'h2', _run_id = '{run}' WHERE _source_key = 'H12'"],
     [("reg", "H12", "changed")], [("P12", "changed")]),
    ("one side of a possible 重户 moves into the other's household",
     ["UPDATE staged.reg SET household_no = '201', _run_id = '{run}', _row_hash = 'h2' "
      "WHERE _source_key = 'H12'"],
     [("reg", "H12", "changed")], [("P12", "changed")]),
    ("a registration corrected to a third look-alike, newly paired with an untouched one",
     ["UPDATE staged.reg SET _row_hash = 'h2', _run_id = '{run}' WHERE _source_key = 'H13'",
      "UPDATE std.record SET name_pyf = 'wangwu' WHERE source_key = 'H13'",
      "INSERT INTO link.pair VALUES ('reg', 'H11', 'reg', 'H13', 'review', 3.0)"],
     [("reg", "H13", "changed")], [("P13", "changed")]),
    ("a family household recomputed by standardisation only",
     ["UPDATE std.record SET family_household_no = '100' WHERE source_key = 'B1'"],
     [("bcert", "B1", "changed")], [("P7", "changed")]),
]


def _bookkeeping(con: duckdb.DuckDBPyConnection, run_id: str, std_delta: list[tuple],
                 delta_person: list[tuple], full: bool = False) -> None:
    """The tables standardise and match leave for the run: deltas, metas, link history."""
    con.execute("CREATE OR REPLACE TABLE std.delta (record_id BIGINT, source VARCHAR, "
                "source_key VARCHAR, change VARCHAR)")
    for s, k, c in std_delta:
        con.execute("INSERT INTO std.delta VALUES (NULL, ?, ?, ?)", [s, k, c])
    con.execute('CREATE OR REPLACE TABLE std.delta_meta AS SELECT ? AS run_id, ? AS "full"',
                [run_id, full])
    con.execute('CREATE OR REPLACE TABLE link.delta_meta AS SELECT ? AS run_id, ? AS "full"',
                [run_id, full])
    con.execute("CREATE OR REPLACE TABLE link.delta_person (person_id VARCHAR, change VARCHAR)")
    for p, c in delta_person:
        con.execute("INSERT INTO link.delta_person VALUES (?, ?)", [p, c])
    con.execute("CREATE TABLE IF NOT EXISTS link.person_link_history AS SELECT ''::VARCHAR AS "
                "run_id, * FROM link.person_link WHERE FALSE")
    con.execute("DELETE FROM link.person_link_history WHERE run_id = ?", [run_id])
    con.execute("INSERT INTO link.person_link_history SELECT ?, * FROM link.person_link",
                [run_id])


def _day1() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    build_work_db(con, DAY1, run_id=R1)
    _bookkeeping(con, R1, [], [], full=True)
    run_checks(con, R1, D1, CONTRACTS, KEY)
    return con


def _day2(con: duckdb.DuckDBPyConnection, sql: list[str], std_delta: list[tuple],
          delta_person: list[tuple]) -> None:
    for q in sql:
        con.execute(q.format(run=R2))
    _bookkeeping(con, R2, std_delta, delta_person)


def _state(con: duckdb.DuckDBPyConnection) -> dict[str, list]:
    return {t: con.execute(f'SELECT * FROM "check".{t} ORDER BY ALL').fetchall()
            for t in ("rec", "finding", "finding_seen")}


@pytest.mark.parametrize("case,sql,std_delta,delta_person", CASES, ids=[c[0] for c in CASES])
def test_incremental_check_equals_full(case: str, sql: list[str], std_delta: list[tuple],
                                       delta_person: list[tuple]) -> None:
    inc, full = _day1(), _day1()
    for con in (inc, full):
        _day2(con, sql, std_delta, delta_person)
    out = run_checks(inc, R2, D2, CONTRACTS, KEY)
    run_checks(full, R2, D2, CONTRACTS, KEY, full=True)
    assert out["inputs_full"] is False and out["records_reselected"] < len(DAY1)
    assert out["rules_incremental"] is True
    expected = _state(full)
    assert _state(inc) == expected
    again = run_checks(inc, R2, D2, CONTRACTS, KEY)  # a re-run of the day, still incremental
    assert again["inputs_full"] is False and again["rules_incremental"] is True
    assert _state(inc) == expected


def test_all_changes_in_one_night_equal_full() -> None:
    inc, full = _day1(), _day1()
    for con in (inc, full):
        _day2(con, [q for c in CASES for q in c[1]], [d for c in CASES for d in c[2]],
              [p for c in CASES for p in c[3]])
    assert run_checks(inc, R2, D2, CONTRACTS, KEY)["inputs_full"] is False
    run_checks(full, R2, D2, CONTRACTS, KEY, full=True)
    assert _state(inc) == _state(full)
    assert len(_state(full)["finding"]) >= 6


@pytest.mark.parametrize("why,tweak", [
    ("standardise ran in full", "UPDATE std.delta_meta SET \"full\" = TRUE"),
    ("match ran in full", "UPDATE link.delta_meta SET \"full\" = TRUE"),
    ("the deltas are of another run", "UPDATE std.delta_meta SET run_id = '20261122'"),
    ("a night was matched but not checked",
     "INSERT INTO link.person_link_history SELECT '20261120b', * FROM link.person_link"),
    ("staged rows of a night that was not checked",
     "UPDATE staged.grid SET _run_id = '20261120b' WHERE _source_key = 'G5'"),
    ("the record table was built from other contracts",
     "UPDATE \"check\".rec_state SET fingerprint = 'other'"),
])
def test_incremental_check_refuses_deltas_it_cannot_trust(why: str, tweak: str) -> None:
    con = _day1()
    _day2(con, CASES[0][1], CASES[0][2], CASES[0][3])
    con.execute(tweak)
    assert run_checks(con, R2, D2, CONTRACTS, KEY)["inputs_full"] is True
