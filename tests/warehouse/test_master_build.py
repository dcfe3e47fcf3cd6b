"""The master tables built from a work database: content, missing inputs, address fallbacks."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from tests.warehouse.factory import execute, make_work_db
from unigrid.settings import Settings
from warehouse.master_build import ADDRESS_PARTS, house_id_sql, select_or_null
from warehouse.publish import publish
from warehouse.queries import open_master

RUN = "20261120"


def _q(settings: Settings, sql: str) -> list[tuple]:
    with open_master(settings) as con:
        return con.execute(sql).fetchall()


def test_household_members_head_and_size(settings: Settings) -> None:
    publish(settings, RUN)
    rows = _q(settings, "SELECT household_no, count(*), max(n_members), max(head_person_id), "
                        "count(*) FILTER (WHERE is_head) FROM master.household "
                        "GROUP BY household_no ORDER BY household_no")
    assert len(rows) == 10
    assert all(r[1] == 4 and r[4] == 1 for r in rows)
    assert rows[0][3] == "P000000000001"  # person 0 is the head of the first household


def test_cancelled_registration_leaves_household_and_registered_house(settings: Settings) -> None:
    make_work_db(settings.work_db, persons=60, run_id=RUN)  # person 49 is cancelled (died)
    publish(settings, RUN)
    h = _q(settings, "SELECT n_members, is_active, cancel_reason FROM master.household "
                     "WHERE person_id = 'P000000000032'")
    assert h == [(3, False, "死亡")]
    ph = _q(settings, "SELECT is_current, valid_to FROM master.person_house "
                      "WHERE person_id = 'P000000000032' AND relation = 'registered'")
    assert ph == [(False, date(2024, 3, 10))]
    assert _q(settings, "SELECT is_deceased FROM master.person "
                        "WHERE person_id = 'P000000000032'") == [(True,)]


def test_person_house_registered_and_actual(settings: Settings) -> None:
    publish(settings, RUN)
    rel = dict(_q(settings, "SELECT relation, count(*) FROM master.person_house GROUP BY 1"))
    assert rel == {"registered": 40, "actual": 27}
    moved = _q(settings, "SELECT r.house_id <> a.house_id FROM master.person_house r JOIN "
                         "master.person_house a USING (person_id) WHERE r.relation = "
                         "'registered' AND a.relation = 'actual' AND person_id = 'P000000000001'")
    assert moved == [(True,)]  # person 0 (i % 7 == 0) lives elsewhere
    dated = _q(settings, "SELECT count(*) FROM master.person_house WHERE valid_from IS NULL")
    assert dated == [(0,)]


def test_houses_and_grid_hierarchy(settings: Settings) -> None:
    publish(settings, RUN)
    houses = _q(settings, "SELECT count(*), count(DISTINCT house_key), sum(n_records) "
                          "FROM master.house")
    assert houses[0][0] == houses[0][1] and houses[0][2] == 75
    grid = _q(settings, "SELECT grid_code, district, street, community, n_residents "
                        "FROM master.grid")
    assert grid == [("420502000000", grid[0][1], "学院街道0", "桃花社区0", 27)]
    # every person's house_id points at a house
    orphan = _q(settings, "SELECT count(*) FROM master.person p ANTI JOIN master.house h "
                          "USING (house_id) WHERE p.house_id IS NOT NULL")
    assert orphan == [(0,)]


def test_missing_input_columns_become_null(settings: Settings) -> None:
    execute(settings.work_db,
            "ALTER TABLE std.record DROP COLUMN street",
            "ALTER TABLE std.record DROP COLUMN community",
            "ALTER TABLE link.person DROP COLUMN household_no",
            "ALTER TABLE link.person_link DROP COLUMN score")
    publish(settings, RUN)
    assert _q(settings, "SELECT count(household_no) FROM master.person") == [(0,)]
    assert _q(settings, "SELECT count(score) FROM master.person_link") == [(0,)]
    assert _q(settings, "SELECT count(street) FROM master.house") == [(0,)]


def test_address_fallback_names_street_and_community(settings: Settings) -> None:
    execute(settings.work_db,
            "ALTER TABLE std.record DROP COLUMN street",
            "ALTER TABLE std.record DROP COLUMN community",
            "ALTER TABLE std.record DROP COLUMN district",
            "ALTER TABLE std.record ADD COLUMN address VARCHAR",
            "UPDATE std.record SET address = '湖北省宜昌市西陵区学院街道桃花社区桃花苑小区1栋' "
            "WHERE source = 'ps_household_registry'")
    publish(settings, RUN)
    rows = _q(settings, "SELECT DISTINCT district, street, community FROM master.house "
                        "WHERE district_code = '420502'")
    assert rows == [("西陵区", "学院街道", "桃花社区")]


@pytest.mark.parametrize("address,part,expected", [
    ("湖北省宜昌市点军区点军街道合益路社区滨江名都小区1栋1单元602", "district", "点军区"),
    ("湖北省宜昌市点军区点军街道合益路社区滨江名都小区1栋1单元602", "street", "点军街道"),
    ("湖北省宜昌市点军区点军街道合益路社区滨江名都小区1栋1单元602", "community", "合益路社区"),
    ("湖北省宜昌市猇亭区古老背街道长江村社区望洲公馆1-2-701", "community", "长江村社区"),
    ("宜昌市夷陵区小溪塔镇樵湖村天元国际2号楼", "community", "樵湖村"),
    ("宜昌市夷陵区小溪塔镇樵湖村天元国际2号楼", "street", "小溪塔镇"),
    ("西陵区春江苑2-1-202", "district", None),
    ("春江苑小区1号楼2单元1001室", "community", None),
])
def test_address_part_patterns(address: str, part: str, expected: str | None) -> None:
    con = duckdb.connect()
    expr = "coalesce(" + ", ".join(f"nullif(regexp_extract(?, '{rx}', 1), '')"
                                   for rx in ADDRESS_PARTS[part]) + ")"
    got = con.execute(f"SELECT {expr}", [address] * len(ADDRESS_PARTS[part])).fetchone()[0]
    assert got == expected


def test_house_id_is_stable_and_null_safe() -> None:
    con = duckdb.connect()
    a, b, n = con.execute(f"SELECT {house_id_sql('x')}, {house_id_sql('y')}, "
                          f"{house_id_sql('z')} FROM (SELECT 'k|1' x, 'k|1' y, NULL z)"
                          ).fetchone()
    assert a == b and a.startswith("H") and len(a) == 17 and n is None


def test_select_or_null() -> None:
    sql = select_or_null({"a": "VARCHAR"}, {"a": "INTEGER", "b": "DATE"}, "t")
    assert sql == 'TRY_CAST(t."a" AS INTEGER) AS "a", NULL::DATE AS "b"'
