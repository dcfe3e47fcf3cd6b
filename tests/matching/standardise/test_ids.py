"""Table, property and differential tests of matching.standardise.ids."""

from __future__ import annotations

import datetime as dt
import unicodedata

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric
from stdnum.util import isdigits

from matching.standardise.ids import (
    STATUSES,
    check_char,
    check_digit_ok,
    classify_ids,
    clean_id,
    is_valid_id,
    region_codes,
    upgrade15,
)

relaxed = settings(deadline=None, max_examples=60)  # shared 2-core machine: no per-example deadline

W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def ref_check(first17: str) -> str:
    """Scalar reference check character (written independently of the vectorised one)."""
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, W)) % 11]


def make_id(region: str = "420502", birth: str = "19850312", seq: str = "123") -> str:
    first17 = region + birth + seq
    return first17 + ref_check(first17)


VALID_F = make_id(seq="124")  # female
VALID_M = make_id(seq="123")  # male
BAD_DATE = make_id(birth="19850230")


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("１１０１０５１９４９１２３１００２ｘ", "11010519491231002X"),
        (" 110105 1949 1231 002x ", "11010519491231002X"),
        ("110105-19491231-002X", "11010519491231002X"),
        ("'11010519491231002X", "11010519491231002X"),
        ("‘11010519491231002X", "11010519491231002X"),
        ('"11010519491231002X"', "11010519491231002X"),
        ("11010519491231002×", "11010519491231002X"),
        ("11O1051949l231002x", "11010519491231002X"),
        ("11o105194912310021", "110105194912310021"),
        ("I10105194912310021", "110105194912310021"),
        ("110105491231002.0", "110105491231002"),
        ("4.20502E+17", "4.20502E+17"),
        ("hello", "HELLO"),  # look-alikes only inside otherwise-digit strings
        ("OIL", "OIL"),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_clean_id_table(raw: str | None, cleaned: str | None) -> None:
    out = clean_id(pd.Series([raw], dtype=object)).iloc[0]
    assert (out is pd.NA and cleaned is None) or out == cleaned


def test_clean_id_float_column_keeps_15_digits() -> None:
    out = clean_id(pd.Series([420502850312123.0, np.nan]))
    assert out.iloc[0] == "420502850312123"
    assert out.isna().iloc[1]


def test_an_18_digit_number_stored_as_a_float_has_lost_digits() -> None:
    # Excel keeps 15 significant digits: 420502199001011234 becomes 420502199001011000 (a float)
    floats = pd.Series([420502199001011 * 1000.0, 420502850312123.0])
    assert classify_ids(floats)["id_status"].tolist() == ["lost_digits", "legacy15"]
    mixed = pd.Series([420502199001011 * 1000.0, "4.20502E+17", 420502850312123.0], dtype=object)
    assert classify_ids(mixed)["id_status"].tolist() == ["lost_digits", "lost_digits", "legacy15"]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (VALID_F, "valid"),
        (VALID_F.lower(), "valid"),
        (VALID_F[:17] + ("0" if VALID_F[17] != "0" else "1"), "bad_check"),
        ("420502850312124", "legacy15"),
        ("'420502850312124", "legacy15"),
        (BAD_DATE, "bad_date"),
        ("420502850230124", "bad_date"),  # 15-digit, Feb 30
        (make_id(birth="18000101"), "bad_date"),  # before 1850
        ("42050219850312123", "bad_length"),
        ("4205021985031212345", "bad_length"),
        ("42050285031212X", "bad_length"),
        ("4.20502E+17", "lost_digits"),
        ("4.20502198503121E+17", "lost_digits"),
        ("420502198503121000" if ref_check("42050219850312100") != "0" else "420502198503122000",
         "lost_digits"),
        ("42050219850312X123", "bad_chars"),
        ("42A502198503121234", "bad_chars"),
        ("张三", "bad_chars"),
        ("", "missing"),
        (None, "missing"),
    ],
)
def test_classify_status_table(raw: str | None, status: str) -> None:
    got = classify_ids(pd.Series([raw], dtype=object))
    assert got["id_status"].iloc[0] == status
    assert set(got["id_status"]) <= set(STATUSES)


def test_classify_fields_of_a_valid_and_a_legacy_number() -> None:
    out = classify_ids(pd.Series([VALID_M, "420502850312124", None], index=[10, 20, 30]))
    assert list(out.index) == [10, 20, 30]
    assert out.loc[10, "id18"] == VALID_M and out.loc[10, "id_key"] == VALID_M
    assert out.loc[10, "id_sex"] == "男" and out.loc[20, "id_sex"] == "女"
    assert out.loc[10, "id_birth_date"] == pd.Timestamp("1985-03-12")
    assert out.loc[20, "id18"] == make_id(seq="124")
    assert out.loc[10, "id_region"] == "420502"
    assert bool(out.loc[10, "region_known"]) is True
    assert out.loc[30, "id_status"] == "missing" and pd.isna(out.loc[30, "id18"])
    assert out["id_birth_date"].dtype == "datetime64[ns]"
    assert out["region_known"].dtype == bool and out["foreign_permanent"].dtype == bool


