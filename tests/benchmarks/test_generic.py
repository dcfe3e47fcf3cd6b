"""The baselines' generic cleaning: tables of cases and properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.generic import (RECORD_COLUMNS, assignments, clean_id, clean_phone,
                                clean_source, clean_text, connected_components, map_codes,
                                parse_dates, source_keys)
from connectors.contract import Contract


def _one(fn, value, *args):
    out = fn(pd.Series([value], dtype="object"), *args).iloc[0]
    return None if pd.isna(out) else out


@pytest.mark.parametrize("value,expected", [
    ("  张三 ", "张三"),
    ("张  三", "张 三"),            # whitespace collapsed, not removed: no Chinese knowledge
    ("wang  wei", "WANG WEI"),
    ("", None),
    ("   ", None),
    (None, None),
    ("張三", "張三"),                # no traditional -> simplified
    ("阿依·买买提", "阿依·买买提"),     # middle dots kept as they are
])
def test_clean_text(value, expected):
    assert _one(clean_text, value) == expected


@pytest.mark.parametrize("value,expected", [
    ("420502198001011234", "420502198001011234"),
    (" 42050219800101123x ", "42050219800101123X"),
    ("420502800101123", "420502800101123"),          # 15 digits stay 15 digits
    ("４２０５０２１９８００１０１１２３４", "４２０５０２１９８００１０１１２３４"),  # full width kept
    ("4205 0219 8001 0112 34", "420502198001011234"),
    ("", None),
    (None, None),
])
def test_clean_id_keeps_the_text(value, expected):
    assert _one(clean_id, value) == expected


@pytest.mark.parametrize("value,expected", [
    ("138-1234-5678", "13812345678"), ("(0717) 6123456", "07176123456"), ("无", None),
    (None, None),
])
def test_clean_phone(value, expected):
    assert _one(clean_phone, value) == expected


@pytest.mark.parametrize("value,codes,expected", [
    ("1", {"1": "男", "2": "女"}, "男"),
    ("2", {"1": "男", "2": "女"}, "女"),
    ("m", {"M": "男", "F": "女"}, "男"),
    ("男", {"1": "男"}, "男"),
    ("9", {"1": "男"}, "9"),
    ("女", {}, "女"),
    ("", {"1": "男"}, None),
])
def test_map_codes(value, codes, expected):
    assert _one(map_codes, value, codes) == expected


@pytest.mark.parametrize("value,formats,expected", [
    ("2023-05-03", ["%Y-%m-%d"], "2023-05-03"),
    ("2023/5/3", ["%Y-%m-%d", "%Y/%m/%d"], "2023-05-03"),
    ("2023年5月3日", ["%Y年%m月%d日"], "2023-05-03"),
    ("20230503", [], "2023-05-03"),                # default formats
    ("2023-02-30", ["%Y-%m-%d"], None),              # impossible date
    ("May 3 2023", ["%Y-%m-%d"], None),
    (None, ["%Y-%m-%d"], None),
])
def test_parse_dates(value, formats, expected):
    assert _one(parse_dates, value, formats) == expected


def test_parse_dates_first_format_wins_per_row():
    s = pd.Series(["2023-05-03", "03/05/2023", "20230503"])
    out = parse_dates(s, ["%Y-%m-%d", "%d/%m/%Y", "%Y%m%d"])
    assert out.tolist() == ["2023-05-03", "2023-05-03", "2023-05-03"]


@pytest.mark.parametrize("rows,key,expected", [
    ([{"a": " K1 "}], ["a"], ["K1"]),
    ([{"a": "D1", "b": "2"}], ["a", "b"], ["D1|2"]),
    ([{"a": "D1", "b": ""}], ["a", "b"], [None]),
    ([{"a": "", "b": "3"}], ["a", "b"], [None]),
])
def test_source_keys(rows, key, expected):
    out = source_keys(pd.DataFrame(rows, dtype="object"), key)
    assert [None if pd.isna(v) else v for v in out] == expected


def _contract() -> Contract:
    return Contract.model_validate({
        "name": "toy_registry", "system": "s", "department": "d", "department_zh": "部门",
        "kind": "household_registry", "location": {"path": "toy.csv"},
        "format": {"type": "csv"}, "key": ["编号", "序号"],
        "columns": [
            {"column": "姓名", "field": "name"},
            {"column": "性别", "field": "sex", "codes": {"1": "男", "2": "女"}},
            {"column": "证号", "field": "id_number"},
            {"column": "生日", "field": "birth_date", "formats": ["%Y%m%d"]},
            {"column": "电话", "field": "phone"},
        ]})


def test_clean_source_maps_every_identity_field():
    raw = pd.DataFrame({"编号": ["A", "B"], "序号": ["1", "2"], "姓名": [" 李 四", "王五"],
                        "性别": ["1", "2"], "证号": ["42050219800101123x", ""],
                        "生日": ["19800101", "bad"], "电话": ["138 0000 0000", None]},
                       dtype="object")
    out = clean_source(raw, _contract())
    assert list(out.columns) == list(RECORD_COLUMNS)
    assert out["source"].tolist() == ["toy_registry"] * 2
    assert out["source_key"].tolist() == ["A|1", "B|2"]
    assert out["name"].tolist() == ["李 四", "王五"]
    assert out["sex"].tolist() == ["男", "女"]
    assert out["id_number"].iloc[0] == "42050219800101123X" and pd.isna(out["id_number"].iloc[1])
    assert out["birth_date"].iloc[0] == "1980-01-01" and pd.isna(out["birth_date"].iloc[1])
    assert out["phone"].iloc[0] == "13800000000"
    assert out["address"].isna().all()  # not in the contract: null, not missing


@pytest.mark.parametrize("n,edges,expected_groups", [
    (3, [], [[0], [1], [2]]),
    (4, [(0, 1), (2, 3)], [[0, 1], [2, 3]]),
    (5, [(0, 1), (1, 2), (3, 3)], [[0, 1, 2], [3], [4]]),
    (4, [(3, 0), (0, 3), (1, 2)], [[0, 3], [1, 2]]),
])
def test_connected_components(n, edges, expected_groups):
    left = np.array([e[0] for e in edges], dtype=np.int64)
    right = np.array([e[1] for e in edges], dtype=np.int64)
    labels = connected_components(n, left, right)
    groups = pd.Series(range(n)).groupby(labels).apply(list).tolist()
    assert sorted(groups) == sorted(expected_groups)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=60))))
def test_connected_components_properties(case):
    n, edges = case
    left = np.array([e[0] for e in edges], dtype=np.int64)
    right = np.array([e[1] for e in edges], dtype=np.int64)
    labels = connected_components(n, left, right)
    assert len(labels) == n
    assert all(labels[a] == labels[b] for a, b in edges)       # linked nodes share a cluster
    assert len(set(labels)) >= n - len({(min(e), max(e)) for e in edges if e[0] != e[1]})


def test_assignments_shape():
    recs = pd.DataFrame({"source": ["a", "b", "b"], "source_key": ["1", "2", "3"]})
    out = assignments(recs, np.array([0, 0, 5]), "S")
    assert out.columns.tolist() == ["source", "source_key", "person_id"]
    assert out["person_id"].tolist() == ["S0", "S0", "S5"]
