"""Ground truth beside the exports: persons, houses, grids, records and planted anomalies.

Anomalies are derived from the city's state and the export frames (not tracked by hand), so day N
truth stays consistent with day N exports.
"""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import pandas as pd

from unigrid.synthetic import idnum
from unigrid.synthetic.badrows import export_keys
from unigrid.synthetic.config import GeneratorConfig
from unigrid.synthetic.population import City
from unigrid.synthetic.sources import ID_COLUMN, SOURCES, source_keys

ANOMALIES = ("deceased_pensioner", "wanted_person_seen", "deceased_subsidy",
             "duplicate_registration", "death_not_cancelled", "birth_not_registered",
             "id_conflict")
PS_SOURCES = ("ps_household_registry", "ps_wanted_list")


def person_ids(pid: np.ndarray | pd.Series) -> np.ndarray:
    """``P`` + 8 digits from the person row index."""
    num = pd.Series(np.asarray(pid, dtype=np.int64) + 1, dtype=np.int64).astype(str).str.zfill(8)
    return ("P" + num).to_numpy(dtype=object)


def persons_truth(city: City) -> pd.DataFrame:
    """truth/persons.parquet."""
    p = city.persons
    houses = city.houses
    reg = p["registered"].to_numpy()
    reg_house = np.where(reg & (p["reg_house"].to_numpy() >= 0),
                         houses["house_id"].to_numpy()[np.maximum(p["reg_house"].to_numpy(), 0)], None)
    return pd.DataFrame({
        "person_id": person_ids(p["pid"]),
        "id_number": p["id_number"].to_numpy(),
        "name": p["name"].to_numpy(),
        "sex": np.where(p["male"].to_numpy(), "男", "女"),
        "birth_date": pd.to_datetime(p["birth_date"]).dt.date.to_numpy(),
        "ethnicity": p["ethnicity"].to_numpy(),
        "death_date": pd.to_datetime(p["death_date"]).dt.date.to_numpy(),
        "household_no": p["household_no"].to_numpy(),
        "relation_to_head": p["relation"].to_numpy(),
        "registered": reg,
        "migrant": p["migrant"].to_numpy(),
        "registered_house_id": reg_house,
        "actual_house_id": houses["house_id"].to_numpy()[p["act_house"].to_numpy()],
        "grid_code": houses["grid_code"].to_numpy()[p["act_house"].to_numpy()],
        "phone": p["phone"].to_numpy(),
        "is_wanted": p["is_wanted"].to_numpy(),
        "has_pension": p["has_pension"].to_numpy(),
        "in_subsidy": p["in_subsidy"].to_numpy(),
        "second_id_number": p["second_id"].to_numpy(),
    })


