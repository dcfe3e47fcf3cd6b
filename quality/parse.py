"""The validation frame: a source's raw text rows parsed into canonical fields, vectorised.

One row per raw row (same order), indexed 0..n-1 by ``_rid``. Columns:

- ``_rid`` (int64): row id, GX reports failing rows by it;
- ``_source_key``: the record key, null when any key column is empty;
- ``_key_seq``: 1 for the first row of a key (order: file, row number), 2, 3, ... for later ones
  (``_dup_key + 1`` when the raw table has the connectors' ``_dup_key``: it counts over the
  whole extract, including unchanged rows that an incremental run does not land);
- per mapped field ``f``: ``f__raw`` (source text, stripped, code-mapped, blank = null) and
  ``f`` (parsed: text, cleaned ID text, 男/女, datetime64 for date/month/timestamp -- months
  as the first day of the month -- float for decimal, Int64 for integer; null when absent or
  unparseable);
- per ID field ``f`` additionally ``f__status``, ``f__birth_date``, ``f__birth_month``,
  ``f__sex`` and ``f__region_known`` (from :func:`matching.standardise.ids.classify_ids`;
  region_known is null unless the number is valid or legacy15).

Parsing calls the shared standardisers in :mod:`matching.standardise` (dates, sex, ids); only
decimal and integer parsing (``pd.to_numeric``) lives here.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from connectors.contract import ColumnMap, Contract
from quality.suites import INDEX_COLUMN, KEY_COLUMN, KEY_SEQ_COLUMN, id_col, raw_col

_NUMBER_NOISE = r"[,，\s¥￥元]"


def clean_text(s: pd.Series) -> pd.Series:
    """Strip whitespace (incl. full-width spaces); blank or null becomes None (object dtype)."""
    t = s.astype("object").where(s.notna(), None)
    t = t.str.strip()
    return t.where(t.notna() & (t != ""), None)


def apply_codes(s: pd.Series, codes: dict[str, str]) -> pd.Series:
    """Replace values found in ``codes`` (e.g. ``{'1': '男'}``); others unchanged."""
    if not codes:
        return s
    mapped = s.map(codes)
    return mapped.where(mapped.notna(), s)


def parse_decimal(s: pd.Series) -> pd.Series:
    """Text to float (thousands separators, spaces, ¥ and 元 removed); unparseable -> NaN."""
    t = s.astype("object").str.replace(_NUMBER_NOISE, "", regex=True)
    v = pd.to_numeric(t, errors="coerce")
    return v.where(np.isfinite(v.astype(float)))


def parse_integer(s: pd.Series) -> pd.Series:
    """Text to nullable Int64; non-integral or unparseable -> NA."""
    v = parse_decimal(s)
    v = v.where(v.round(0) == v)
    return v.astype("Int64")


def by_unique(fn: Callable[[pd.Series], pd.Series], s: pd.Series) -> pd.Series:
    """``fn`` applied to the distinct values of ``s`` only, spread back (same index as ``s``).

    Dates, months and sex codes repeat a lot (a million birth dates have ~40,000 distinct
    values): parsing each distinct value once is many times faster. ``fn`` must map nulls to
    nulls and keep its input's order.
    """
    codes, uniques = pd.factorize(s.astype("object"), use_na_sentinel=True)
    if len(uniques) == len(s):
        return fn(s)
    values = pd.Series(np.append(np.asarray(uniques, dtype=object), None), dtype="object")
    parsed = fn(values)
    codes = np.where(codes < 0, len(uniques), codes)
    out = parsed.take(codes)
    out.index = s.index
    return out


def parse_field(raw: pd.Series, cm: ColumnMap) -> pd.Series:
    """One field's stripped text parsed to its value type (nulls where absent or unparseable)."""
    vt = cm.value_type
    if vt == "text":
        return raw
    if vt == "id":
        from matching.standardise.ids import clean_id
        return clean_id(raw).astype("object").where(lambda x: x.notna(), None)
    if vt == "sex":
        from matching.standardise.sex import normalise_sex
        return by_unique(lambda x: normalise_sex(x, cm.codes or None), raw)
    if vt == "date":
        from matching.standardise.dates import parse_dates
        return by_unique(lambda x: parse_dates(x, cm.formats), raw)
    if vt == "month":
        from matching.standardise.dates import parse_months
        return by_unique(lambda x: parse_months(x, cm.formats), raw)
    if vt == "timestamp":
        from matching.standardise.dates import parse_timestamps
        return by_unique(lambda x: parse_timestamps(x, cm.formats), raw)
    if vt == "decimal":
        return by_unique(parse_decimal, raw)
    if vt == "integer":
        return by_unique(parse_integer, raw)
    raise ValueError(f"unknown value type {vt!r} of field {cm.field}")


