"""Errors of the kinds real departmental data has, applied vectorised to export columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from unigrid.synthetic import idnum, names
from unigrid.synthetic.config import SourceErrors


def pick(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """Boolean mask: each of ``n`` rows chosen with probability ``rate``."""
    return rng.random(n) < rate


def noisy_ids(true_ids: pd.Series, rng: np.random.Generator, err: SourceErrors,
              birth_year: np.ndarray | None = None, legacy_before: int = 1985,
              excel: bool = False) -> pd.Series:
    """ID numbers as a department writes them: legacy 15-digit, mistyped and transposed digits,
    lowercase x, full-width digits, missing; for XLSX some stored as Excel numbers.

    Returns an object Series of text (or float for Excel number cells); None for missing.
    """
    s = pd.Series(true_ids, dtype=object).reset_index(drop=True)
    n = len(s)
    has = s.notna().to_numpy()
    out = s.copy()
    ok = has & s.fillna("").str.len().eq(18).to_numpy()
    # mistyped digit / adjacent transposition on the 18-digit form
    typo = ok & pick(rng, n, err.id_mistyped)
    trans = ok & ~typo & pick(rng, n, err.id_transposed)
    for mask, kind in ((typo, "typo"), (trans, "swap")):
        idx = np.flatnonzero(mask)
        if not len(idx):
            continue
        d = idnum.digits_of(s.iloc[idx].to_numpy(), 18)
        rows = np.arange(len(idx))
        if kind == "typo":
            pos = rng.integers(0, 17, len(idx))
            old = d[rows, pos] - 48
            new = (old + rng.integers(1, 10, len(idx))) % 10
            d[rows, pos] = new + 48
        else:
            pos = rng.integers(0, 17, len(idx))
            same = d[rows, pos] == d[rows, pos + 1]
            pos = np.where(same, (pos + 1) % 16, pos)  # try the next pair when digits are equal
            a, b = d[rows, pos].copy(), d[rows, pos + 1].copy()
            d[rows, pos], d[rows, pos + 1] = b, a
        out.iloc[idx] = idnum.strings_of(d)
    clean = ok & ~typo & ~trans
    if birth_year is not None and err.id_legacy15:
        legacy = clean & (np.asarray(birth_year) < legacy_before) & pick(rng, n, err.id_legacy15)
        out[legacy] = idnum.to_legacy15(s[legacy])
    else:
        legacy = np.zeros(n, dtype=bool)
    text = out.fillna("").astype(str)
    endx = text.str.endswith("X").to_numpy()
    low = endx & pick(rng, n, err.id_lowercase_x)
    out[low] = text[low].str[:-1] + "x"
    full = has & pick(rng, n, err.id_fullwidth)
    out[full] = idnum.to_fullwidth(out[full].astype(str))
    if excel and err.id_excel_number:
        ex = ok & ~typo & ~trans & ~legacy & ~endx & pick(rng, n, err.id_excel_number)
        idx = np.flatnonzero(ex)
        as_num = rng.random(len(idx)) < 0.6
        vals = s.iloc[idx].astype(str)
        num = vals.str[:15].astype(np.int64).to_numpy() * 1000
        sci = ["{:.5E}".format(float(v)) for v in vals]  # only the Excel-mangled few
        out.iloc[idx] = np.where(as_num, num.astype(float), np.array(sci, dtype=object))
    miss = pick(rng, n, err.id_missing)
    out[miss] = None
    out.index = true_ids.index if isinstance(true_ids, pd.Series) else out.index
    return out


def noisy_names(p: pd.DataFrame, rng: np.random.Generator, err: SourceErrors,
                gbk: bool = False) -> pd.Series:
    """Names from person rows ``p`` (surname, given1, given2, minority_name, name) with
    homophone typos, traditional characters, inner spaces and middle-dot variants (only those
    a GBK system can store when ``gbk``)."""
    n = len(p)
    minority = p["minority_name"].notna().to_numpy()
    g1 = p["given1"].to_numpy(dtype=object).copy()
    g2 = p["given2"].to_numpy(dtype=object).copy()
    homo = ~minority & pick(rng, n, err.name_homophone)
    second = homo & (g2 != "") & (rng.random(n) < 0.5)
    first = homo & ~second
    if first.any():
        g1[first] = names.homophone_replace(rng, g1[first])
    if second.any():
        g2[second] = names.homophone_replace(rng, g2[second])
    han = p["surname"].astype(str).to_numpy(dtype=object) + g1 + g2
    out = pd.Series(np.where(minority, p["minority_name"].to_numpy(dtype=object), han),
                    index=p.index, dtype=object)
    trad = pick(rng, n, err.name_traditional)
    if trad.any():
        out[trad] = names.to_traditional(out[trad])
    dot = minority & pick(rng, n, err.name_dot_variant)
    if dot.any():
        out[dot] = names.dot_variant(out[dot], rng,
                                     names.GBK_DOT_VARIANTS if gbk else names.DOT_VARIANTS)
    space = pick(rng, n, err.name_space) & (out.str.len() >= 2).to_numpy()
    if space.any():
        out[space] = names.add_space(out[space], rng)
    return out


def noisy_phones(phones: pd.Series, rng: np.random.Generator, err: SourceErrors) -> pd.Series:
    """Phones with missing values, one wrong digit, or spaces / hyphens / +86."""
    s = pd.Series(phones, dtype=object).copy()
    n = len(s)
    has = s.notna().to_numpy()
    typo = has & pick(rng, n, err.phone_mistyped)
    if typo.any():
        d = idnum.digits_of(s[typo].to_numpy(), 11)
        rows = np.arange(len(d))
        pos = rng.integers(3, 11, len(d))
        d[rows, pos] = (d[rows, pos] - 48 + rng.integers(1, 10, len(d))) % 10 + 48
        s[typo] = idnum.strings_of(d)
    fmt = has & pick(rng, n, err.phone_formatted)
    if fmt.any():
        t = s[fmt].astype(str)
        style = rng.integers(0, 3, len(t))
        spaced = t.str[:3] + " " + t.str[3:7] + " " + t.str[7:]
        dashed = t.str[:3] + "-" + t.str[3:7] + "-" + t.str[7:]
        plus = "+86 " + t
        s[fmt] = np.select([style == 0, style == 1], [spaced, dashed], plus)
    s[pick(rng, n, err.phone_missing)] = None
    return s


DATE_STYLES = ("iso", "slash", "cn", "compact")


def format_dates(dates: pd.Series, styles: np.ndarray | str) -> pd.Series:
    """Format dates: ``iso`` 2023-05-03, ``slash`` 2023/5/3, ``cn`` 2023年5月3日, ``compact``
    20230503; ``styles`` is one style or one per row. NaT -> None.

    Each distinct date is formatted once (dates repeat a lot), then taken per row.
    """
    d = pd.to_datetime(pd.Series(dates).reset_index(drop=True))
    codes, uniq = pd.factorize(d)
    u = pd.DatetimeIndex(uniq)
    y, m, dd = u.year.astype(str), u.month.astype(str), u.day.astype(str)
    table = {
        "iso": np.asarray(u.strftime("%Y-%m-%d"), dtype=object),
        "slash": np.asarray(y + "/" + m + "/" + dd, dtype=object),
        "cn": np.asarray(y + "年" + m + "月" + dd + "日", dtype=object),
        "compact": np.asarray(u.strftime("%Y%m%d"), dtype=object),
    }
    if isinstance(styles, str):
        out = table[styles][codes] if len(uniq) else np.full(len(d), None, dtype=object)
    else:
        out = np.full(len(d), None, dtype=object)
        for name, col in table.items():
            sel = np.asarray(styles) == name
            out[sel] = col[codes[sel]] if len(uniq) else None
    out = np.asarray(out, dtype=object)
    out[codes < 0] = None
    return pd.Series(out, index=dates.index if isinstance(dates, pd.Series) else None, dtype=object)


_CLOCK = np.array([f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60)
                   for s in range(60)], dtype=object)
_CLOCK_MIN = np.array([c[:5] for c in _CLOCK], dtype=object)


def mixed_styles(rng: np.random.Generator, n: int, styles: tuple[str, ...],
                 p: tuple[float, ...]) -> np.ndarray:
    """Draw a date style per row."""
    arr = np.array(styles, dtype=object)
    return arr[rng.choice(len(arr), size=n, p=np.asarray(p) / sum(p))]


def random_times(rng: np.random.Generator, days: pd.Series, with_seconds: bool = True,
                 sep: str = " ") -> pd.Series:
    """Timestamps text on the given days at a random time of the working day (08:00-19:59)."""
    d = pd.Series(pd.to_datetime(pd.Series(days)).dt.normalize().to_numpy())
    secs = rng.integers(8 * 3600, 20 * 3600, len(d))
    clock = (_CLOCK if with_seconds else _CLOCK_MIN)[secs]
    day = format_dates(d, "iso").to_numpy(dtype=object)
    out = pd.Series(day + sep + clock, dtype=object)
    out.index = days.index if isinstance(days, pd.Series) else out.index
    return out
