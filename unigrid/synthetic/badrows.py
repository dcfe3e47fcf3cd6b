"""Hard errors: rows a department's export gets wrong so badly that validation quarantines them.

Soft errors (``noise.py``) leave a record linkable; the kinds here break what a source contract
requires (``connectors/contracts/*.yaml``): the key, a ``required: true`` field, or a required
date that must parse. Each kind is a rate in :class:`~unigrid.synthetic.config.SourceErrors`:

| kind | what the export shows | validation rule |
|---|---|---|
| ``key_blank`` | the key column empty (subsistence: the case number) | ``key_missing`` |
| ``required_blank`` | a required non-key field empty (name, registry status, grid code, ...) | ``required_missing`` |
| ``date_unparseable`` | a required date / month as ``1985-02-30``, ``0000-00-00``, ``19851345``, ``不详`` | ``unparseable`` |
| ``row_twice`` | the same line exported twice, one after the other (a re-export) | ``duplicate_key`` (the second) |
| ``key_reused`` | another person's row carries the key of an earlier row (a copied number) | ``duplicate_key`` (the later) |

Planting happens once on day 1's frames (:func:`plant_bad_rows`), which keep the marks in
internal columns (``_bad`` kind, ``_bad_col`` column, ``_bad_was`` the value before), so a bad row
stays bad on day N unless a day's corrections put it right. ``row_twice`` rows are doubled only
when written (:func:`export_rows`). Truth (:func:`bad_rows_truth`) is derived from the written
rows: a mark counts only while its condition still holds.

Bad rows are planted only on records that carry no planted anomaly nor its evidence (wanted
persons, the dead in the registry / pension / subsidy lists, 重户 and 重号 persons, records whose
ID is another person's, unregistered newborns' certificates, death evidence of a registration
still 正常), so the anomaly truth stays what the rules can find in the staged rows.
"""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pandas as pd

from unigrid.synthetic.config import GeneratorConfig, SourceErrors
from unigrid.synthetic.population import City
from unigrid.synthetic.sources import ID_COLUMN, KEYS, SOURCES

KINDS = ("key_blank", "required_blank", "date_unparseable", "row_twice", "key_reused")
"""Hard error kinds, in planting order (one kind per row at most)."""
RULE = {"key_blank": "key_missing", "required_blank": "required_missing",
        "date_unparseable": "unparseable", "row_twice": "duplicate_key",
        "key_reused": "duplicate_key"}
"""The quarantine reason (docs/validation.md) validation gives each kind."""

REQUIRED: dict[str, tuple[str, ...]] = {
    "ps_household_registry": ("姓名", "户口状态"),
    "ps_wanted_list": ("xm", "sfzh", "ajbh"),
    "ca_cremation": ("逝者姓名", "死亡日期"),
    "ca_subsistence": ("低保证号", "姓名"),
    "hrss_pension_ledger": ("姓名", "月养老金", "最近发放月份"),
    "health_birth_cert": ("birth_date",),
    "health_death_cert": ("name", "death_date"),
    "grid_collection": ("网格编码", "姓名"),
}
"""Columns each source's contract marks ``required: true`` (a test checks the contracts)."""
BLANK_WEIGHTS: dict[str, tuple[float, ...]] = {
    "ps_household_registry": (0.8, 0.2), "ca_cremation": (0.7, 0.3),
    "hrss_pension_ledger": (0.6, 0.2, 0.2), "health_death_cert": (0.7, 0.3),
    "grid_collection": (0.4, 0.6),
}
"""How often each blankable required column is the blank one (default: equally)."""
REQUIRED_DATES: dict[str, tuple[str, str]] = {
    "ca_cremation": ("死亡日期", "date"), "hrss_pension_ledger": ("最近发放月份", "month"),
    "health_birth_cert": ("birth_date", "date"), "health_death_cert": ("death_date", "date"),
}
"""The required date (or month) column of a source and its kind: where ``date_unparseable`` goes."""
TRUTH_COLUMNS = ("source", "source_key", "row_no", "kind", "rule", "column", "person_id")
MARKS = ("_bad", "_bad_col", "_bad_was")
"""Internal columns carrying the planted marks."""


