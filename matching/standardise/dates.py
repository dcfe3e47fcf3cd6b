"""Dates, months and timestamps in every format the departments' exports use.

Vectorised by format: each format is tried with ``pd.to_datetime(..., format=..., errors="coerce")``
on the rows still unparsed, so the cost is one C-level pass per format, never per-row Python.
Caller formats (a contract's ``formats``, strptime patterns) are tried first, then the built-in set.
Impossible dates (``2023-02-30``) are NaT, never rolled over. Text is NFKC-normalised first
(full-width digits), surrounding whitespace removed.

Built-in date formats: ``2023-05-03``, ``2023/5/3``, ``2023.5.3``, ``2023年5月3日``, ``20230503``
(exactly 8 digits), ISO timestamps and ``YYYY-MM-DD HH:MM[:SS]`` (the date part, as written: no
time-zone conversion), Excel serial numbers (whole or fractional numbers 20000..60000 ->
1899-12-30 + n days, i.e. 1954-10-04 .. 2064-04-08), two-digit years ``85-3-12``, ``85/3/12``,
``85.3.12``, ``85年3月12日``.

Two-digit years pivot at ``TWO_DIGIT_PIVOT`` (30): ``00``..``29`` -> 2000..2029, ``30``..``99`` ->
1930..1999. Pass ``pivot=`` to change it (``pivot=0`` reads every two-digit year as 19xx, right
for old systems that predate 2000). A bare 6-digit number is *not* read as ``YYMMDD`` (it is
ambiguous with ``YYYYMM``); use :func:`parse_months` for ``YYYYMM`` or pass ``formats=["%y%m%d"]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

TWO_DIGIT_PIVOT = 30
"""Two-digit years below this are 20xx, the rest 19xx."""
EXCEL_EPOCH = pd.Timestamp("1899-12-30")
EXCEL_MIN, EXCEL_MAX = 20000, 60000
"""Excel serial numbers accepted as dates (1954-10-04 .. 2064-04-08)."""

DATE_FORMATS: tuple[tuple[str, str], ...] = (
    # (strptime format, full-match regex that guards it)
    ("%Y-%m-%d", r"\d{4}-\d{1,2}-\d{1,2}"),
    ("%Y/%m/%d", r"\d{4}/\d{1,2}/\d{1,2}"),
    ("%Y.%m.%d", r"\d{4}\.\d{1,2}\.\d{1,2}"),
    ("%Y年%m月%d日", r"\d{4}年\d{1,2}月\d{1,2}日"),
    ("%Y%m%d", r"\d{8}"),
)
"""Built-in date formats, in the order tried."""

MONTH_FORMATS: tuple[tuple[str, str], ...] = (
    ("%Y%m", r"\d{6}"),
    ("%Y-%m", r"\d{4}-\d{1,2}"),
    ("%Y/%m", r"\d{4}/\d{1,2}"),
    ("%Y.%m", r"\d{4}\.\d{1,2}"),
    ("%Y年%m月", r"\d{4}年\d{1,2}月"),
)
"""Built-in month formats (result: first day of the month)."""

TIMESTAMP_FORMATS: tuple[tuple[str, str], ...] = (
    ("%Y-%m-%d %H:%M:%S", r"\d{4}-\d{1,2}-\d{1,2} \d{1,2}:\d{2}:\d{2}"),
    ("%Y-%m-%dT%H:%M:%S", r"\d{4}-\d{1,2}-\d{1,2}T\d{1,2}:\d{2}:\d{2}"),
    ("%Y-%m-%d %H:%M", r"\d{4}-\d{1,2}-\d{1,2} \d{1,2}:\d{2}"),
    ("%Y-%m-%dT%H:%M", r"\d{4}-\d{1,2}-\d{1,2}T\d{1,2}:\d{2}"),
    ("%Y/%m/%d %H:%M:%S", r"\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d{2}:\d{2}"),
    ("%Y/%m/%d %H:%M", r"\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d{2}"),
    ("%Y%m%d%H%M%S", r"\d{14}"),
)
"""Built-in timestamp formats; anything else ISO 8601 goes through pandas' ISO parser."""

_TIME_SUFFIX = r"(?:[T ]|\s+)\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2})?"
_STRING = pd.StringDtype("python")
_ARROW = pd.StringDtype("pyarrow")  # internal text: RE2 matches and replacements in C++


