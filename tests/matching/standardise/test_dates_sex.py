"""Table and property tests of matching.standardise.dates and .sex."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.standardise.dates import parse_dates, parse_months, parse_timestamps
from matching.standardise.sex import normalise_sex

relaxed = settings(deadline=None, max_examples=60)  # shared 2-core machine: no per-example deadline

D = pd.Timestamp("2023-05-03")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2023-05-03", D), ("2023-5-3", D), ("2023/5/3", D), ("2023/05/03", D), ("2023.5.3", D),
        ("2023年5月3日", D), ("20230503", D), (" 2023-05-03 ", D), ("２０２３年５月３日", D),
        ("2023-05-03T10:11:12", D), ("2023-05-03 10:11", D), ("2023-05-03T23:59:59+08:00", D),
        ("2023/5/3 9:05:00", D), ("45049", D), ("45049.0", D), ("45049.75", D), (45049, D),
        (45049.0, D), ("85-3-12", pd.Timestamp("1985-03-12")), ("85/3/12", pd.Timestamp("1985-03-12")),
        ("85.3.12", pd.Timestamp("1985-03-12")), ("85年3月12日", pd.Timestamp("1985-03-12")),
        ("05-3-12", pd.Timestamp("2005-03-12")), ("30-1-1", pd.Timestamp("1930-01-01")),
        ("29-1-1", pd.Timestamp("2029-01-01")),
        ("2023-02-30", None), ("20230230", None), ("2023-13-01", None), ("2023053", None),
        ("230503", None), ("19999", None), ("60001", None), ("85-2-30", None), ("2023-05/03", None),
        ("abc", None), ("", None), (None, None), (np.nan, None),
    ],
)
def test_parse_dates_table(raw: object, expected: pd.Timestamp | None) -> None:
    got = parse_dates(pd.Series([raw], dtype=object)).iloc[0]
    assert (pd.isna(got) and expected is None) or got == expected


def test_parse_dates_caller_formats_first_and_index_kept() -> None:
    s = pd.Series(["03/05/2023", "2023-05-03", None], index=["a", "b", "c"])
    got = parse_dates(s, formats=["%d/%m/%Y"])
    assert list(got.index) == ["a", "b", "c"]
    assert got["a"] == D and got["b"] == D and pd.isna(got["c"])
    assert got.dtype == "datetime64[ns]"
    # without the caller's format, dd/mm/yyyy is not guessed
    assert parse_dates(s).isna()["a"]


def test_parse_dates_pivot_and_datetime_input() -> None:
    assert parse_dates(pd.Series(["05-3-12"]), pivot=0).iloc[0] == pd.Timestamp("1905-03-12")
    s = pd.Series(pd.to_datetime(["2023-05-03 10:00", None]))
    got = parse_dates(s)
    assert got.iloc[0] == D and pd.isna(got.iloc[1])
    aware = pd.Series(pd.to_datetime(["2023-05-02T20:00:00Z"]))
    assert parse_dates(aware).iloc[0] == D  # 04:00 on the 3rd in Asia/Shanghai


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("202305", "2023-05-01"), ("2023-05", "2023-05-01"), ("2023-5", "2023-05-01"),
        ("2023/5", "2023-05-01"), ("2023.05", "2023-05-01"), ("2023年5月", "2023-05-01"),
        ("2023-05-17", "2023-05-01"), ("2023年5月17日", "2023-05-01"), (202305, "2023-05-01"),
        ("202313", None), ("2023-00", None), ("abc", None), (None, None),
    ],
)
def test_parse_months_table(raw: object, expected: str | None) -> None:
    got = parse_months(pd.Series([raw], dtype=object)).iloc[0]
    assert (pd.isna(got) and expected is None) or got == pd.Timestamp(expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2023-05-03 10:11:12", "2023-05-03 10:11:12"), ("2023-05-03T10:11:12", "2023-05-03 10:11:12"),
        ("2023-05-03 10:11", "2023-05-03 10:11:00"), ("2023/5/3 9:05", "2023-05-03 09:05:00"),
        ("20230503101112", "2023-05-03 10:11:12"), ("2023-05-03T02:11:12Z", "2023-05-03 10:11:12"),
        ("2023-05-03T10:11:12.250+08:00", "2023-05-03 10:11:12.250"),
        ("2023-05-03", "2023-05-03 00:00:00"), ("2023-05-03 25:00", None), (None, None),
    ],
)
def test_parse_timestamps_table(raw: object, expected: str | None) -> None:
    got = parse_timestamps(pd.Series([raw], dtype=object)).iloc[0]
    assert (pd.isna(got) and expected is None) or got == pd.Timestamp(expected)


DATE_STYLES = ["%Y-%m-%d", "%Y/%-m/%-d", "%Y.%-m.%-d", "%Y年%-m月%-d日", "%Y%m%d", "%Y-%m-%dT%H:%M:%S"]


@relaxed
@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)),
       st.sampled_from(DATE_STYLES))
def test_formatted_date_round_trips(d: dt.date, style: str) -> None:
    text = dt.datetime(d.year, d.month, d.day).strftime(style)
    assert parse_dates(pd.Series([text])).iloc[0] == pd.Timestamp(d)


@relaxed
@given(st.dates(min_value=dt.date(1955, 1, 1), max_value=dt.date(2064, 1, 1)))
def test_excel_serial_round_trips(d: dt.date) -> None:
    serial = (pd.Timestamp(d) - pd.Timestamp("1899-12-30")).days
    assert parse_dates(pd.Series([str(serial)])).iloc[0] == pd.Timestamp(d)


@relaxed
@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_month_round_trips(d: dt.date) -> None:
    got = parse_months(pd.Series([f"{d.year}{d.month:02d}", f"{d.year}年{d.month}月"]))
    assert (got == pd.Timestamp(d.year, d.month, 1)).all()


@relaxed
@given(st.lists(st.text(max_size=12), max_size=10))
def test_parse_dates_never_raises_and_keeps_length(values: list[str]) -> None:
    got = parse_dates(pd.Series(values, dtype=object))
    assert len(got) == len(values) and got.dtype == "datetime64[ns]"


# ---- sex ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("男", "男"), ("女", "女"), ("男性", "男"), ("女性", "女"), ("M", "男"), ("m", "男"),
        ("F", "女"), ("f", "女"), ("1", "男"), ("2", "女"), (1, "男"), (2.0, "女"), (" 女 ", "女"),
        ("Ｍ", "男"), ("male", "男"), ("Female", "女"), ("0", None), ("9", None), ("未知", None),
        ("", None), (None, None), ("3", None),
    ],
)
def test_normalise_sex_table(raw: object, expected: str | None) -> None:
    got = normalise_sex(pd.Series([raw], dtype=object)).iloc[0]
    assert (pd.isna(got) and expected is None) or got == expected


def test_normalise_sex_codes_first() -> None:
    s = pd.Series(["A", "B", "1", "2", "C"], index=[5, 6, 7, 8, 9])
    got = normalise_sex(s, {"A": "男", "B": "F", "1": "女"})
    assert list(got.index) == [5, 6, 7, 8, 9]
    assert got.tolist()[:4] == ["男", "女", "女", "女"] and pd.isna(got.iloc[4])
    assert got.dtype == "string"
