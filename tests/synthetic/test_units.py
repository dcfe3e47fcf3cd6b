"""Fast unit tests of the generator's building blocks: IDs, names, addresses, dates, errors."""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypinyin import lazy_pinyin
from stdnum.cn import ric

from unigrid.synthetic import geo, idnum, names, noise
from unigrid.synthetic.config import DEFAULT_CONFIG, GeneratorConfig, SourceErrors
from unigrid.synthetic.sources import month_add, pension_month, subsidy_month
from unigrid.synthetic.truth import normalise_id


@pytest.mark.parametrize("first17, check", [
    ("11010519491231002", "X"),   # GB 11643 example
    ("44052418800101001", "4"),
])
def test_check_character(first17: str, check: str) -> None:
    d = idnum.digits_of([first17], 17) - 48
    assert idnum.check_chars(d)[0] == check


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_check_character_agrees_with_stdnum(first17: str) -> None:
    d = idnum.digits_of([first17], 17) - 48
    assert idnum.check_chars(d)[0] == ric.calc_check_digit(first17 + "0")


def test_make_ids_valid_unique_and_consistent() -> None:
    rng = np.random.default_rng(1)
    n = 3000
    region = np.where(rng.random(n) < 0.5, "420502", "420503")
    birth = (np.datetime64("1960-01-01") + rng.integers(0, 200, n).astype("timedelta64[D]"))
    male = rng.random(n) < 0.5
    ids = pd.Series(idnum.make_ids(region, birth, male))
    assert ids.is_unique
    assert idnum.is_valid18(ids).all()
    assert (ids.str[:6] == region).all()
    assert (ids.str[6:14] == pd.to_datetime(birth).strftime("%Y%m%d")).all()
    assert ((ids.str[16].astype(int) % 2 == 1) == male).all()
    assert all(ric.calc_check_digit(x) == x[17] for x in ids.iloc[:50])


def test_legacy15_upgrades_back() -> None:
    ids = pd.Series(idnum.make_ids(np.array(["420502"]), np.array(["1956-01-01"], dtype="datetime64[D]"),
                                   np.array([True])))
    legacy = idnum.to_legacy15(ids)
    assert legacy.str.len().iat[0] == 15
    assert normalise_id(legacy).iat[0] == ids.iat[0]


