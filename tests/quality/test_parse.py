"""The validation frame's helpers: numbers, codes, keys, parsing distinct values once."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quality.parse import apply_codes, build_frame, by_unique, clean_text, parse_decimal, parse_integer
from tests.quality.conftest import make_contract, person_row


@pytest.mark.parametrize("text,value", [
    ("1234.50", 1234.5), ("1,234.50", 1234.5), ("¥ 88", 88.0), ("3 200元", 3200.0),
    ("-5", -5.0), ("abc", None), ("1e400", None), ("", None), (None, None),
])
def test_parse_decimal(text: str | None, value: float | None) -> None:
    got = parse_decimal(pd.Series([text], dtype=object)).iloc[0]
    assert (pd.isna(got) and value is None) or got == value


@pytest.mark.parametrize("text,value", [("3", 3), ("3.0", 3), ("2.5", None), ("x", None)])
def test_parse_integer(text: str, value: int | None) -> None:
    got = parse_integer(pd.Series([text], dtype=object)).iloc[0]
    assert (pd.isna(got) and value is None) or got == value


def test_clean_text_and_codes() -> None:
    s = pd.Series(["  a ", "\u3000", "", None, "1"], dtype=object)
    assert clean_text(s).tolist() == ["a", None, None, None, "1"]
    assert apply_codes(clean_text(s), {"1": "男"}).tolist() == ["a", None, None, None, "男"]


DATES = st.one_of(st.none(), st.sampled_from(["2023-05-03", "2023/5/3", "2023年5月3日", "20230503",
                                              "2023-02-30", "garbage", "85-3-12", ""]),
                  st.dates().map(lambda d: d.strftime("%Y%m%d")))


@settings(max_examples=50, deadline=None)
@given(st.lists(DATES, max_size=40))
def test_by_unique_equals_direct_parse(values: list[str | None]) -> None:
    from matching.standardise.dates import parse_dates
    s = pd.Series(values, dtype=object, index=range(100, 100 + len(values)))
    direct = parse_dates(s)
    once = by_unique(parse_dates, s)
    assert once.index.equals(s.index)
    pd.testing.assert_series_equal(once, direct, check_names=False)


def test_frame_columns_and_key_sequence() -> None:
    c = make_contract()
    raw = pd.DataFrame([person_row("K1"), person_row(" "), person_row("K1"), person_row("K2")])
    raw["_source_key"] = ["K1", None, "K1", "K2"]
    frame, warnings = build_frame(raw, c)
    assert warnings == []
    assert frame["_source_key"].tolist() == ["K1", None, "K1", "K2"]
    assert frame["_key_seq"].fillna(0).tolist() == [1, 0, 2, 1]
    for col in ("birth_date", "birth_date__raw", "id_number__status", "id_number__birth_date",
                "id_number__sex", "id_number__region_known", "sex"):
        assert col in frame.columns
    assert frame["sex"].tolist() == ["男"] * 4
