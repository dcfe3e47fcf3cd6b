"""Table and property tests of matching.standardise.names."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.standardise.names import (
    fold_pinyin,
    name_flags,
    name_pinyin,
    normalise_name,
    pinyin_fuzzy,
    split_surname,
)

relaxed = settings(deadline=None, max_examples=60)  # shared 2-core machine: no per-example deadline


def one(fn, value):  # noqa: ANN001, ANN201 - tiny test helper
    return fn(pd.Series([value], dtype=object)).iloc[0]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("張偉", "张伟"), ("王 芳", "王芳"), (" 王\u3000芳 ", "王芳"), ("ｗａｎｇ　Ｆａｎｇ", "WANGFANG"),
        ("买买提·艾力", "买买提·艾力"), ("买买提・艾力", "买买提·艾力"), ("买买提•艾力", "买买提·艾力"),
        ("买买提‧艾力", "买买提·艾力"), ("买买提⋅艾力", "买买提·艾力"), ("买买提.艾力", "买买提·艾力"),
        ("买买提．艾力", "买买提·艾力"), ("买买提-艾力", "买买提·艾力"), ("买买提 · 艾力", "买买提·艾力"),
        ("买买提··艾力", "买买提·艾力"), ("·艾力", "艾力"), ("於明", "於明"), ("於明華", "於明华"),
        ("區志強", "区志强"), ("王?芳", "王?芳"), ("王？芳", "王?芳"), ("", None), ("  ", None), (None, None),
    ],
)
def test_normalise_name_table(raw: str | None, expected: str | None) -> None:
    got = one(normalise_name, raw)
    assert (pd.isna(got) and expected is None) or got == expected


def test_normalise_name_keeps_index_and_dtype() -> None:
    s = pd.Series(["張偉", None, "张伟"], index=[7, 8, 9])
    got = normalise_name(s)
    assert list(got.index) == [7, 8, 9] and got.dtype == "string"
    assert got[7] == got[9] == "张伟" and pd.isna(got[8])


@pytest.mark.parametrize(
    ("raw", "unknown", "traditional", "dot"),
    [
        ("王?芳", True, False, False), ("王？芳", True, False, False), ("王\ufffd芳", True, False, False),
        ("王\ue000芳", True, False, False), ("王\uf8ff芳", True, False, False), ("張偉", False, True, False),
        ("张伟", False, False, False), ("於明", False, False, False), ("买买提•艾力", False, False, True),
        (None, False, False, False),
    ],
)
def test_name_flags(raw: str | None, unknown: bool, traditional: bool, dot: bool) -> None:
    row = name_flags(pd.Series([raw], dtype=object)).iloc[0]
    assert (bool(row["has_unknown"]), bool(row["traditional"]), bool(row["minority_dot"])) == (
        unknown, traditional, dot)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("单雄信", "shan xiong xin"), ("曾国藩", "zeng guo fan"), ("解缙", "xie jin"), ("仇英", "qiu ying"),
        ("区志强", "ou zhi qiang"), ("朴树", "piao shu"), ("查良镛", "zha liang yong"),
        ("覃明", "qin ming"), ("翟伟", "zhai wei"), ("盖伟", "ge wei"), ("缪丽", "miao li"),
        ("尉迟恭", "yu chi gong"), ("万俟卨", "mo qi xie"), ("长孙无忌", "zhang sun wu ji"),
        ("欧阳修", "ou yang xiu"), ("司马光", "si ma guang"), ("诸葛亮", "zhu ge liang"),
        ("上官婉儿", "shang guan wan er"), ("令狐冲", "ling hu chong"), ("東方紅", "dong fang hong"),
        ("單雄信", "shan xiong xin"), ("张伟", "zhang wei"), ("買買提·艾力", "mai mai ti ai li"),
        ("买买提艾力", "mai mai ti ai li"), ("王?芳", "wang ? fang"), ("王\ue000芳", "wang ? fang"),
        ("於明", "yu ming"), ("于明", "yu ming"), ("绿", "lv"), ("单", "shan"), ("尉迟", "yu chi"),
        ("曾", "zeng"), ("区", "ou"), ("王3", "wang 3"), (None, None),
    ],
)
def test_name_pinyin_table(raw: str | None, expected: str | None) -> None:
    got = one(name_pinyin, raw)
    assert (pd.isna(got) and expected is None) or got == expected


def test_homophone_typos_share_pinyin() -> None:
    got = name_pinyin(pd.Series(["李丽", "李莉", "李立", "李力"]))
    assert got.nunique() == 1


@pytest.mark.parametrize(
    ("raw", "surname", "given"),
    [
        ("欧阳修", "欧阳", "修"), ("欧阳", "欧", "阳"), ("司马相如", "司马", "相如"), ("张伟", "张", "伟"),
        ("張偉", "张", "伟"), ("王", "王", None), ("买买提·艾力", None, "买买提·艾力"),
        ("JOHN", None, "JOHN"), (None, None, None),
    ],
)
def test_split_surname(raw: str | None, surname: str | None, given: str | None) -> None:
    row = split_surname(pd.Series([raw], dtype=object)).iloc[0]
    for got, want in ((row["surname"], surname), (row["given"], given)):
        assert (pd.isna(got) and want is None) or got == want


@pytest.mark.parametrize(
    ("pinyin", "folded"),
    [
        ("zhang sheng", "zan sen"), ("chen", "cen"), ("shi", "si"), ("liu na", "liu la"), ("nv", "lv"),
        ("huang fang", "fan fan"), ("hui", "fei"), ("hu", "fu"), ("hun", "fen"), ("huo", "fo"),
        ("hua", "fa"), ("huai", "fai"), ("huan", "fan"), ("he", "he"), ("xing", "xin"), ("wang ? fang", "wan ? fan"),
    ],
)
def test_fold_pinyin(pinyin: str, folded: str) -> None:
    assert one(fold_pinyin, pinyin) == folded
    assert one(pinyin_fuzzy, pinyin) == folded  # pinyin input is folded directly


def test_pinyin_fuzzy_accepts_name_pinyin_with_nulls() -> None:
    py = name_pinyin(pd.Series(["张生", None, "王3"]))
    got = pinyin_fuzzy(py)
    assert got[0] == "zan sen" and pd.isna(got[1]) and got[2] == "wan 3"


def test_pinyin_fuzzy_from_names() -> None:
    got = pinyin_fuzzy(pd.Series(["刘娜", "刘拉", "黄芳", "方凡", "张生", None]))
    assert got[0] == got[1] and got[2] == got[3] and got[4] == "zan sen" and pd.isna(got[5])


# ---- properties -------------------------------------------------------------------------------

HAN = "张王李赵刘陈杨黄周吴伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"
TRAD_SIMP = [("張", "张"), ("偉", "伟"), ("劉", "刘"), ("陳", "陈"), ("楊", "杨"), ("黃", "黄"),
             ("趙", "赵"), ("強", "强"), ("麗", "丽"), ("軍", "军"), ("傑", "杰"), ("濤", "涛"),
             ("霞", "霞"), ("區", "区"), ("鍾", "钟"), ("華", "华")]
ASCII = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
DOTS = ["\u00b7", "\u30fb", "\u2022", "\u2027", "\u22c5", ".", "\uff0e", "-", "\uff65"]

names = st.text(alphabet=HAN + ASCII + " ", min_size=1, max_size=6)


def to_full_width(x: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else ("\u3000" if c == " " else c) for c in x)


@relaxed
@given(st.lists(names, min_size=1, max_size=8))
def test_full_and_half_width_normalise_equal(values: list[str]) -> None:
    half = normalise_name(pd.Series(values))
    full = normalise_name(pd.Series([to_full_width(v) for v in values]))
    pd.testing.assert_series_equal(half, full)


@relaxed
@given(st.lists(st.tuples(st.sampled_from(TRAD_SIMP), st.sampled_from(TRAD_SIMP), st.booleans()),
                min_size=1, max_size=3))
def test_traditional_and_simplified_normalise_equal(pairs: list) -> None:
    trad = "".join(a[0] + b[0] for a, b, _ in pairs)
    simp = "".join(a[1] + b[1] for a, b, _ in pairs)
    got = normalise_name(pd.Series([trad, simp]))
    assert got[0] == got[1] == simp
    pys = name_pinyin(pd.Series([trad, simp]))
    assert pys[0] == pys[1]


@relaxed
@given(st.text(alphabet=HAN, min_size=1, max_size=4), st.text(alphabet=HAN, min_size=1, max_size=4),
       st.sampled_from(DOTS))
def test_middle_dot_variants_normalise_equal(a: str, b: str, dot: str) -> None:
    got = normalise_name(pd.Series([a + dot + b, a + "\u00b7" + b]))
    assert got[0] == got[1] == a + "\u00b7" + b
    py = name_pinyin(pd.Series([a + dot + b, a + "\u00b7" + b]))
    assert py[0] == py[1] and "\u00b7" not in py[0] and len(py[0].split()) == len(a + b)
    assert name_flags(pd.Series([a + dot + b]))["minority_dot"].iloc[0]


@relaxed
@given(st.lists(st.text(max_size=8), max_size=10))
def test_normalise_name_is_idempotent_and_total(values: list[str]) -> None:
    once = normalise_name(pd.Series(values, dtype=object))
    pd.testing.assert_series_equal(once, normalise_name(once))
    assert len(name_pinyin(pd.Series(values, dtype=object))) == len(values)