def test_bad_check_keeps_id18_but_not_id_key() -> None:
    bad = VALID_F[:17] + ("0" if VALID_F[17] != "0" else "1")
    out = classify_ids(pd.Series([bad]))
    assert out["id18"].iloc[0] == bad and pd.isna(out["id_key"].iloc[0])
    assert out["id_birth_date"].iloc[0] == pd.Timestamp("1985-03-12")


def test_lost_digits_has_no_id18() -> None:
    out = classify_ids(pd.Series(["4.20502E+17"]))
    assert pd.isna(out["id18"].iloc[0]) and out["id_birth_date"].isna().iloc[0]


@pytest.mark.parametrize(
    ("region", "known"),
    [("420502", True), ("420521", True), ("420599", False), ("990000", False), ("110103", True)],
)
def test_region_known_includes_retired_codes(region: str, known: bool) -> None:
    # 420521 宜昌县 was retired in 2001, 110103 崇文区 in 2010: both still "known"
    out = classify_ids(pd.Series([make_id(region=region)]))
    assert bool(out["region_known"].iloc[0]) is known


def test_foreign_permanent_and_centenarian_flags() -> None:
    out = classify_ids(pd.Series([make_id(region="942156"), "420502010312997", "420502010312995"]))
    assert list(out["foreign_permanent"]) == [True, False, False]
    assert out["id_status"].iloc[0] == "valid"
    assert list(out["centenarian_possible"]) == [False, True, False]
    assert out["id_status"].iloc[1] == "legacy15"


def test_region_table_size() -> None:
    codes = region_codes()
    assert len(codes) > 6000 and "420506" in codes and all(len(c) == 6 for c in codes)


def test_check_char_vectorised_matches_reference_and_rejects_non_digits() -> None:
    rng = np.random.default_rng(3)
    firsts = ["".join(map(str, rng.integers(0, 10, 17))) for _ in range(500)]
    got = check_char(pd.Series(firsts + ["1234", None, "4205021985031212a"]))
    assert list(got[:500]) == [ref_check(f) for f in firsts]
    assert got[500:].isna().all()


def test_is_valid_id_scalar() -> None:
    assert is_valid_id(VALID_F) and is_valid_id("420502850312124")
    assert not is_valid_id(BAD_DATE) and not is_valid_id(None) and not is_valid_id(float("nan"))


# ---- properties -------------------------------------------------------------------------------

valid_dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2025, 12, 31))
regions = st.sampled_from(sorted(region_codes()))
seqs = st.integers(0, 999).map(lambda n: f"{n:03d}")


@st.composite
def valid_ids(draw: st.DrawFn) -> str:
    return make_id(draw(regions), draw(valid_dates).strftime("%Y%m%d"), draw(seqs))


@relaxed
@given(st.lists(st.text(alphabet="0123456789xX×OoIl -'０１２３４５６７８９ｘＸ .E+a中", max_size=22),
                max_size=20))
def test_clean_id_is_idempotent(values: list[str]) -> None:
    once = clean_id(pd.Series(values, dtype=object))
    twice = clean_id(once)
    pd.testing.assert_series_equal(once, twice)


def substituted(number: str, pos: int, shift: int) -> str:
    """``number`` with the character at ``pos`` replaced by another allowed there."""
    alphabet = "0123456789X" if pos == 17 else "0123456789"
    ch = alphabet[(alphabet.index(number[pos]) + shift) % len(alphabet)]
    return number[:pos] + ch + number[pos + 1:]


@relaxed
@given(st.lists(st.tuples(valid_ids(), st.integers(0, 17), st.integers(1, 9)), min_size=1, max_size=40))
def test_single_substitution_is_never_valid(cases: list[tuple[str, int, int]]) -> None:
    changed = [substituted(n, p, k) for n, p, k in cases]
    assert all(c != n for c, (n, _, _) in zip(changed, cases))
    assert not (classify_ids(pd.Series(changed))["id_status"] == "valid").any()


@relaxed
@given(st.lists(st.tuples(valid_ids(), st.integers(0, 16)), min_size=1, max_size=40))
def test_adjacent_transposition_is_never_valid(cases: list[tuple[str, int]]) -> None:
    swapped = [n[:p] + n[p + 1] + n[p] + n[p + 2:] for n, p in cases]
    really = [w for w, (n, _) in zip(swapped, cases) if w != n]
    assert not (classify_ids(pd.Series(really, dtype=object))["id_status"] == "valid").any()


@relaxed
@given(st.lists(st.tuples(regions, st.dates(min_value=dt.date(1900, 1, 1),
                                            max_value=dt.date(1999, 12, 31)), seqs),
                min_size=1, max_size=40))