def _prepare(s: pd.Series) -> pd.Series:
    """Text for parsing (Arrow-backed): NFKC, stripped, inner runs of spaces collapsed, empty -> NA."""
    t = s.astype(_ARROW).str.normalize("NFKC").str.strip()
    t = t.str.replace(r"\s+", " ", regex=True)
    return t.mask(t == "")


def _empty(index: pd.Index) -> pd.Series:
    return pd.Series(pd.NaT, index=index, dtype="datetime64[ns]")


def _try(out: pd.Series, t: pd.Series, fmt: str, guard: str | None = None) -> pd.Series:
    """Fill NaT rows of ``out`` with ``t`` parsed by ``fmt`` (only rows matching ``guard``)."""
    todo = out.isna() & t.notna()
    if guard is not None:
        todo &= t.str.fullmatch(guard, na=False)
    if not todo.any():
        return out
    parsed = pd.to_datetime(t[todo], format=fmt, errors="coerce")
    return out.fillna(parsed.astype("datetime64[ns]"))


def _excel_serial(out: pd.Series, t: pd.Series) -> pd.Series:
    todo = out.isna() & t.str.fullmatch(r"\d{5}(?:\.\d+)?", na=False)
    if not todo.any():
        return out
    n = pd.to_numeric(t[todo], errors="coerce").astype(float)
    n = n[(n >= EXCEL_MIN) & (n <= EXCEL_MAX)]
    days = np.floor(n.to_numpy(dtype=float)).astype(np.int64)
    parsed = pd.Series(EXCEL_EPOCH + pd.to_timedelta(days, unit="D"), index=n.index)
    return out.fillna(parsed.astype("datetime64[ns]"))


def _two_digit_year(out: pd.Series, t: pd.Series, pivot: int) -> pd.Series:
    todo = out.isna() & t.notna()
    if not todo.any():
        return out
    parts = t[todo].str.extract(
        r"^(?P<y>\d{2})(?:(?P<s>[-/.])(?P<m>\d{1,2})(?P=s)(?P<d>\d{1,2})"
        r"|年(?P<m2>\d{1,2})月(?P<d2>\d{1,2})日?)$"
    )
    parts = parts.dropna(subset=["y"])
    if parts.empty:
        return out
    yy = parts["y"].astype(int)
    year = np.where(yy < pivot, 2000 + yy, 1900 + yy)
    month = parts["m"].fillna(parts["m2"]).astype(int)
    day = parts["d"].fillna(parts["d2"]).astype(int)
    parsed = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": day},
                                         index=parts.index), errors="coerce")
    return out.fillna(parsed.astype("datetime64[ns]"))


def _already_datetime(s: pd.Series) -> pd.Series | None:
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        if getattr(s.dt, "tz", None) is not None:
            s = s.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
        return s.astype("datetime64[ns]")
    return None


def _numbers_as_text(s: pd.Series) -> pd.Series:
    """Numeric columns (Excel cells) as text without a trailing ``.0``."""
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        f = s.astype(float)
        whole = f.notna() & np.isfinite(f) & (np.floor(f) == f)
        t = f.astype(_ARROW)
        return t.where(~whole, f.where(whole).astype("Int64").astype(_ARROW))
    t = s.astype(_ARROW)
    float_text = t.str.fullmatch(r"[0-9]+\.0+").fillna(False).astype(bool)
    if float_text.any():
        t = t.where(~float_text, t.str.replace(r"\.0+$", "", regex=True))
    return t


def _parse_dates(s: pd.Series, formats: Sequence[str] = (), *, pivot: int = TWO_DIGIT_PIVOT) -> pd.Series:
    """Parse dates; returns datetime64[ns] (midnight), NaT where nothing parses.

    ``formats`` (strptime patterns) are tried first, then the built-in set of the module docstring.
    Datetime input is returned as dates (time dropped; tz-aware converted to Asia/Shanghai).
    """
    done = _already_datetime(s)
    if done is not None:
        return done.dt.normalize()
    t = _prepare(_numbers_as_text(s))
    out = _empty(s.index)
    for fmt in formats:
        out = _try(out, t, fmt)
    timed = t.str.contains(":", regex=False).fillna(False).astype(bool)
    date_part = t.where(~timed, t.str.replace(f"{_TIME_SUFFIX}$", "", regex=True).str.strip())
    for fmt, guard in DATE_FORMATS:
        out = _try(out, date_part, fmt, guard)
    out = _excel_serial(out, t)
    out = _two_digit_year(out, date_part, pivot)
    return out.dt.normalize()