def key_columns(raw: pd.DataFrame, contract: Contract, cleaned: bool = False,
                ) -> tuple[pd.Series, pd.Series]:
    """(``_source_key`` with null where any key column is blank, ``_key_seq``)."""
    clean = (lambda x: x) if cleaned else clean_text
    missing = pd.Series(False, index=raw.index)
    for k in contract.key:
        col = raw[k] if k in raw.columns else pd.Series(None, index=raw.index, dtype="object")
        missing |= clean(col).isna()
    if "_source_key" in raw.columns:
        key = clean_text(raw["_source_key"])
    else:
        parts = [clean(raw[k]).fillna("") for k in contract.key]
        key = parts[0].str.cat(parts[1:], sep="|") if len(parts) > 1 else parts[0]
    key = key.where(~missing & key.notna(), None)
    if "_dup_key" in raw.columns:
        # the connectors number duplicates over the whole extract, unchanged rows included
        seq = pd.to_numeric(raw["_dup_key"], errors="coerce").fillna(0).astype("float64") + 1
    else:
        seq = (key.groupby(key, sort=False, dropna=True).cumcount() + 1).astype("float64")
        seq = seq.reindex(key.index)
    return key, seq.where(key.notna())


def build_frame(raw: pd.DataFrame, contract: Contract, cleaned: bool = False,
                ) -> tuple[pd.DataFrame, list[str]]:
    """The validation frame of ``raw`` (rows in ``_rid`` order) and warnings (missing columns).

    ``cleaned``: the source columns are already stripped with blanks as null (as
    :func:`quality.validate.read_raw` does in SQL), so :func:`clean_text` is skipped.
    """
    n = len(raw)
    raw = raw.reset_index(drop=True)
    clean = (lambda x: x.astype("object")) if cleaned else clean_text
    warnings: list[str] = []
    out: dict[str, pd.Series] = {INDEX_COLUMN: pd.Series(np.arange(n, dtype=np.int64))}
    out[KEY_COLUMN], out[KEY_SEQ_COLUMN] = key_columns(raw, contract, cleaned)
    for cm in contract.columns:
        if cm.column in raw.columns:
            text = apply_codes(clean(raw[cm.column]), {} if cm.value_type == "sex" else cm.codes)
        else:
            warnings.append(f"{contract.name}: column {cm.column!r} ({cm.field}) not in the raw "
                            "table: treated as empty")
            text = pd.Series([None] * n, dtype="object")
        out[raw_col(cm.field)] = text
        out[cm.field] = parse_field(text, cm)  # standardisers keep the index
        if cm.value_type == "id":
            from matching.standardise.ids import classify_ids
            cl = classify_ids(text).reset_index(drop=True)
            usable = cl["id_status"].isin(["valid", "legacy15"]).fillna(False).astype(bool)
            out[id_col(cm.field, "status")] = cl["id_status"].astype("object")
            out[id_col(cm.field, "birth_date")] = cl["id_birth_date"]
            out[id_col(cm.field, "birth_month")] = cl["id_birth_date"].dt.to_period("M") \
                .dt.to_timestamp()
            out[id_col(cm.field, "sex")] = cl["id_sex"].astype("object").where(
                cl["id_sex"].notna(), None)
            out[id_col(cm.field, "region_known")] = cl["region_known"].astype("object").where(
                usable, None)
    frame = pd.DataFrame(out)
    return frame, warnings
