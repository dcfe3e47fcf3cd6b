"""Table and property tests of matching.standardise.phones."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.standardise.phones import normalise_phone, phone_kind

relaxed = settings(deadline=None, max_examples=60)  # shared 2-core machine: no per-example deadline


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13812345678", "13812345678"), ("138 1234 5678", "13812345678"), ("138-1234-5678", "13812345678"),
        ("+8613812345678", "13812345678"), ("+86 138 1234 5678", "13812345678"),
        ("008613812345678", "13812345678"), ("8613812345678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"), ("13８１２３４５６７８", "13812345678"), ("13812345678.0", "13812345678"), (13812345678, "13812345678"),
        ("13812345678/13987654321", "13812345678"), ("13812345678，13987654321", "13812345678"),
        ("0717-1234567", "07171234567"), ("0717-12345678", "071712345678"), ("(0717)6221234", "07176221234"),
        ("（0717）6221234", "07176221234"), ("010-62345678", "01062345678"), ("027 8765 4321", "02787654321"),
        ("0717-6221234转801", "07176221234"), ("+86 717 6221234", "07176221234"),
        ("12812345678", None), ("1381234567", None), ("138123456789", None), ("1.38123E+10", None),
        ("6221234", None), ("0717-0221234", None), ("010-6234567", None), ("abc", None), ("", None),
        (None, None),
    ],
)
def test_normalise_phone_table(raw: object, expected: str | None) -> None:
    got = normalise_phone(pd.Series([raw], dtype=object)).iloc[0]
    assert (pd.isna(got) and expected is None) or got == expected


def test_default_area_code_and_kind() -> None:
    s = pd.Series(["6221234", "13812345678", "bad"], index=[3, 4, 5])
    got = normalise_phone(s, default_area_code="0717")
    assert list(got.index) == [3, 4, 5]
    assert got.tolist()[:2] == ["07176221234", "13812345678"] and pd.isna(got[5])
    assert phone_kind(got).tolist()[:2] == ["landline", "mobile"]


mobiles = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)


@relaxed
@given(mobiles, st.sampled_from(["{}", "+86{}", "+86 {}", "0086{}", "{a}-{b}-{c}", "{a} {b} {c}", "{}.0"]))
def test_mobile_formats_normalise_to_the_digits(number: str, style: str) -> None:
    text = style.format(number, a=number[:3], b=number[3:7], c=number[7:])
    assert normalise_phone(pd.Series([text])).iloc[0] == number


@relaxed
@given(st.lists(st.text(max_size=16), max_size=10))
def test_output_is_valid_or_na_and_idempotent(values: list[str]) -> None:
    once = normalise_phone(pd.Series(values, dtype=object))
    assert once.dropna().str.fullmatch(r"1[3-9]\d{9}|0\d{9,11}").all()
    pd.testing.assert_series_equal(once, normalise_phone(once))
