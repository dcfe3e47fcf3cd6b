"""The one masking module: a table of cases per kind, and scalar == vectorised for random text."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warehouse.masking import (field_kind, mask_for_field, mask_id, mask_key, mask_name,
                               mask_phone, mask_scalar, mask_series)

NAME_CASES = [
    ("张小明", "张*明"),
    ("张伟", "张*"),
    ("欧阳娜娜", "欧**娜"),
    ("王", "王"),                     # one character: nothing to hide but the surname
    ("", ""),
    (None, None),
    ("买买提·艾力", "买*提·艾*"),
    ("阿依古丽·买买提", "阿**丽·买*提"),
    ("买买提・艾力", "买*提・艾*"),     # U+30FB kept as it is
    ("买买提•艾力", "买*提•艾*"),       # U+2022
    ("买买提.艾力", "买*提.艾*"),
    ("艾·买", "艾·买"),
    ("买买提·", "买*提·"),
    ("王 芳", "王*芳"),                # a space does not split a name
    ("John Smith", "J********h"),
    ("Li", "L*"),
    ("张?明", "张*明"),
]


@pytest.mark.parametrize(("name", "expected"), NAME_CASES)
def test_name_rule(name: str | None, expected: str | None) -> None:
    assert mask_name(name) == expected
    assert mask_series("name", pd.Series([name], dtype=object)).tolist() == [expected]


@pytest.mark.parametrize(("fn", "kind", "value", "expected"), [
    (mask_id, "id", "420502199001011234", "420502********1234"),
    (mask_id, "id", "42050219900101123X", "420502********123X"),
    (mask_id, "id", "420502900101123", "420502*****1123"),
    (mask_id, "id", "12345", "*****"),
    (mask_id, "id", "1234567890", "**********"),
    (mask_id, "id", "12345678901", "123456*8901"),
    (mask_id, "id", "", ""),
    (mask_id, "id", None, None),
    (mask_phone, "phone", "13800001234", "138****1234"),
    (mask_phone, "phone", "0717-6221234", "071*****1234"),
    (mask_phone, "phone", "6221234", "*******"),
    (mask_phone, "phone", None, None),
    (mask_key, "key", "hrss:420502199001011234|2026", "hrss:420502********1234|2026"),
    (mask_key, "key", "420502900101123", "420502*****1123"),
    (mask_key, "key", "42050219900101123x", "420502********123x"),
    (mask_key, "key", "HJ0000012345", "HJ0000012345"),
    (mask_key, "key", "4205021990010112345", "4205021990010112345"),  # 19 digits: not an ID
    (mask_key, "key", None, None),
])
def test_rules_table(fn, kind: str, value: str | None, expected: str | None) -> None:  # noqa: ANN001
    assert fn(value) == expected
    assert mask_scalar(kind, value) == expected
    assert mask_series(kind, pd.Series([value], dtype=object)).tolist() == [expected]


def test_missing_values_stay_missing() -> None:
    s = pd.Series(["张小明", None, float("nan"), pd.NA], dtype=object)
    for kind in ("id", "name", "phone", "key"):
        out = mask_series(kind, s).tolist()
        assert out[1:] == [None, None, None], kind
        assert mask_scalar(kind, float("nan")) is None and mask_scalar(kind, pd.NA) is None


def test_no_kind_returns_values_unchanged() -> None:
    assert mask_scalar(None, "420502199001011234") == "420502199001011234"
    s = pd.Series(["a", None, math.nan], dtype=object)
    assert mask_series(None, s).tolist() == ["a", None, None]


@pytest.mark.parametrize(("field", "kind"), [
    ("id_number", "id"), ("mother_id_number", "id"), ("spouse_id_number", "id"), ("id18", "id"),
    ("name", "name"), ("father_name", "name"), ("name_raw", "name"), ("next_of_kin_name", "name"),
    ("phone", "phone"), ("next_of_kin_phone", "phone"), ("source_key", "key"),
    ("left_source_key", "key"), ("birth_date", None), ("district_name", None), ("address", None),
])
def test_field_kind(field: str, kind: str | None) -> None:
    assert field_kind(field) == kind


def test_mask_for_field() -> None:
    assert mask_for_field("id_number", "420502199001011234") == "420502********1234"
    assert mask_for_field("mother_name", "买买提·艾力") == "买*提·艾*"
    assert mask_for_field("birth_date", "1990-01-01") == "1990-01-01"


TEXT = st.text(alphabet=st.sampled_from(list("张伟买提艾力欧阳 a1Xx0123456789·・•.．\n|:")),
               max_size=24)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), TEXT), max_size=12),
       st.sampled_from(["id", "name", "phone", "key"]))
def test_vectorised_equals_scalar(values: list[str | None], kind: str) -> None:
    got = mask_series(kind, pd.Series(values, dtype=object)).tolist()
    assert got == [mask_scalar(kind, v) for v in values]


@settings(max_examples=200, deadline=None)
@given(TEXT, st.sampled_from(["id", "name", "phone", "key"]))
def test_masks_keep_length_and_separators(value: str, kind: str) -> None:
    out = mask_scalar(kind, value)
    assert len(out) == len(value)
    assert all(o == v or o == "*" for o, v in zip(out, value))
    if kind == "id" and len(value) > 10:
        assert out[:6] == value[:6] and out[-4:] == value[-4:] and set(out[6:-4]) <= {"*"}


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("张伟买提艾力欧阳")), min_size=3, max_size=8))
def test_han_names_keep_first_and_last(name: str) -> None:
    out = mask_name(name)
    assert out == name[0] + "*" * (len(name) - 2) + name[-1]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b"])), min_size=4, max_size=4),
       st.sampled_from(["id", "name", "phone", "key"]))
def test_index_is_kept_and_never_aligned_on(labels: list, kind: str) -> None:
    values = ["买买提·艾力", None, "hrss:420502199001011234", "13800001234"]
    plain = mask_series(kind, pd.Series(values, dtype=object))
    labelled = mask_series(kind, pd.Series(values, index=labels, dtype=object))
    assert list(labelled.index) == labels and labelled.tolist() == plain.tolist()