def _parse_months(s: pd.Series, formats: Sequence[str] = ()) -> pd.Series:
    """Parse months (``YYYYMM``, ``YYYY-MM``, ``YYYY/MM``, ``YYYY.MM``, ``YYYY年M月``) to the first day.

    ``formats`` first; full dates (any :func:`parse_dates` format) also give their month's first
    day. Returns datetime64[ns]; NaT where nothing parses or the month is not 1..12.
    """
    done = _already_datetime(s)
    if done is not None:
        return done.dt.to_period("M").dt.to_timestamp().astype("datetime64[ns]")
    t = _prepare(_numbers_as_text(s))
    out = _empty(s.index)
    for fmt in formats:
        out = _try(out, t, fmt)
    for fmt, guard in MONTH_FORMATS:
        out = _try(out, t, fmt, guard)
    rest = out.isna() & t.notna()
    if rest.any():
        out = out.fillna(_parse_dates(s[rest]))
    return out.dt.to_period("M").dt.to_timestamp().astype("datetime64[ns]")


def _parse_timestamps(s: pd.Series, formats: Sequence[str] = ()) -> pd.Series:
    """Parse timestamps; returns naive datetime64[ns] in local (Asia/Shanghai) time.

    ``formats`` first, then the built-in timestamp formats, then pandas' ISO 8601 parser (offsets
    converted to Asia/Shanghai), then :func:`parse_dates` (midnight) for date-only values.
    """
    done = _already_datetime(s)
    if done is not None:
        return done
    t = _prepare(_numbers_as_text(s))
    out = _empty(s.index)
    for fmt in formats:
        out = _try(out, t, fmt)
    for fmt, guard in TIMESTAMP_FORMATS:
        out = _try(out, t, fmt, guard)
    iso = out.isna() & t.str.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*", na=False)
    if iso.any():
        parsed = pd.to_datetime(t[iso], format="ISO8601", errors="coerce", utc=True)
        local = parsed.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
        # a value without offset was read as UTC above: take its wall time as written
        naive = ~t[iso].str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True, na=False)
        local = local.where(~naive, parsed.dt.tz_localize(None))
        out = out.fillna(local.astype("datetime64[ns]"))
    # date-only values are midnight; a value with a time part that did not parse stays NaT
    rest = out.isna() & t.notna() & ~t.str.contains(r"\d:\d{2}", regex=True, na=False)
    if rest.any():
        out = out.fillna(_parse_dates(s[rest]))
    return out


def _by_distinct(s: pd.Series, parse: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """Apply ``parse`` once per distinct value (``pd.factorize``) and spread the result back."""
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        out = parse(s.reset_index(drop=True))
        out.index = s.index
        return out
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    if len(uniques) == 0:
        return _empty(s.index)
    parsed = parse(pd.Series(uniques)).to_numpy(dtype="datetime64[ns]")
    values = np.where(codes >= 0, parsed[np.maximum(codes, 0)], np.datetime64("NaT", "ns"))
    return pd.Series(values, index=s.index, dtype="datetime64[ns]")


def parse_dates(s: pd.Series, formats: Sequence[str] = (), *, pivot: int = TWO_DIGIT_PIVOT) -> pd.Series:
    """Parse dates; returns datetime64[ns] (midnight), NaT where nothing parses.

    ``formats`` (strptime patterns) are tried first, then the built-in set of the module docstring.
    Datetime input is returned as dates (time dropped; tz-aware converted to Asia/Shanghai).
    Each distinct value is parsed once (dates repeat a lot).
    """
    return _by_distinct(s, lambda u: _parse_dates(u, formats, pivot=pivot))


def parse_months(s: pd.Series, formats: Sequence[str] = ()) -> pd.Series:
    """Parse months (``YYYYMM``, ``YYYY-MM``, ``YYYY/MM``, ``YYYY.MM``, ``YYYY年M月``) to the first day.

    ``formats`` first; full dates (any :func:`parse_dates` format) also give their month's first
    day. Returns datetime64[ns]; NaT where nothing parses or the month is not 1..12.
    """
    return _by_distinct(s, lambda u: _parse_months(u, formats))


def parse_timestamps(s: pd.Series, formats: Sequence[str] = ()) -> pd.Series:
    """Parse timestamps; returns naive datetime64[ns] in local (Asia/Shanghai) time.

    ``formats`` first, then the built-in timestamp formats, then pandas' ISO 8601 parser (offsets
    converted to Asia/Shanghai), then :func:`parse_dates` (midnight) for date-only values.
    """
    return _by_distinct(s, lambda u: _parse_timestamps(u, formats))
