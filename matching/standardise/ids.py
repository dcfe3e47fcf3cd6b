"""Resident ID numbers (GB 11643-1999): cleaning, check character, 15 -> 18 upgrade, classification.

All functions are pure and vectorised over a pandas Series (same index in and out, nulls in ->
nulls out); the only per-row Python is the scalar helper :func:`is_valid_id`.

What :func:`classify_ids` decides, in this order (first match wins):

==============  ==========================================================================
``missing``     null or empty after cleaning
``lost_digits`` Excel mangling: scientific notation (``4.20502E+17``), or 18 digits ending
                in ``000`` whose check character fails (Excel keeps 15 significant digits)
``bad_chars``   anything but ASCII digits with an optional final ``X`` (after cleaning)
``bad_length``  digits (+ final X) but not 15 or 18 characters, or a 15-character number with X
``bad_check``   18 characters whose check character is wrong (date not considered)
``bad_date``    check character right (or 15 digits) but the birth date part is not a real
                date from 1850 on
``legacy15``    15-digit number upgraded to 18 (``19`` inserted, check character appended)
``valid``       18 characters, right check character, real birth date
==============  ==========================================================================

The check character is never "repaired": a number failing it has ~11 valid one-edit
neighbours; matching compares it with valid numbers within one edit instead (DOMAIN.md).
Birth date, sex and region are read from the number whenever its shape allows, even when the
check fails, so that matching can use them as evidence.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
"""GB 11643 weights of the first 17 digits."""
CHECK_CHARS = "10X98765432"
"""Check character indexed by (weighted sum mod 11)."""

STATUSES = ("valid", "legacy15", "bad_check", "bad_date", "bad_length", "lost_digits",
            "bad_chars", "missing")
"""Every value of ``id_status``."""
USABLE_STATUSES = frozenset({"valid", "legacy15"})
"""Statuses whose ``id18`` may be used as an exact key (``id_key``)."""

MIN_BIRTH_YEAR = 1850
"""Birth years before this are treated as ``bad_date``."""

_STRING = pd.StringDtype("python")
_ARROW = pd.StringDtype("pyarrow")
_APOSTROPHES = "'\u2018\u2019`\u00b4"
_DASHES = "\\-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"


def _as_text(s: pd.Series) -> pd.Series:
    """Any Series as pandas ``string`` dtype (nulls stay NA); floats like ``1.0`` lose ``.0``."""
    if pd.api.types.is_float_dtype(s.dtype):
        # a float column of numbers (a spreadsheet read without dtype=str): values below 1e15
        # (15-digit legacy numbers) are exact; an 18-digit number stored as a float has lost its
        # last digits, so it is written in scientific notation and classified ``lost_digits``
        out = pd.Series(pd.NA, index=s.index, dtype=_STRING)
        f = s.to_numpy(dtype=float, na_value=np.nan)
        small = np.isfinite(f) & (np.abs(f) < 1e15)
        big = np.isfinite(f) & ~small
        out[small] = pd.Series(f[small].astype(np.int64), index=s.index[small]).astype(_STRING)
        out[big] = pd.Series(f[big], index=s.index[big]).map("{:.15E}".format).astype(_STRING)
        return out
    return s.astype(_STRING)


def clean_id(s: pd.Series) -> pd.Series:
    """Clean ID-number text without judging it.

    NFKC (full-width digits and ``Ｘ`` become ASCII), then removes all whitespace, hyphens and
    dashes, leading apostrophes (Excel's text marker) and surrounding quotes, a float artefact
    ``.0`` after digits, turns ``x`` / ``×`` into ``X`` and upper-cases; in strings made only of
    digits and the look-alikes ``O o I l`` (plus an optional final X) with at least one digit, the
    look-alikes become ``0`` and ``1``. Empty results become NA. Idempotent. Returns ``string``
    dtype with the input's index.
    """
    text = _as_text(s)
    # fast path: most values are already clean (ASCII digits, final X); only the rest is cleaned
    clean = text.astype(_ARROW).str.fullmatch(r"[0-9]{17}[0-9X]|[0-9]{15}").fillna(False).astype(bool)
    if bool(clean.all()):
        return text
    t = text[~clean].str.normalize("NFKC")
    t = t.str.replace(r"\s+", "", regex=True)
    t = t.str.replace(f"[{_DASHES}]", "", regex=True)
    t = t.str.replace(f'^[{_APOSTROPHES}"]+|"+$', "", regex=True)
    t = t.str.replace("×", "X", regex=False).str.upper().str.normalize("NFKC")
    t = t.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
    lookalike = t.str.fullmatch(r"(?=.*\d)[0-9OIL]+X?", na=False)
    # upper() turned o -> O and l -> L; only inside otherwise-digit strings do they mean 0 / 1
    if lookalike.any():
        t = t.where(~lookalike, t.str.translate(str.maketrans("OIL", "011")))
    t = t.mask(t == "")
    out = text.copy()
    out[~clean] = t
    return out


def check_char(first17: pd.Series) -> pd.Series:
    """GB 11643 check character of the first 17 characters, vectorised.

    Each value's first 17 characters must be ASCII digits (an 18-character number may be passed
    as is); other values give NA. Returns ``string`` dtype.
    """
    t = first17.astype(_STRING).str.slice(0, 17)
    ok = t.str.fullmatch(r"[0-9]{17}", na=False).to_numpy(dtype=bool)
    out = np.full(len(t), None, dtype=object)
    if ok.any():
        joined = "".join(t.to_numpy(dtype=object)[ok]).encode("ascii")
        digits = (np.frombuffer(joined, dtype=np.uint8).reshape(-1, 17) - 48).astype(np.int64)
        idx = (digits @ WEIGHTS) % 11
        out[ok] = np.array(list(CHECK_CHARS), dtype=object)[idx]
    return pd.Series(out, index=first17.index, dtype=_STRING)


def check_digit_ok(s: pd.Series) -> pd.Series:
    """True where a value (stripped, upper-cased) is 17 ASCII digits plus the right check character.

    This is exactly the part of ``stdnum.cn.ric.validate`` that is about the check character
    (length 18, ``isdigits(number[:-1])``, ``number[-1] == calc_check_digit(number)``), without
    its birth-date and region tests. Pass NFKC-normalised or :func:`clean_id` text.
    """
    t = s.astype(_STRING).str.strip().str.upper()
    shape = t.str.fullmatch(r"[0-9]{17}[0-9X]", na=False)
    return (shape & (check_char(t.where(shape)) == t.str.slice(17, 18))).fillna(False).astype(bool)


@lru_cache(maxsize=1)
def region_codes() -> frozenset[str]:
    """Every 6-digit region code in python-stdnum's county table (``stdnum/cn/loc.dat``), at any time.

    Retired codes count: a number keeps the code of where it was first issued.
    """
    text = resources.files("stdnum").joinpath("cn/loc.dat").read_text(encoding="utf-8")
    codes: set[str] = set()
    province = ""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if not line[0].isspace():
            province = line.split()[0]
            if len(province) == 2:
                codes.add(province + "0000")
        else:
            part = line.split()[0]
            if len(part) == 4 and part.isdigit():
                codes.add(province + part)
    return frozenset(codes)


def _birth_dates(yyyymmdd: pd.Series) -> pd.Series:
    """``YYYYMMDD`` text to datetime64 (NaT when not a real date or before MIN_BIRTH_YEAR)."""
    d = pd.to_datetime(yyyymmdd.where(yyyymmdd.str.fullmatch(r"[0-9]{8}", na=False)),
                       format="%Y%m%d", errors="coerce")
    return d.where(d.dt.year >= MIN_BIRTH_YEAR)


def upgrade15(s: pd.Series) -> pd.Series:
    """15-digit legacy numbers to 18 (``19`` inserted before ``YYMMDD``, check character appended).

    Values that are not 15 ASCII digits give NA. Input should be :func:`clean_id` output.
    """
    t = s.astype(_STRING)
    ok = t.str.fullmatch(r"[0-9]{15}", na=False)
    first17 = (t.str.slice(0, 6) + "19" + t.str.slice(6, 15)).where(ok)
    return (first17 + check_char(first17)).where(ok)


def classify_ids(s: pd.Series) -> pd.DataFrame:
    """Clean, upgrade and classify ID numbers (see the module docstring for ``id_status``).

    Columns (index as the input):

    - ``id18``: the 18-character number (upgraded from 15) whenever the shape allows reading it
      (``valid``, ``legacy15``, ``bad_check``, ``bad_date``), else NA: use it for near-match
      comparison;
    - ``id_key``: ``id18`` only for ``valid`` and ``legacy15``: use this as an exact key;
    - ``id_status``; ``id_birth_date`` (datetime64, when the date part is a real date);
    - ``id_sex`` ('男' odd sequence / '女' even); ``id_region`` (6 digits);
    - ``region_known`` (bool: code in stdnum's table at any time, retired codes included);
    - ``foreign_permanent`` (bool: 18 characters starting with 9);
    - ``centenarian_possible`` (bool: 15-digit number with sequence 996-999, whose ``19`` century
      is an assumption).
    """
    c = clean_id(s)
    a = c.astype(_ARROW)  # Arrow-backed: RE2 full matches, slices and concatenation in C++

    def full(pattern: str) -> np.ndarray:
        return a.str.fullmatch(pattern).to_numpy(dtype=bool, na_value=False)

    missing = a.isna().to_numpy(dtype=bool)
    is15 = full(r"[0-9]{15}")
    shape18 = full(r"[0-9]{17}[0-9X]")
    digitsx = full(r"[0-9]+X?")
    scientific = full(r"[0-9]+(?:\.[0-9]*)?E\+?[0-9]+")
    readable = is15 | shape18

    first17 = a.str.slice(0, 17).where(shape18, a.str.slice(0, 6) + "19" + a.str.slice(6, 15))
    first17 = first17.where(readable)
    check = check_char(first17).astype(_ARROW)
    check_ok = (check == a.str.slice(17, 18)).to_numpy(dtype=bool, na_value=False) & shape18
    zeros = shape18 & a.str.endswith("000").to_numpy(dtype=bool, na_value=False) & ~check_ok
    id18 = a.where(shape18, first17 + check).where(readable & ~zeros)
    birth = _birth_dates(id18.str.slice(6, 14))
    no_birth = birth.isna().to_numpy(dtype=bool)

    status = np.select(
        [missing, scientific | zeros, ~digitsx, ~readable, shape18 & ~check_ok, no_birth, is15],
        ["missing", "lost_digits", "bad_chars", "bad_length", "bad_check", "bad_date", "legacy15"],
        default="valid",
    ).astype(object)
    usable = np.isin(status, list(USABLE_STATUSES))
    has18 = id18.notna().to_numpy(dtype=bool)
    odd = id18.str.slice(16, 17).isin(list("13579")).to_numpy(dtype=bool, na_value=False)
    region = id18.str.slice(0, 6)
    seq15 = a.str.slice(12, 15).isin(["996", "997", "998", "999"]).to_numpy(dtype=bool, na_value=False)
    foreign = shape18 & (a.str.slice(0, 1) == "9").to_numpy(dtype=bool, na_value=False)

    def text(x: pd.Series) -> pd.Series:
        return x.astype(_STRING)

    return pd.DataFrame(
        {
            "id18": text(id18),
            "id_key": text(id18.where(usable)),
            "id_status": pd.Series(status, index=c.index, dtype=_STRING),
            "id_birth_date": birth.where(has18).astype("datetime64[ns]"),
            "id_sex": pd.Series(np.where(odd, "男", "女"), index=c.index, dtype=_STRING).where(has18),
            "id_region": text(region),
            "region_known": region.isin(region_codes()).to_numpy(dtype=bool, na_value=False),
            "foreign_permanent": foreign,
            "centenarian_possible": is15 & seq15,
        },
        index=c.index,
    )


def is_valid_id(x: object) -> bool:
    """Scalar: True when ``x`` classifies as ``valid`` or ``legacy15`` (for GX expectations, tests)."""
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return False
    status = classify_ids(pd.Series([x], dtype=object))["id_status"].iloc[0]
    return bool(status in USABLE_STATUSES)


def nfkc(x: str) -> str:
    """NFKC of one string (used by the differential test against python-stdnum)."""
    return unicodedata.normalize("NFKC", x)

