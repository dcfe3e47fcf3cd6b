"""Every standardiser keeps the input's index and gives row for row the same values whatever the
index is (duplicated, shuffled, non-integer labels): no label alignment inside."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.standardise import addresses, dates, ids, names, phones, sex

relaxed = settings(deadline=None, max_examples=15)  # shared 2-core machine: no per-example deadline

DATES = ["2023-05-03", "85-3-12", "45049", "2023-05-03 10:00", "2023年5月3日", None, "2023-02-30", "202305"]
IDS = ["420502850312124", "4.2E+17", None, "11010519491231002x", "420502850230124", "x", "", "'110105491231002"]
NAMES = ["張偉", "王 芳", "买买提•艾力", None, "单雄信", "於明", "王?芳", "欧阳修"]
PHONES = ["13812345678", "+86 138 1234 5678", "0717-1234567", "bad", None, "6221234", "010-62345678", ""]
ADDRESSES = ["西陵区桃花苑3-2-501", "桃花苑小区三号楼二单元501", None, "宜昌市西陵区桃花苑小区3号楼2单元501室",
             "x", "湖北省武汉市武昌区东亭小区5栋1单元302", "西陵 桃花苑 3-2-501", ""]
SEXES = ["1", "男", "F", None, "9", "女", "m", ""]

CASES: list[tuple[str, Callable[[pd.Series], object], list]] = [
    ("parse_dates", dates.parse_dates, DATES), ("parse_months", dates.parse_months, DATES),
    ("parse_timestamps", dates.parse_timestamps, DATES), ("normalise_sex", sex.normalise_sex, SEXES),
    ("clean_id", ids.clean_id, IDS), ("classify_ids", ids.classify_ids, IDS),
    ("normalise_name", names.normalise_name, NAMES), ("name_pinyin", names.name_pinyin, NAMES),
    ("pinyin_fuzzy", names.pinyin_fuzzy, NAMES), ("split_surname", names.split_surname, NAMES),
    ("name_flags", names.name_flags, NAMES), ("normalise_phone", phones.normalise_phone, PHONES),
    ("parse_addresses", addresses.parse_addresses, ADDRESSES),
]


def _rows(x: pd.Series | pd.DataFrame) -> list:
    frame = x.to_frame() if isinstance(x, pd.Series) else x
    return [tuple("NA" if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False)]


@pytest.mark.parametrize(("name", "fn", "values"), CASES, ids=[c[0] for c in CASES])
@relaxed
@given(labels=st.lists(st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b"])), min_size=8, max_size=8))
def test_index_is_kept_and_never_aligned_on(name: str, fn: Callable, values: list, labels: list) -> None:
    plain = fn(pd.Series(values, dtype=object))
    labelled = fn(pd.Series(values, index=labels, dtype=object))
    assert list(labelled.index) == labels
    assert _rows(labelled) == _rows(plain)