def rates(err: SourceErrors) -> dict[str, float]:
    """The hard-error rates of one source, by kind."""
    return {k: float(getattr(err, k)) for k in KINDS}


def source_errors(cfg: GeneratorConfig) -> dict[str, SourceErrors]:
    """Each source's :class:`SourceErrors`."""
    return {"ps_household_registry": cfg.registry, "ps_wanted_list": cfg.wanted,
            "ca_cremation": cfg.cremation, "ca_subsistence": cfg.subsidy,
            "hrss_pension_ledger": cfg.pension, "health_birth_cert": cfg.birth_cert,
            "health_death_cert": cfg.death_cert, "grid_collection": cfg.grid}


def _text(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """(stripped text of each cell, True where the cell is missing): vectorised."""
    s = pd.Series(values, dtype=object).reset_index(drop=True)
    na = s.isna().to_numpy()
    return s.where(~na, "").astype(str).str.strip(), na


def blank(values: pd.Series) -> np.ndarray:
    """True where a cell is empty as a reader sees it (None, NaN, blank text)."""
    text, na = _text(values)
    return na | (text == "").to_numpy()


def export_keys(name: str, frame: pd.DataFrame) -> pd.Series:
    """source_key of each row as the connectors build it: key parts trimmed and joined with
    ``|``; None when a part is empty."""
    empty = np.zeros(len(frame), dtype=bool)
    key = None
    for c in KEYS[name]:
        text, na = _text(frame[c])
        empty |= na | (text == "").to_numpy()
        key = text if key is None else key + "|" + text
    return key.astype(object).where(~empty, None)


def registry_normal(city: City, registry: pd.DataFrame) -> np.ndarray:
    """Per person: has a registry row with status 正常."""
    out = np.zeros(len(city.persons), dtype=bool)
    out[registry.loc[(registry["户口状态"] == "正常").to_numpy(), "_pid"].to_numpy()] = True
    return out


def eligible_rows(city: City, name: str, frame: pd.DataFrame, normal: np.ndarray) -> np.ndarray:
    """Rows that may get a hard error: none that carries an anomaly or is an anomaly's evidence.

    ``normal``: per person, a registry row with status 正常 (:func:`registry_normal`).
    """
    from unigrid.synthetic.truth import normalise_id

    P = city.persons
    pid = frame["_pid"].to_numpy()
    plain = (~P["is_wanted"].to_numpy() & (P["id_shared_with"].to_numpy() < 0)
             & P["second_id"].isna().to_numpy())
    ok = plain[pid]
    dead = P["death_date"].notna().to_numpy()
    if name in ("ca_cremation", "health_death_cert"):
        ok &= ~normal[pid]  # evidence only of deaths whose registration is cancelled (or none)
    elif name == "health_birth_cert":
        ok &= P["registered"].to_numpy()[pid]
    else:
        ok &= ~dead[pid]
    if name in ID_COLUMN:
        ids = normalise_id(frame[ID_COLUMN[name]]).to_numpy(dtype=object)
        own = P["id_number"].to_numpy(dtype=object)[pid]
        other = pd.Series(ids).isin(set(P["id_number"].dropna())).to_numpy() & (ids != own)
        ok &= ~other
    if "_dup" in frame:
        ok &= ~frame["_dup"].fillna(False).to_numpy(dtype=bool)
    return ok


def bad_date_texts(current: pd.Series, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Garbage a clerk types into a date (or YYYYMM month) cell, keeping the real year where
    there is one: ``1985-02-30``, ``0000-00-00``, ``19851345``, ``不详``."""
    year = pd.Series(current, dtype=object).astype(str).str.extract(r"(\d{4})")[0].fillna("2025")
    pick = rng.integers(0, 4, len(year))
    if kind == "month":
        choices = [year + "13", pd.Series("000000", index=year.index), year + "00",
                   pd.Series("不详", index=year.index)]
    else:
        choices = [year + "-02-30", pd.Series("0000-00-00", index=year.index), year + "1345",
                   pd.Series("不详", index=year.index)]
    return np.select([pick == i for i in range(4)], [c.to_numpy(dtype=object) for c in choices],
                     None)


def plant_source(name: str, frame: pd.DataFrame, ok: np.ndarray, err: SourceErrors,
                 rng: np.random.Generator) -> pd.DataFrame:
    """``frame`` with hard errors planted on rows where ``ok`` (marks in ``_bad*`` columns).

    Each kind picks each still clean eligible row with its rate. Pure apart from ``rng``.
    """
    f = frame.copy()
    n = len(f)
    bad = np.full(n, None, dtype=object)
    col = np.full(n, None, dtype=object)
    was = np.full(n, None, dtype=object)
    key_cols = KEYS[name]
    r = rates(err)
    free = ok.copy()

    def choose(rate: float) -> np.ndarray:
        hit = free & (rng.random(n) < rate)
        free[hit] = False
        return np.flatnonzero(hit)

    # key left empty (subsistence: the case number, the first key column)
    rows = choose(r["key_blank"])
    if len(rows):
        c = key_cols[0]
        f[c] = f[c].astype(object)
        was[rows] = f[c].to_numpy(dtype=object)[rows]
        f.iloc[rows, f.columns.get_loc(c)] = None
        bad[rows], col[rows] = "key_blank", "|".join(key_cols)
    # a required non-key field left empty
    blankable = [c for c in REQUIRED.get(name, ()) if c not in key_cols]
    rows = choose(r["required_blank"]) if blankable else np.empty(0, dtype=np.int64)
    if len(rows):
        w = np.asarray(BLANK_WEIGHTS.get(name, (1.0,) * len(blankable)), dtype=float)
        which = rng.choice(len(blankable), size=len(rows), p=w / w.sum())
        for i, c in enumerate(blankable):
            rr = rows[which == i]
            if len(rr):
                f[c] = f[c].astype(object)
                was[rr] = f[c].to_numpy(dtype=object)[rr]
                f.iloc[rr, f.columns.get_loc(c)] = None
                bad[rr], col[rr] = "required_blank", c
    # a required date that does not parse
    rows = choose(r["date_unparseable"]) if name in REQUIRED_DATES else np.empty(0, dtype=np.int64)
    if len(rows):
        c, kind = REQUIRED_DATES[name]
        f[c] = f[c].astype(object)
        cur = f[c].iloc[rows]
        was[rows] = cur.to_numpy(dtype=object)
        f.iloc[rows, f.columns.get_loc(c)] = bad_date_texts(cur, kind, rng)
        bad[rows], col[rows] = "date_unparseable", c
    # exported twice (doubled when written)
    rows = choose(r["row_twice"])
    bad[rows], col[rows] = "row_twice", "|".join(key_cols)
    # the key of the nearest earlier clean row of another person (a handful of rows: a loop)
    rows = choose(r["key_reused"])
    pid = f["_pid"].to_numpy()
    used = np.zeros(n, dtype=bool)
    for j in rows:
        cand = np.flatnonzero((bad[:j] == None) & ~used[:j] & (pid[:j] != pid[j]))  # noqa: E711
        if not len(cand):
            continue
        i = int(cand[-1])
        used[i] = True
        was[j] = "|".join(str(f[k].iat[j]) for k in key_cols)
        for k in key_cols:
            f.iat[j, f.columns.get_loc(k)] = f[k].iat[i]
        bad[j], col[j] = "key_reused", "|".join(key_cols)
    f["_bad"], f["_bad_col"], f["_bad_was"] = bad, col, was
    return f


def plant_bad_rows(city: City, frames: dict[str, pd.DataFrame], rng: np.random.Generator,
                   cfg: GeneratorConfig) -> None:
    """Plant every source's hard errors into ``frames`` (in place), each source in turn."""
    normal = registry_normal(city, frames["ps_household_registry"])
    errs = source_errors(cfg)
    for name in SOURCES:
        f = frames[name]
        ok = eligible_rows(city, name, f, normal) if len(f) else np.zeros(0, dtype=bool)
        frames[name] = plant_source(name, f, ok, errs[name], rng)


def bad_pids(frames: dict[str, pd.DataFrame]) -> np.ndarray:
    """Persons (row indices) with a marked bad row in any source: day N leaves them be (no
    death, no wanted entry), so no anomaly lands on a quarantined record."""
    parts = [f.loc[f["_bad"].notna().to_numpy(), "_pid"].to_numpy()
             for f in frames.values() if "_bad" in f]
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)


def export_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows as written: a ``row_twice`` row followed by its copy (the copy keeps the mark,
    the first occurrence is a normal row)."""
    if "_bad" not in frame:
        return frame
    twice = (frame["_bad"] == "row_twice").to_numpy()
    if not twice.any():
        return frame
    reps = np.where(twice, 2, 1)
    out = frame.iloc[np.repeat(np.arange(len(frame)), reps)].reset_index(drop=True)
    second = np.zeros(len(out), dtype=bool)
    second[np.cumsum(reps)[twice] - 1] = True
    first = np.repeat(twice, reps) & ~second
    for m in MARKS:
        v = out[m].to_numpy(dtype=object).copy()
        v[first] = None
        out[m] = v
    return out


def bad_rows_truth(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """truth/bad_rows.parquet from the frames *as written* (:func:`export_rows`): one row per
    planted hard error that still holds. ``row_no`` is the 1-based data row of the export (the
    line below the header; the JSON line; the SQL result row), ``source_key`` the row's key as
    the connectors see it (None when blank), ``person_id`` the row's true person."""
    from unigrid.synthetic.truth import person_ids

    parts = []
    for name in SOURCES:
        f = frames[name]
        if "_bad" not in f or not len(f):
            continue
        kind = f["_bad"].to_numpy(dtype=object)
        marked = pd.notna(kind)
        if not marked.any():
            continue
        key = export_keys(name, f)
        dup = (key.duplicated(keep="first") & key.notna()).to_numpy()
        holds = np.zeros(len(f), dtype=bool)
        holds |= (kind == "key_blank") & key.isna().to_numpy()
        holds |= np.isin(kind, ["row_twice", "key_reused"]) & dup
        col = f["_bad_col"].to_numpy(dtype=object)
        for c in set(col[np.isin(kind, ["required_blank", "date_unparseable"])]):
            at = col == c
            v = f[c].to_numpy(dtype=object)
            holds |= at & (kind == "required_blank") & blank(f[c])
            still = pd.Series(v).astype(str).to_numpy() != pd.Series(
                f["_bad_was"].to_numpy(dtype=object)).astype(str).to_numpy()
            holds |= at & (kind == "date_unparseable") & still & ~blank(f[c])
        rows = np.flatnonzero(holds)
        parts.append(pd.DataFrame({
            "source": name, "source_key": key.to_numpy(dtype=object)[rows],
            "row_no": (rows + 1).astype(np.int64), "kind": kind[rows],
            "rule": [RULE[k] for k in kind[rows]], "column": col[rows],
            "person_id": person_ids(f["_pid"].to_numpy()[rows])}))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "row_no" else "object")
                             for c in TRUTH_COLUMNS})
    return pd.concat(parts, ignore_index=True)[list(TRUTH_COLUMNS)]


def scaled_hard_errors(cfg: GeneratorConfig, factor: float) -> GeneratorConfig:
    """``cfg`` with every source's hard-error rates multiplied by ``factor`` (capped at 0.2):
    a small city that still exercises every kind (tests, demos of the quarantine)."""
    def scale(err: SourceErrors) -> SourceErrors:
        return replace(err, **{k: min(0.2, getattr(err, k) * factor) for k in KINDS})

    per = {f.name: scale(getattr(cfg, f.name)) for f in fields(cfg)
           if isinstance(getattr(cfg, f.name), SourceErrors)}
    return replace(cfg, **per)


__all__ = ["KINDS", "RULE", "REQUIRED", "REQUIRED_DATES", "plant_bad_rows", "plant_source",
           "export_rows", "export_keys", "bad_rows_truth", "eligible_rows", "bad_pids",
           "registry_normal", "scaled_hard_errors"]