def records_truth(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """truth/records.parquet: the true person of every export record, from the frames as
    written (``badrows.export_rows``).

    One row per (source, source_key): a row with an empty key is no record, and of a key seen
    twice the first row (by row number) is the record, as validation keeps it. Those rows are in
    truth/bad_rows.parquet (with their own true person); other bad rows (a required field empty
    or unparseable) keep their record here: validation quarantines them, so they never link.
    """
    parts = []
    for name in SOURCES:
        f = frames[name]
        key = export_keys(name, f)
        keep = (key.notna() & ~key.duplicated(keep="first")).to_numpy()
        parts.append(pd.DataFrame({"source": name, "source_key": key.to_numpy(dtype=object)[keep],
                                   "person_id": person_ids(f["_pid"].to_numpy()[keep])}))
    return pd.concat(parts, ignore_index=True)


_ASCII = {ord(c): unicodedata.normalize("NFKC", c) for c in "０１２３４５６７８９Ｘｘ"}


def normalise_id(values: pd.Series) -> pd.Series:
    """What a careful reader makes of an ID cell: NFKC, upper case, 15 -> 18 digits.

    Excel-mangled numbers (floats, scientific text) and anything malformed become None.
    """
    s = pd.Series(values, dtype=object)
    text = s.where(s.map(lambda v: isinstance(v, str)), None)
    t = text.fillna("").str.translate(_ASCII).str.upper().str.replace(r"\s", "", regex=True)
    out = t.where(t.str.fullmatch(r"\d{17}[\dX]"), None)
    leg = t.str.fullmatch(r"\d{15}")
    if leg.any():
        first17 = t[leg].str[:6] + "19" + t[leg].str[6:]
        d = idnum.digits_of(first17.to_numpy(), 17) - 48
        out[leg] = first17 + idnum.check_chars(d)
    return out


def anomalies_truth(city: City, frames: dict[str, pd.DataFrame], cfg: GeneratorConfig) -> pd.DataFrame:
    """truth/anomalies.parquet: every planted anomaly, one row per (anomaly, record)."""
    p = city.persons
    bd = pd.Timestamp(city.business_date)
    death = pd.to_datetime(p["death_date"])
    dm = (death.dt.year * 100 + death.dt.month).to_numpy()
    rows: list[pd.DataFrame] = []

    def add(kind: str, source: str, f: pd.DataFrame, details: list[dict]) -> None:
        if len(f):
            rows.append(pd.DataFrame({
                "anomaly": kind, "person_id": person_ids(f["_pid"]), "source": source,
                "source_key": source_keys(source, f).to_numpy(),
                "detail": [json.dumps(d, ensure_ascii=False, sort_keys=True) for d in details]}))

    pen = frames["hrss_pension_ledger"]
    pdm = dm[pen["_pid"].to_numpy()]
    m = pen[(pdm > 0) & (pen["_last_paid"].to_numpy() > pdm)]
    add("deceased_pensioner", "hrss_pension_ledger", m, [
        {"death_month": int(d), "last_paid_month": int(lp),
         "months_overpaid": int((lp // 100 * 12 + lp % 100) - (d // 100 * 12 + d % 100)),
         "monthly_amount": float(a)}
        for d, lp, a in zip(dm[m["_pid"].to_numpy()], m["_last_paid"], m["月养老金"])])

    sub = frames["ca_subsistence"]
    sdm = dm[sub["_pid"].to_numpy()]
    m = sub[sub["_head"].to_numpy() & (sdm > 0) & (sub["_last_paid"].to_numpy() > sdm)]
    add("deceased_subsidy", "ca_subsistence", m, [
        {"death_month": int(d), "last_paid_month": int(lp), "monthly_amount": float(a)}
        for d, lp, a in zip(dm[m["_pid"].to_numpy()], m["_last_paid"], m["月保障金额"])])

    reg = frames["ps_household_registry"]
    m = reg[reg["_dup"].to_numpy()]
    first = reg[~reg["_dup"]].drop_duplicates("_pid").set_index("_pid")["人员编号"]
    add("duplicate_registration", "ps_household_registry", m,
        [{"first_key": first.get(pid)} for pid in m["_pid"]])

    evidence = set(frames["ca_cremation"]["_pid"]) | set(frames["health_death_cert"]["_pid"])
    rd = death.to_numpy()[reg["_pid"].to_numpy()]
    old = ~np.isnat(rd) & (rd <= (bd - pd.Timedelta(days=30)).to_datetime64())
    m = reg[(reg["户口状态"] == "正常").to_numpy() & old & reg["_pid"].isin(evidence).to_numpy()]
    crem, dcert = set(frames["ca_cremation"]["_pid"]), set(frames["health_death_cert"]["_pid"])
    add("death_not_cancelled", "ps_household_registry", m, [
        {"death_date": str(death.iloc[pid].date()),
         "evidence": [s for s, ids in (("ca_cremation", crem), ("health_death_cert", dcert))
                      if pid in ids]} for pid in m["_pid"]])

    bc = frames["health_birth_cert"]
    registered = set(reg["_pid"])
    birth = pd.to_datetime(p["birth_date"]).to_numpy()[bc["_pid"].to_numpy()]
    late = birth <= (bd - pd.Timedelta(days=cfg.birth_register_days)).to_datetime64()
    m = bc[late & ~bc["_pid"].isin(registered).to_numpy()]
    add("birth_not_registered", "health_birth_cert", m, [
        {"birth_date": str(pd.Timestamp(b).date()), "days_since_birth": int((bd - pd.Timestamp(b)).days)}
        for b in pd.to_datetime(p["birth_date"]).to_numpy()[m["_pid"].to_numpy()]])

    wanted = p["is_wanted"].to_numpy()
    wl = frames["ps_wanted_list"].set_index("_pid")["ztry_bh"]
    for name in SOURCES:
        if name in PS_SOURCES:
            continue
        f = frames[name]
        m = f[wanted[f["_pid"].to_numpy()]]
        add("wanted_person_seen", name, m, [{"wanted_no": wl.get(pid)} for pid in m["_pid"]])

    owners = pd.DataFrame({"id": p["id_number"].to_numpy(), "owner": p["pid"].to_numpy()})
    for name, col in ID_COLUMN.items():
        f = frames[name]
        ids = normalise_id(f[col])
        j = pd.DataFrame({"row": np.arange(len(f)), "id": ids.to_numpy(),
                          "pid": f["_pid"].to_numpy()}).dropna(subset=["id"])
        j = j.merge(owners, on="id")
        j = j[j["owner"] != j["pid"]]
        if not len(j):
            continue
        others = j.groupby("row")["owner"].apply(lambda s: sorted(person_ids(s).tolist()))
        m = f.iloc[others.index.to_numpy()]
        kinds = ["duplicate_issue" if p["id_shared_with"].iloc[pid] >= 0 else "typo_onto_real"
                 for pid in m["_pid"]]
        add("id_conflict", name, m, [{"other_person_ids": o, "kind": k}
                                     for o, k in zip(others.tolist(), kinds)])
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["anomaly", "person_id", "source", "source_key", "detail"])
    return out.sort_values(["anomaly", "source", "source_key"], kind="stable").reset_index(drop=True)
