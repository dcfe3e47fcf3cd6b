"""Table and property tests of matching.standardise.addresses."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.standardise.addresses import COLUMNS, cn_number, divisions, parse_addresses

relaxed = settings(deadline=None, max_examples=60)  # shared 2-core machine: no per-example deadline

KEY = "420502|桃花苑|3|2|501"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        # the five styles of docs (shared geography) and DOMAIN.md
        ("西陵区桃花苑3-2-501", KEY),
        ("宜昌市西陵区桃花苑小区3号楼2单元501室", KEY),
        ("宜昌市西陵区桃花苑小区3号楼2单元501", KEY),
        ("湖北省宜昌市西陵区西陵街道桃花岭社区桃花苑小区3栋2单元501", KEY),
        ("湖北省宜昌市西陵区…桃花苑小区3号楼2单元501室".replace("…", ""), KEY),
        ("西陵区东湖路18号桃花苑3幢2单元501号", KEY),
        ("西陵 桃花苑 3-2-501", KEY),
        ("桃花苑3栋2单元501", "?|桃花苑|3|2|501"),
        ("桃花苑小区3号楼二单元501", "?|桃花苑|3|2|501"),
        ("桃花苑小区三号楼二单元501室", "?|桃花苑|3|2|501"),
        # variants
        ("  西陵区　桃花苑 3 - 2 - 501 ", KEY), ("西陵区桃花苑03-02-0501", KEY), ("西陵区桃花苑3栋501", "420502|桃花苑|3||501"),
        ("湖北宜昌西陵区桃花苑3-2-501", KEY), ("宜昌西陵区桃花苑3-2-501", KEY),
        ("夷陵区夷陵广场十二栋3单元1203", "420506|夷陵广场|12|3|1203"),
        ("夷陵区小溪塔街道夷陵广场二十栋六单元1502", "420506|夷陵广场|20|6|1502"),
        ("猇亭区云集街道金色家园小区20幢6单元1502室", "420505|金色家园|20|6|1502"),
        ("伍家岗区 锦绣华庭 5-3-802", "420503|锦绣华庭|5|3|802"),
        ("点军区滨江苑7号楼1单元601", "420504|滨江苑|7|1|601"),
        ("宜都市陆城街道金色家园2-1-101", "420581|金色家园|2|1|101"),
        ("湖北省武汉市武昌区水果湖街道东亭社区东亭小区5栋1单元302", "420106|东亭|5|1|302"),
        ("阳光新区3栋501", "?|阳光新区|3||501"),
        # a compound may be a 新村; community names may carry a number
        ("伍家岗区枫叶新村1-1-101", "420503|枫叶新村|1|1|101"), ("枫叶新村1栋1单元101", "?|枫叶新村|1|1|101"),
        ("湖北省宜昌市夷陵区龙泉镇乐天坝1社区金桥新村小区6栋2单元201", "420506|金桥新村|6|2|201"),
        ("夷陵区龙泉镇双堰村3组", None),
        ("西陵区东湖路18号", None), ("西陵区", None), ("", None), (None, None),
    ],
)
def test_house_key_table(raw: str | None, key: str | None) -> None:
    got = parse_addresses(pd.Series([raw], dtype=object))["house_key"].iloc[0]
    assert (pd.isna(got) and key is None) or got == key


def test_all_columns_of_the_fullest_style() -> None:
    row = parse_addresses(pd.Series(["湖北省宜昌市西陵区西陵街道桃花岭社区桃花苑小区3栋2单元501"])).iloc[0]
    expected = {
        "province": "湖北省", "city": "宜昌市", "district": "西陵区", "district_code": "420502",
        "street": "西陵街道", "community": "桃花岭社区", "compound": "桃花苑", "building": "3",
        "unit": "2", "room": "501", "house_key": KEY,
    }
    assert {k: row[k] for k in expected} == expected
    assert pd.isna(row["road"]) and pd.isna(row["road_no"])


def test_road_door_number_and_defaults() -> None:
    out = parse_addresses(pd.Series(["西陵区东湖路18号桃花苑3幢2单元501号", "桃花苑3-2-501"], index=[4, 9]))
    assert list(out.index) == [4, 9] and list(out.columns) == list(COLUMNS)
    assert out.loc[4, "road"] == "东湖路" and out.loc[4, "road_no"] == "18"
    assert out.loc[9, "city"] == "宜昌市" and out.loc[9, "province"] == "湖北省"
    assert pd.isna(out.loc[9, "district"]) and pd.isna(out.loc[9, "district_code"])
    assert (out.dtypes == "string").all()


def test_default_city_changes_district_lookup() -> None:
    out = parse_addresses(pd.Series(["西陵区桃花苑3-2-501"]), default_city="武汉市")
    assert out["district_code"].iloc[0] == "420502"  # a name unique nationwide is still found


@pytest.mark.parametrize(("text", "n"), [("一", 1), ("十", 10), ("十二", 12), ("二十", 20), ("二十三", 23),
                                         ("两", 2), ("九十九", 99), ("一二", 12)])
def test_cn_number(text: str, n: int) -> None:
    assert cn_number(text) == n


def test_divisions_table_has_the_five_districts() -> None:
    d = divisions().set_index("name")["code"]
    assert {d["西陵区"], d["伍家岗区"], d["点军区"], d["猇亭区"], d["夷陵区"]} == {
        "420502", "420503", "420504", "420505", "420506"}


# ---- property: the five styles of one house give one key ------------------------------------------

DISTRICTS = {"西陵区": "420502", "伍家岗区": "420503", "点军区": "420504", "猇亭区": "420505", "夷陵区": "420506"}
COMPOUNDS = ["桃花苑", "东山花园", "滨江苑", "金色家园", "阳光城", "锦绣华庭", "夷陵广场", "东山滨江苑", "阳光金色家园"]
STREETS = ["西陵街道", "学院街道", "云集街道", "小溪塔街道"]
COMMUNITIES = ["桃花岭社区", "东山社区", "滨江社区"]
ROADS = ["东湖路", "夷陵大道", "解放街"]
CN = "零一二三四五六七八九十"


def cn(n: int) -> str:
    return CN[n] if n <= 10 else ("十" + CN[n % 10] if n < 20 else CN[n // 10] + "十" + (CN[n % 10] if n % 10 else ""))


@relaxed
@given(st.sampled_from(list(DISTRICTS)), st.sampled_from(COMPOUNDS), st.integers(1, 30), st.integers(1, 6),
       st.integers(1, 33), st.integers(1, 4), st.sampled_from(STREETS), st.sampled_from(COMMUNITIES),
       st.sampled_from(ROADS), st.integers(1, 300))
def test_five_styles_of_one_house_give_one_key(district: str, compound: str, b: int, u: int, floor: int,
                                               door: int, street: str, community: str, road: str,
                                               no: int) -> None:
    room = f"{floor}{door:02d}"
    short = district[:-1]
    styles = [
        f"{district}{compound}{b}-{u}-{room}",
        f"宜昌市{district}{compound}小区{b}号楼{u}单元{room}室",
        f"湖北省宜昌市{district}{street}{community}{compound}小区{b}栋{u}单元{room}",
        f"{district}{road}{no}号{compound}{b}幢{u}单元{room}号",
        f"{short} {compound} {b}-{u}-{room}",
    ]
    districtless = [f"{compound}{b}栋{u}单元{room}", f"{compound}小区{cn(b)}号楼{cn(u)}单元{room}"]
    out = parse_addresses(pd.Series(styles + districtless))
    key = f"{DISTRICTS[district]}|{compound}|{b}|{u}|{room}"
    assert out["house_key"].tolist() == [key] * 5 + ["?" + key[6:]] * 2
    assert (out["room"] == room).all() and (out["unit"] == str(u)).all()


@relaxed
@given(st.lists(st.text(max_size=30), max_size=8))
def test_parser_is_total(values: list[str]) -> None:
    out = parse_addresses(pd.Series(values, dtype=object))
    assert len(out) == len(values) and list(out.columns) == list(COLUMNS)
    keys = out["house_key"].dropna()
    assert keys.str.count(r"\|").eq(4).all()


def test_every_style_the_generator_writes_gives_the_true_house_key() -> None:
    """Contract with the synthetic city (unigrid.synthetic.geo): its eight address variants of
    each house parse to the house's true key (district-less variants to ``?|...``)."""
    import numpy as np

    from unigrid.synthetic.geo import address_table, build_grids, build_houses

    rng = np.random.default_rng(5)
    houses = build_houses(build_grids(40_000, rng, (0.35, 0.3, 0.1, 0.1, 0.15), 3000, 300), 6000, rng)
    table = address_table(houses)
    truth = houses["house_key"]
    no_district = "?|" + truth.str.split("|", n=1).str[1]
    for col in range(table.shape[1]):
        got = parse_addresses(pd.Series(table[:, col]))["house_key"].astype(object)
        expected = no_district if col in (4, 6) else truth  # 桃花苑3栋2单元501, 桃花苑小区三号楼二单元501
        assert (got.to_numpy() == expected.to_numpy()).all(), table[~(got.to_numpy() == expected.to_numpy()), col][:3]