@pytest.mark.parametrize("raw, expected", [
    ("４２０５０２１９９００１０１１２３６", "420502199001011236"),
    ("42050219900101123x", "42050219900101123X"),
    (" 420502199001011236", "420502199001011236"),
    ("4.20502E+17", None),
    (4.20502199001011e17, None),
    ("", None),
])
def test_normalise_id(raw, expected) -> None:
    assert normalise_id(pd.Series([raw], dtype=object)).iat[0] == expected


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_mistyped_and_transposed_ids_differ_in_digits_only(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 200
    true = pd.Series(idnum.make_ids(np.full(n, "420502"),
                                    np.datetime64("1980-01-01") + rng.integers(0, 9000, n).astype("timedelta64[D]"),
                                    rng.random(n) < 0.5))
    err = SourceErrors(id_mistyped=0.3, id_transposed=0.3)
    out = noise.noisy_ids(true, rng, err)
    assert out.str.len().eq(18).all()
    diff = np.array([sum(a != b for a, b in zip(x, y)) for x, y in zip(out, true)])
    assert set(diff) <= {0, 1, 2}
    changed = diff > 0
    assert changed.any()
    # the check digit catches single substitutions and adjacent transpositions
    assert not idnum.is_valid18(out[changed]).any()


def test_id_error_kinds() -> None:
    rng = np.random.default_rng(3)
    n = 4000
    true = pd.Series(idnum.make_ids(np.full(n, "420503"),
                                    np.datetime64("1950-01-01") + rng.integers(0, 20000, n).astype("timedelta64[D]"),
                                    rng.random(n) < 0.5))
    years = pd.to_datetime(true.str[6:14]).dt.year.to_numpy()
    err = SourceErrors(id_missing=0.1, id_fullwidth=0.05, id_lowercase_x=1.0, id_legacy15=0.5,
                       id_excel_number=0.1)
    out = noise.noisy_ids(true, rng, err, years, 1985, excel=True)
    assert 0.07 < out.isna().mean() < 0.13
    text = out[out.map(lambda v: isinstance(v, str))]
    assert not text.str.endswith("X").any()
    assert text.str.contains("[０-９]").mean() > 0.02
    legacy = text[text.str.len() == 15]
    assert len(legacy) and (pd.to_datetime("19" + legacy.str[6:8], format="%Y").dt.year < 1985).all()
    floats = out[out.map(lambda v: isinstance(v, float) and not np.isnan(v))]
    # Excel keeps 15 significant digits: the last three digits are lost
    assert len(floats) and all(float(format(v, ".15g")) == v for v in floats)
    assert all(format(v, ".14e").replace(".", "")[:15] == t[:15]
               for v, t in zip(floats, true[floats.index]))
    assert text.str.fullmatch(r"\d\.\d{5}E\+17").any()


def test_homophones_share_pinyin() -> None:
    pool = names.homophone_pool()
    assert len(pool) > 2500
    rng = np.random.default_rng(0)
    chars = np.array(list("伟芳娜敏静丽强磊军洋"), dtype=object)
    out = names.homophone_replace(rng, chars)
    assert (out != chars).all()
    assert lazy_pinyin(list(out)) == lazy_pinyin(list(chars))


def test_name_errors() -> None:
    rng = np.random.default_rng(5)
    assert names.to_traditional(pd.Series(["张伟", "刘丽华"])).tolist() == ["張偉", "劉麗華"]
    spaced = names.add_space(pd.Series(["王芳"] * 20), rng)
    assert set(spaced) <= {"王 芳"}
    dots = names.dot_variant(pd.Series(["买买提\u00b7艾力"] * 200), rng)
    assert set(dots) == {"买买提・艾力", "买买提•艾力", "买买提.艾力", "买买提艾力"}


def test_rare_characters_are_outside_gbk() -> None:
    for c in names.RARE_CHARS:
        with pytest.raises(UnicodeEncodeError):
            c.encode("gbk")
        c.encode("gb18030")


def test_special_surnames_present() -> None:
    sn, p = names.surname_table()
    for s in ("欧阳", "司马", "诸葛", "上官", "单", "曾", "区", "仇", "解", "查", "朴"):
        assert s in set(sn)
    assert abs(p.sum() - 1) < 1e-9


HOUSE = pd.DataFrame({"district": ["西陵区"], "district_code": ["420502"], "street": ["西陵街道"],
                      "community": ["桃花岭社区"], "compound": ["桃花苑"], "building": [3],
                      "unit": [2], "room": ["501"], "road": ["东湖路"], "door_no": [18]})


@pytest.mark.parametrize("style, variant, expected", [
    (1, 0, "西陵区桃花苑3-2-501"),
    (2, 0, "宜昌市西陵区桃花苑小区3号楼2单元501室"),
    (3, 0, "湖北省宜昌市西陵区西陵街道桃花岭社区桃花苑小区3栋2单元501"),
    (4, 0, "西陵区东湖路18号桃花苑3幢2单元501号"),
    (5, 0, "桃花苑3栋2单元501"),
    (5, 1, "西陵 桃花苑 3-2-501"),
    (5, 2, "桃花苑小区三号楼二单元501"),
])
def test_address_styles(style: int, variant: int, expected: str) -> None:
    assert geo.address_style(HOUSE, style, variant).iat[0] == expected


def test_grids_and_houses() -> None:
    rng = np.random.default_rng(2)
    grids = geo.build_grids(20000, rng, DEFAULT_CONFIG.district_weights, 4000, 700)
    assert grids["grid_code"].str.fullmatch(r"\d{15}").all()
    assert grids["grid_code"].is_unique
    assert (grids["grid_code"].str[:6] == grids["district_code"]).all()
    houses = geo.build_houses(grids, 8000, rng)
    assert len(houses) >= 8000
    assert houses["house_key"].is_unique
    assert houses["grid_code"].isin(grids["grid_code"]).all()
    assert houses["room"].str.fullmatch(r"\d{1,2}0\d").all()


@pytest.mark.parametrize("styles, expected", [
    ("iso", "2023-05-03"), ("slash", "2023/5/3"), ("cn", "2023年5月3日"), ("compact", "20230503"),
])
def test_date_formats(styles: str, expected: str) -> None:
    out = noise.format_dates(pd.Series(pd.to_datetime(["2023-05-03", None])), styles)
    assert out.tolist() == [expected, None]


@pytest.mark.parametrize("day, pension, subsidy", [
    ("2026-11-20", 202610, 202611), ("2026-11-21", 202610, 202611), ("2026-11-24", 202610, 202611),
    ("2026-11-25", 202611, 202611), ("2026-01-05", 202512, 202512), ("2026-01-10", 202512, 202601),
])
def test_pay_months(day: str, pension: int, subsidy: int) -> None:
    assert pension_month(pd.Timestamp(day)) == pension
    assert subsidy_month(pd.Timestamp(day)) == subsidy


def test_month_add() -> None:
    assert month_add(np.array([202611, 202612]), 1).tolist() == [202612, 202701]
    assert month_add(np.array([202601]), -1).tolist() == [202512]


def test_phone_errors() -> None:
    rng = np.random.default_rng(9)
    phones = pd.Series(["13812345678"] * 3000)
    out = noise.noisy_phones(phones, rng, SourceErrors(phone_missing=0.1, phone_mistyped=0.1,
                                                       phone_formatted=0.1))
    assert 0.07 < out.isna().mean() < 0.13
    digits = out.dropna().str.replace(r"\D", "", regex=True).str[-11:]
    assert 0.07 < (digits != "13812345678").mean() < 0.14
    assert out.dropna().str.contains(" |-|\\+86").mean() > 0.07


def test_config_is_frozen() -> None:
    with pytest.raises(Exception):
        DEFAULT_CONFIG.wanted_rate = 0.5  # type: ignore[misc]
    assert GeneratorConfig().grid.id_missing == pytest.approx(0.10)
    assert unicodedata.normalize("NFKC", "４") == "4"
