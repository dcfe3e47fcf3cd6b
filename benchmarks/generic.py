"""The baselines' input: the eight exports read and cleaned *generically*.

"Generic cleaning" is what a competent data team does without unigrid's Chinese-specific
knowledge: trim and upper-case text, collapse runs of whitespace, turn empty cells into nulls,
map each department's declared sex codes, unify date formats with pandas (trying the formats the
contracts declare), and keep the ID number text as it is: no 15 -> 18 digit upgrade, no
full-width digit fix, no traditional -> simplified names, no pinyin, no middle-dot folding.

Reading uses the project's readers (:mod:`connectors.readers`) and the contracts' column
mappings, so the baselines read exactly the records the pipeline reads. Records keep
``source`` and ``source_key`` (key columns joined with ``|``, as the contracts build it) so
they can be scored against ``truth/records.parquet``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

if TYPE_CHECKING:
    from connectors.contract import Contract
    from unigrid.settings import Settings

IDENTITY_FIELDS: tuple[str, ...] = ("id_number", "name", "sex", "birth_date", "address", "phone")
"""Canonical fields the baselines compare (the person-identifying ones every team would use)."""

RECORD_COLUMNS: tuple[str, ...] = ("source", "source_key", *IDENTITY_FIELDS)
"""Columns of a generic record frame, in order."""

DEFAULT_DATE_FORMATS: tuple[str, ...] = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d")
"""Formats tried for a date column whose contract declares none."""


def clean_text(s: pd.Series) -> pd.Series:
    """Trim, upper-case, collapse whitespace runs to one space; empty -> null."""
    t = s.astype("string").str.strip().str.upper().str.replace(r"\s+", " ", regex=True)
    return t.mask(t == "", pd.NA)


def clean_id(s: pd.Series) -> pd.Series:
    """ID number as a generic team keeps it: trimmed, upper-case, no inner blanks; empty -> null.

    Deliberately *not* done: 15 -> 18 digit upgrade, full-width digit folding, check digit.
    """
    t = s.astype("string").str.strip().str.upper().str.replace(r"\s+", "", regex=True)
    return t.mask(t == "", pd.NA)


def clean_phone(s: pd.Series) -> pd.Series:
    """Phone: keep the digits only; empty -> null."""
    t = s.astype("string").str.replace(r"\D+", "", regex=True)
    return t.mask(t == "", pd.NA)


def map_codes(s: pd.Series, codes: dict[str, str]) -> pd.Series:
    """Apply a department's declared code map (e.g. ``1`` -> ``男``); unmapped values stay."""
    t = clean_text(s)
    if not codes:
        return t
    upper = {str(k).strip().upper(): v for k, v in codes.items()}
    return t.replace(upper).astype("string")


def parse_dates(s: pd.Series, formats: Sequence[str] = DEFAULT_DATE_FORMATS) -> pd.Series:
    """Unify dates with pandas: try each format in turn, keep the first that parses.

    Returns ISO text ``YYYY-MM-DD`` (null where nothing parses), vectorised per format.
    """
    t = s.astype("string").str.strip()
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    for fmt in formats or DEFAULT_DATE_FORMATS:
        todo = out.isna() & t.notna()
        if not todo.any():
            break
        out[todo] = pd.to_datetime(t[todo], format=fmt, errors="coerce")
    return out.dt.strftime("%Y-%m-%d").astype("string")


def source_keys(frame: pd.DataFrame, key: Sequence[str]) -> pd.Series:
    """``source_key`` as the contracts build it: trimmed key parts joined by ``|``; null if a
    part is empty."""
    parts = [frame[k].astype("string").str.strip() for k in key]
    parts = [p.mask(p == "", pd.NA) for p in parts]
    out = parts[0]
    for p in parts[1:]:
        out = out + "|" + p
    return out


