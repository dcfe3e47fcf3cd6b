"""Resident ID numbers (GB 11643-1999) for the synthetic city: vectorised, valid, unique."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
CHECK_CHARS = np.array(list("10X98765432"))
CITY_PREFIX = "4205"


def check_chars(first17: np.ndarray) -> np.ndarray:
    """Check characters for an (n, 17) array of digits (GB 11643)."""
    s = (np.asarray(first17, dtype=np.int64) * WEIGHTS).sum(axis=1) % 11
    return CHECK_CHARS[s]


def digits_of(numbers: pd.Series | np.ndarray, width: int) -> np.ndarray:
    """Turn a sequence of ``width``-character ASCII strings into an (n, width) uint8 array."""
    arr = np.asarray(numbers, dtype=f"S{width}")
    return arr.view(np.uint8).reshape(-1, width).copy()


def strings_of(chars: np.ndarray) -> np.ndarray:
    """Inverse of :func:`digits_of`: an (n, w) uint8 array back to Python strings."""
    w = chars.shape[1]
    return np.ascontiguousarray(chars).view(f"S{w}").ravel().astype(f"U{w}").astype(object)


def is_valid18(numbers: pd.Series) -> pd.Series:
    """True where a text value is a well-formed 18-character ID with a correct check character."""
    s = pd.Series(numbers, dtype=object).fillna("").astype(str)
    shaped = s.str.fullmatch(r"\d{17}[\dX]")
    out = pd.Series(False, index=s.index)
    if shaped.any():
        d = digits_of(s[shaped].to_numpy(), 18)
        ok = check_chars(d[:, :17] - 48) == d[:, 17].view("S1").astype("U1")
        out[shaped] = ok
    return out


def make_ids(region: np.ndarray, birth: np.ndarray, male: np.ndarray) -> np.ndarray:
    """Unique valid 18-digit IDs for persons given region codes, birth dates and sex.

    The sequence number is spread per (region, birth date, sex) group: ``h = (base + 3*rank) %
    497``, sequence ``2h+1`` for men and ``2h+2`` for women; groups stay below 497 members.
    """
    region = np.asarray(region).astype("U6")
    bdate = pd.to_datetime(np.asarray(birth)).strftime("%Y%m%d").to_numpy().astype("U8")
    male = np.asarray(male, dtype=bool)
    frame = pd.DataFrame({"r": region, "b": bdate, "m": male})
    rank = frame.groupby(["r", "b", "m"], sort=False).cumcount().to_numpy()
    base = (np.asarray(pd.to_datetime(np.asarray(birth)).dayofyear) * 31
            + region.astype(np.int64) % 1000 * 13) % 497
    h = (base + 3 * rank) % 497
    seq = np.where(male, 2 * h + 1, 2 * h + 2)
    first17 = np.char.add(np.char.add(region, bdate), np.char.zfill(seq.astype("U3"), 3))
    d = digits_of(first17, 17) - 48
    return np.char.add(first17, check_chars(d)).astype(object)


def to_legacy15(id18: pd.Series) -> pd.Series:
    """The legacy 15-digit form: region + YYMMDD + sequence, no check character."""
    s = id18.astype(str)
    return s.str[:6] + s.str[8:17]


_FULLWIDTH = str.maketrans("0123456789Xx", "０１２３４５６７８９Ｘｘ")


def to_fullwidth(s: pd.Series) -> pd.Series:
    """Digits and X in full-width form."""
    return s.astype(str).str.translate(_FULLWIDTH)


@lru_cache(maxsize=1)
def other_county_codes() -> tuple[np.ndarray, np.ndarray]:
    """County codes outside the city from python-stdnum's ``loc.dat`` (Hubei, rest of China).

    Only codes without validity brackets (valid for every birth year) and not 市辖区.
    Returns (hubei codes, other codes).
    """
    import stdnum.cn
    path = Path(stdnum.cn.__file__).parent / "loc.dat"
    codes: list[str] = []
    province = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if not line.startswith(" "):
            province = line.split()[0]
            continue
        num, _, rest = line.strip().partition(" ")
        name = rest.split("=", 1)[1].strip('"') if "=" in rest else ""
        if "[" in name or "市辖区" in name or num.endswith("00") or province in ("71", "81", "82"):
            continue
        code = province + num
        if code.startswith(CITY_PREFIX):
            continue
        codes.append(code)
    arr = np.array(codes)
    hubei = arr[np.char.startswith(arr, "42")]
    return hubei, arr[~np.char.startswith(arr, "42")]


def local_region(district_code: np.ndarray, birth_year: np.ndarray) -> np.ndarray:
    """Region code a city resident's ID was issued under: the district, or its predecessor.

    夷陵区 (420506) exists since 2001: older residents carry 宜昌县 420521; 猇亭区 (420505) since
    1995: older residents carry 420503 (伍家岗区).
    """
    code = np.asarray(district_code).astype("U6").copy()
    by = np.asarray(birth_year)
    code[(code == "420506") & (by < 2001)] = "420521"
    code[(code == "420505") & (by < 1995)] = "420503"
    return code