def test_upgrade_15_to_18_is_valid(cases: list[tuple[str, dt.date, str]]) -> None:
    legacy = pd.Series([r + b.strftime("%y%m%d") + q for r, b, q in cases])
    out = classify_ids(legacy)
    assert (out["id_status"] == "legacy15").all()
    pd.testing.assert_series_equal(out["id18"], upgrade15(legacy), check_names=False)
    assert (classify_ids(out["id18"])["id_status"] == "valid").all()
    assert out["id_birth_date"].tolist() == [pd.Timestamp(b) for _, b, _ in cases]


@relaxed
@given(st.lists(valid_ids(), min_size=1, max_size=30))
def test_valid_number_survives_export_noise(numbers: list[str]) -> None:
    full = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
    noisy = [v for n in numbers for v in ("'" + n, n.lower(), " ".join([n[:6], n[6:14], n[14:]]),
                                          n.translate(full), n[:6] + "-" + n[6:])]
    expected = [n for n in numbers for _ in range(5)]
    assert classify_ids(pd.Series(noisy))["id18"].tolist() == expected


# ---- differential test against python-stdnum -----------------------------------------------------


def stdnum_check_verdict(number: str) -> bool:
    """stdnum.cn.ric.validate's checks up to and including the check digit (not date, not region)."""
    n = ric.compact(number)
    return len(n) == 18 and isdigits(n[:-1]) and n[-1] == ric.calc_check_digit(n)


def corrupted_numbers(n: int, seed: int = 11) -> list[str]:
    """Valid numbers, and the kinds of damage exports show, mixed at random."""
    rng = np.random.default_rng(seed)
    codes = sorted(region_codes())
    full = str.maketrans("0123456789Xx", "０１２３４５６７８９Ｘｘ")
    out: list[str] = []
    for _ in range(n):
        d = dt.date(1900, 1, 1) + dt.timedelta(days=int(rng.integers(0, 46000)))
        num = make_id(codes[rng.integers(len(codes))], d.strftime("%Y%m%d"), f"{rng.integers(1000):03d}")
        kind = rng.integers(12)
        if kind == 1:  # single substitution anywhere
            p = int(rng.integers(18))
            num = num[:p] + "0123456789X"[rng.integers(11 if p == 17 else 10)] + num[p + 1:]
        elif kind == 2:  # adjacent transposition
            p = int(rng.integers(17))
            num = num[:p] + num[p + 1] + num[p] + num[p + 2:]
        elif kind == 3:  # lowercase x / trailing x
            num = num[:17] + "x"
        elif kind == 4:  # full-width characters
            num = num.translate(full)
        elif kind == 5:  # deletion
            p = int(rng.integers(18))
            num = num[:p] + num[p + 1:]
        elif kind == 6:  # insertion
            p = int(rng.integers(19))
            num = num[:p] + str(rng.integers(10)) + num[p:]
        elif kind == 7:  # a random letter
            p = int(rng.integers(18))
            num = num[:p] + "aAbcOlI中ß"[rng.integers(9)] + num[p + 1:]
        elif kind == 8:  # surrounding spaces (stdnum strips them) / inner space (it does not)
            num = (" " + num + "\u3000") if rng.integers(2) else num[:6] + " " + num[6:]
        elif kind == 9:  # Excel: last three digits lost
            num = num[:15] + "000"
        elif kind == 10:  # random 18-character string of digits and X
            num = "".join("0123456789X"[i] for i in rng.integers(0, 11, 18))
        elif kind == 11:  # random digits, random length
            num = "".join(str(i) for i in rng.integers(0, 10, int(rng.integers(14, 20))))
        out.append(num)
    return out


def test_check_verdict_agrees_with_stdnum_on_20000_numbers() -> None:
    raw = corrupted_numbers(24_000)
    normalised = [unicodedata.normalize("NFKC", x) for x in raw]
    ours = check_digit_ok(pd.Series(normalised)).tolist()
    theirs = [stdnum_check_verdict(x) for x in normalised]
    disagree = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    assert not disagree, f"{len(disagree)} disagreements, first at {disagree[:5]}"
    assert 0.15 < sum(theirs) / len(theirs) < 0.8  # the sample holds both verdicts in bulk


def test_classification_is_consistent_with_stdnum() -> None:
    """stdnum-valid (check, date, region at birth year) implies ours valid; its check verdict
    on cleaned text equals ours being valid / bad_date / (lost_digits with a good check)."""
    raw = corrupted_numbers(6_000, seed=12)
    cleaned = clean_id(pd.Series(raw))
    out = classify_ids(pd.Series(raw))
    for x, c, status in zip(raw, cleaned, out["id_status"]):
        nx = unicodedata.normalize("NFKC", x)
        if ric.is_valid(nx):
            assert status == "valid"
        if isinstance(c, str) and len(c) == 18:
            assert stdnum_check_verdict(c) == (status in ("valid", "bad_date")), (status,)