def clean_source(raw: pd.DataFrame, contract: "Contract") -> pd.DataFrame:
    """One source's raw text columns -> generic records (:data:`RECORD_COLUMNS`)."""
    out = pd.DataFrame(index=raw.index)
    out["source"] = contract.name
    out["source_key"] = source_keys(raw, contract.key)
    for f in IDENTITY_FIELDS:
        m = contract.column_for(f)
        if m is None or m.column not in raw.columns:
            out[f] = pd.Series(pd.NA, index=raw.index, dtype="string")
            continue
        col = raw[m.column]
        if f == "id_number":
            out[f] = clean_id(col)
        elif f == "sex":
            out[f] = map_codes(col, m.codes)
        elif f == "birth_date":
            out[f] = parse_dates(col, m.formats)
        elif f == "phone":
            out[f] = clean_phone(col)
        else:
            out[f] = clean_text(col)
    return out.reset_index(drop=True)


def default_wanted_url(source_root: Path) -> str:
    """Where the generator puts the SQL-held wanted list by default (a SQLite file)."""
    return f"sqlite:///{Path(source_root).resolve() / 'ps_wanted.sqlite'}"


def read_source_raw(contract: "Contract", settings: "Settings",
                    sql_url: str | None = None) -> pd.DataFrame:
    """Every row of one source as text columns, through the project's readers.

    ``sql_url`` overrides a SQL contract's location (files are found under source_root).
    """
    from connectors.readers import open_readers

    wanted = list(dict.fromkeys([*contract.key, *(m.column for f in IDENTITY_FIELDS
                                                  if (m := contract.column_for(f)))]))
    tables: list[pa.Table] = []
    data = sql_url if contract.format.type == "sql" else None
    for reader in open_readers(contract, settings, data=data):
        with reader:  # keep only the columns compared: memory stays small at city scale
            batches = [b.select([c for c in wanted if c in b.schema.names])
                       for b in reader.batches()]
        if batches:
            tables.append(pa.Table.from_batches(batches))
    if not tables:
        return pd.DataFrame(columns=wanted)
    return pa.concat_tables(tables, promote_options="default").to_pandas(
        types_mapper=lambda _t: pd.StringDtype())


def load_records(source_root: Path, contracts_dir: Path | None = None,
                 wanted_url: str | None = None,
                 sources: Iterable[str] | None = None) -> pd.DataFrame:
    """Read and generically clean every contract's export under ``source_root``.

    ``wanted_url``: the SQL-held wanted list's URL (default: the generator's SQLite file).
    Returns one frame of :data:`RECORD_COLUMNS`; records without a key are dropped (they cannot
    be scored, and the pipeline quarantines them too).
    """
    from connectors.contract import load_contracts
    from unigrid.settings import DEFAULT_CONTRACTS_DIR, Settings

    settings = replace(Settings(), source_root=Path(source_root),
                       contracts_dir=Path(contracts_dir or DEFAULT_CONTRACTS_DIR))
    url = wanted_url or default_wanted_url(Path(source_root))
    only = set(sources) if sources else None
    parts = []
    for contract in load_contracts(settings.contracts_dir):
        if only is not None and contract.name not in only:
            continue
        parts.append(clean_source(read_source_raw(contract, settings, url), contract))
    records = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=list(RECORD_COLUMNS))
    records = records[records["source_key"].notna()].reset_index(drop=True)
    return records[list(RECORD_COLUMNS)]


def connected_components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Cluster labels (0..k-1) of ``n`` nodes linked by the edges ``left[i] - right[i]``."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as cc

    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    _, labels = cc(graph, directed=False)
    return labels


def assignments(records: pd.DataFrame, labels: np.ndarray, prefix: str) -> pd.DataFrame:
    """``source, source_key, person_id`` frame (what ``matching.evaluate`` scores)."""
    return pd.DataFrame({"source": records["source"].to_numpy(),
                         "source_key": records["source_key"].astype(str).to_numpy(),
                         "person_id": (prefix + pd.Series(labels).astype(str)).to_numpy()})
