"""Population views and the voter roll over a tiny published master."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from warehouse.connection import connect_attached
from warehouse.queries import open_master
from warehouse.schema import ALL_TABLES, duckdb_ddl
from warehouse.views import (BANDS, age_pyramid, export_views, export_voter_roll, population,
                             voter_roll)

# person, sex, birth, death, current house, [(registration house, active)]
PERSONS = [
    ("P1", "男", "2000-01-01", None, "H1", [("H1", True)]),
    ("P2", "女", "2008-12-31", None, "H1", [("H1", True)]),      # 18 on 2026-12-31
    ("P3", "男", "1950-05-05", "2025-01-01", "H1", [("H1", True)]),  # dead
    ("P4", "女", "1980-02-02", None, "H3", [("H3", True)]),      # registered in 伍家岗区
    ("P5", "男", "1970-03-03", None, "H2", [("H1", True), ("H2", True)]),  # registered twice
    ("P6", "女", "1990-04-04", None, "H2", [("H2", False)]),     # registration cancelled
    ("P7", "男", "2026-12-01", None, "H2", []),                  # born after 2026-11-20
    ("P8", "女", "1920-06-06", None, None, [("H1", True)]),      # 106, no current house
]
HOUSES = [("H1", "西陵区", "G1"), ("H2", "西陵区", "G2"), ("H3", "伍家岗区", None)]
GRIDS = [("G1", "桃花社区", "学院街道", "西陵区"), ("G2", "夜明珠社区", "夜明珠街道", "西陵区")]


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("v") / "master.duckdb"
    con = connect_attached(path)
    try:
        con.execute(duckdb_ddl(ALL_TABLES, primary_keys=False))
        for h, d, g in HOUSES:
            con.execute("INSERT INTO master.house (house_id, house_key, district, street, "
                        "community, grid_code, standard_address, run_id) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, 'r')",
                        [h, h, d, "某街道" if g is None else None, None, g, f"{d}{h}号"])
        for g, c, s, d in GRIDS:
            con.execute("INSERT INTO master.grid (grid_code, community, street, district, run_id)"
                        " VALUES (?, ?, ?, ?, 'r')", [g, c, s, d])
        for i, (p, sex, birth, death, house, regs) in enumerate(PERSONS):
            con.execute("INSERT INTO master.person (person_id, name, sex, birth_date, death_date,"
                        " is_deceased, house_id, id_number, run_id) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, 'r')",
                        [p, f"张{i}明", sex, birth, death, death is not None, house,
                         f"42050219900101{i:03d}X"])
            for j, (h, active) in enumerate(regs):
                con.execute("INSERT INTO master.household (household_no, person_id, source, "
                            "source_key, is_active, house_id, run_id) VALUES "
                            "(?, ?, 'reg', ?, ?, ?, 'r')", [f"HH{i}", p, f"{p}-{j}", active, h])
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return path


ON = date(2026, 11, 20)


@pytest.mark.parametrize("level,expected", [
    ("district", {("伍家岗区",): 1, ("西陵区",): 4, ("未知",): 1}),
    ("grid", {("西陵区", "学院街道", "桃花社区", "G1"): 2,
              ("西陵区", "夜明珠街道", "夜明珠社区", "G2"): 2,
              ("伍家岗区", "某街道", "未知", "未知"): 1, ("未知", "未知", "未知", "未知"): 1}),
])
def test_population_per_area(master: Path, level: str, expected: dict) -> None:
    with open_master(master) as con:
        df = population(con, level, ON)  # type: ignore[arg-type]
    keys = [c for c in df.columns if c not in ("population", "male", "female", "sex_ratio")]
    got = {tuple(r[k] for k in keys): r["population"] for _, r in df.iterrows()}
    assert got == expected


def test_sex_ratio(master: Path) -> None:
    with open_master(master) as con:
        df = population(con, "district", ON).set_index("district")
    assert df.loc["西陵区", ["male", "female"]].tolist() == [2, 2]  # P1 P5 / P2 P6
    assert df.loc["西陵区", "sex_ratio"] == pytest.approx(100.0)
    assert df.loc["伍家岗区", "sex_ratio"] == 0.0


def test_age_pyramid_bands(master: Path) -> None:
    with open_master(master) as con:
        df = age_pyramid(con, "district", ON)
    assert len(df) == 3 * len(BANDS)
    x = df[df["district"] == "西陵区"].set_index("band")
    assert x.loc["25-29", "male"] == 1 and x.loc["15-19", "female"] == 1  # P1 26, P2 17
    assert x.loc["55-59", "male"] == 1 and x.loc["35-39", "female"] == 1  # P5 56, P6 36
    assert df[df["district"] == "未知"].set_index("band").loc["100+", "female"] == 1
    assert int(df["male"].sum() + df["female"].sum()) == 6  # alive, born by then


@pytest.mark.parametrize("election,district,expected", [
    (date(2026, 12, 31), "西陵区", ["P1", "P2", "P5", "P8"]),
    (date(2026, 12, 30), "西陵区", ["P1", "P5", "P8"]),   # P2 turns 18 the next day
    (date(2026, 12, 31), "伍家岗区", ["P4"]),
    (date(2026, 12, 31), "点军区", []),
])
def test_voter_roll(master: Path, election: date, district: str, expected: list) -> None:
    with open_master(master) as con:
        roll = voter_roll(con, election, district)
    assert sorted(roll["person_id"]) == expected
    assert roll["seq"].tolist() == list(range(1, len(expected) + 1))


def test_voter_roll_xlsx(master: Path, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    with open_master(master) as con:
        res = export_voter_roll(con, date(2026, 12, 31), "西陵区", tmp_path / "roll.xlsx")
    assert res.rows == 4
    wb = load_workbook(res.path, read_only=True)
    assert wb.sheetnames == ["西陵区选民名单"]
    rows = list(wb.active.iter_rows(values_only=True))
    assert rows[0] == ("序号", "姓名", "性别", "出生日期", "年龄", "公民身份号码", "户籍地址", "街道",
                       "社区", "人员编号")
    assert len(rows) == 5 and rows[1][0] == 1
    assert all(r[5].startswith("420502") and "****" in r[5] for r in rows[1:])  # masked


def test_views_xlsx(master: Path, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    with open_master(master) as con:
        path = export_views(con, ON, tmp_path / "views.xlsx")
    wb = load_workbook(path, read_only=True)
    assert wb.sheetnames == ["区县人口", "区县年龄结构", "街道人口", "街道年龄结构", "社区人口",
                             "社区年龄结构", "网格人口", "网格年龄结构"]
    assert next(wb["区县人口"].iter_rows(values_only=True))[:2] == ("区县", "人口")


def test_fast_xlsx_escapes_and_keeps_types(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    from warehouse.report.fastxlsx import write_table_xlsx

    df = pd.DataFrame({"文本": ["a<b&c", None, "x\x01y"], "数": [1, None, 2.5]})
    write_table_xlsx(tmp_path / "t.xlsx", df, "表")
    rows = list(load_workbook(tmp_path / "t.xlsx").active.iter_rows(values_only=True))
    assert rows == [("文本", "数"), ("a<b&c", 1), (None, None), ("xy", 2.5)]
    a = (tmp_path / "t.xlsx").read_bytes()
    write_table_xlsx(tmp_path / "u.xlsx", df, "表")
    assert (tmp_path / "u.xlsx").read_bytes() == a


def test_sex_ratio_without_females_is_undefined(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    con = connect_attached(path)
    con.execute(duckdb_ddl(ALL_TABLES, primary_keys=False))
    con.execute("INSERT INTO master.person (person_id, sex, birth_date, run_id) "
                "VALUES ('P1', '男', DATE '1990-01-01', 'r')")
    con.close()
    with open_master(path) as c:
        df = population(c, "district", ON)
    assert df["male"].tolist() == [1] and pd.isna(df["sex_ratio"].iloc[0])
