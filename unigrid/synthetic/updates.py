"""Day N's everyday updates: the ~1 % of rows a typical night changes besides life events.

Life events (``days.py``: births, deaths, moves, registrations, corrections, a new wanted person)
touch about 0.1 % of the records a day. Real departments also edit their rows every day; here
each row of the four live registers is updated with probability ``daily_update_rate``
(``GeneratorConfig``; ``unigrid generate --churn`` overrides it):

| source | update (share of the source's updates) | columns that change |
|---|---|---|
| grid collection | a grid worker re-collects the person (new collection time); 30 %: the person has a new phone | 采集时间, 联系电话 |
| household registry | the address written anew, in another style (85 %); a living person moves out of the city (15 %: 注销, 迁出) | 户籍地址 / 户口状态, 注销日期, 注销原因; 更新时间 |
| pension ledger | contact details: a new phone or the address written anew (70 %); payment suspended or resumed (30 %) | 联系电话, 参保地址 / 发放状态, 最近发放月份 |
| subsistence roster | per household: the monthly amount raised by 3-15 % (90 %) or the household leaves (10 %: 停保) | 月保障金额 / 发放状态 (every member's row) |

Everything stays true to the city: a new phone is the person's phone in truth, an address is
the same house written again, status changes only touch living persons who carry no planted
anomaly, so ``truth/*.parquet`` stays right. Rows that are bad rows (``badrows.py``), whose key
is repeated, or that are not records of a living person are never updated; rows not picked stay
byte-identical. Draws come from their own stream ``default_rng([seed, day, 1])``, so the life
events do not depend on the rate and ``daily_update_rate = 0`` leaves exactly the life events.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from unigrid.synthetic import noise
from unigrid.synthetic.badrows import bad_pids, export_keys
from unigrid.synthetic.config import GeneratorConfig
from unigrid.synthetic.population import City, new_phones
from unigrid.synthetic.sources import addresses, pension_month

UPDATED_SOURCES = ("grid_collection", "ps_household_registry", "hrss_pension_ledger",
                   "ca_subsistence")
"""Sources with everyday updates (the others only change through life events)."""
CHANGED_COLUMNS: dict[str, frozenset[str]] = {
    "grid_collection": frozenset({"采集时间", "联系电话"}),
    "ps_household_registry": frozenset({"户籍地址", "户口状态", "注销日期", "注销原因", "更新时间"}),
    "hrss_pension_ledger": frozenset({"联系电话", "参保地址", "发放状态", "最近发放月份"}),
    "ca_subsistence": frozenset({"月保障金额", "发放状态"}),
}
"""The export columns an everyday update may change, per source (tests check this)."""
NEW_PHONE_SHARE = 0.3
MOVE_OUT_SHARE = 0.15
PENSION_STATUS_SHARE = 0.3
SUBSIDY_LEAVE_SHARE = 0.1


def _set(f: pd.DataFrame, rows: np.ndarray, col: str, values) -> None:
    if len(rows):
        f.loc[f.index[rows], col] = values


def updatable(name: str, f: pd.DataFrame, alive: np.ndarray, upto: int) -> np.ndarray:
    """Rows of ``f`` an everyday update may touch: among the first ``upto`` rows (not added
    today), no hard-error mark, a key seen once, the record of a living person."""
    ok = np.zeros(len(f), dtype=bool)
    ok[:upto] = True
    if "_bad" in f:
        ok &= f["_bad"].isna().to_numpy()
    key = export_keys(name, f)
    ok &= key.notna().to_numpy() & ~key.duplicated(keep=False).to_numpy()
    ok &= alive[f["_pid"].to_numpy()]
    return ok


def apply_updates(city: City, frames: dict[str, pd.DataFrame], day: int, cfg: GeneratorConfig,
                  upto: dict[str, int]) -> None:
    """Apply day ``day``'s everyday updates to ``frames`` (in place) after its life events.

    ``upto``: each source's row count before the day's life events (newer rows are not
    updated). A rate of 0 does nothing.
    """
    rate = cfg.daily_update_rate
    if rate <= 0:
        return
    rng = np.random.default_rng([city.seed, day, 1])
    bd = pd.Timestamp(city.business_date)
    P = city.persons
    alive = P["death_date"].isna().to_numpy()
    # persons a status change may touch: no anomaly, no evidence, no quarantined row
    plain = alive & ~P["is_wanted"].to_numpy() & P["second_id"].isna().to_numpy() \
        & (P["id_shared_with"].to_numpy() < 0)
    plain[bad_pids(frames)] = False
    ok = {name: updatable(name, frames[name], alive, upto[name]) for name in UPDATED_SOURCES}
    _grid(city, frames["grid_collection"], ok["grid_collection"], rng, cfg, bd)
    _registry(city, frames["ps_household_registry"], ok["ps_household_registry"], plain, rng,
              rate, bd)
    _pension(city, frames["hrss_pension_ledger"], ok["hrss_pension_ledger"], rng, cfg, bd)
    _subsidy(frames["ca_subsistence"], ok["ca_subsistence"], plain, rng, rate)


def rewritten(city: City, house: np.ndarray, current: np.ndarray, source: str,
              rng: np.random.Generator, tries: int = 4) -> np.ndarray:
    """The houses' addresses written anew in the source's styles, differing from ``current``
    where one of ``tries`` draws does (a house has a few ways of writing it)."""
    out = np.asarray(current, dtype=object).copy()
    todo = np.ones(len(out), dtype=bool)
    for _ in range(tries):
        idx = np.flatnonzero(todo)
        if not len(idx):
            break
        cand = addresses(city, house[idx], source, rng)
        fresh = cand != out[idx]
        out[idx[fresh]] = cand[fresh]
        todo[idx[fresh]] = False
    return out


def _new_phones(city: City, pids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Give persons ``pids`` a new phone number (truth follows) and return it per entry."""
    persons = np.unique(pids)
    if len(persons):
        city.persons.loc[persons, "phone"] = new_phones(rng, len(persons))
    return city.persons["phone"].to_numpy()[pids]


def _picked(rng: np.random.Generator, ok: np.ndarray, rate: float) -> np.ndarray:
    return np.flatnonzero(ok & (rng.random(len(ok)) < rate))


def _grid(city: City, g: pd.DataFrame, ok: np.ndarray, rng: np.random.Generator,
          cfg: GeneratorConfig, bd: pd.Timestamp) -> None:
    """Re-collection of persons still living where the row says; some have a new phone."""
    P = city.persons
    pid = g["_pid"].to_numpy()
    here = city.houses["grid_code"].to_numpy()[P["act_house"].to_numpy()[pid]]
    rows = _picked(rng, ok & (g["网格编码"].to_numpy() == here), cfg.daily_update_rate)
    if not len(rows):
        return
    _set(g, rows, "采集时间", noise.random_times(rng, pd.Series([bd] * len(rows)),
                                                 with_seconds=False).to_numpy())
    has_phone = P["phone"].notna().to_numpy()[pid[rows]]
    new = rows[has_phone & (rng.random(len(rows)) < NEW_PHONE_SHARE)]
    if len(new):
        phone = _new_phones(city, pid[new], rng)
        _set(g, new, "联系电话", noise.noisy_phones(pd.Series(phone), rng, cfg.grid).to_numpy())


def _registry(city: City, reg: pd.DataFrame, ok: np.ndarray, plain: np.ndarray,
              rng: np.random.Generator, rate: float, bd: pd.Timestamp) -> None:
    """Addresses written anew; a few plain living persons move out of the city (注销 迁出)."""
    P = city.persons
    pid = reg["_pid"].to_numpy()
    ok = ok & (reg["户口状态"] == "正常").to_numpy() & ~reg["_dup"].to_numpy().astype(bool)
    rows = _picked(rng, ok, rate)
    if not len(rows):
        return
    plain_row = plain[pid[rows]] & ~P["has_pension"].to_numpy()[pid[rows]] \
        & ~P["in_subsidy"].to_numpy()[pid[rows]]
    out = plain_row & (rng.random(len(rows)) < MOVE_OUT_SHARE)
    move, addr = rows[out], rows[~out]
    _set(reg, addr, "户籍地址", rewritten(city, P["reg_house"].to_numpy()[pid[addr]],
                                      reg["户籍地址"].to_numpy()[addr], "ps_household_registry",
                                      rng))
    _set(reg, move, "户口状态", "注销")
    _set(reg, move, "注销日期", bd.strftime("%Y-%m-%d"))
    _set(reg, move, "注销原因", "迁出")
    _set(reg, rows, "更新时间", noise.random_times(rng, pd.Series([bd] * len(rows))).to_numpy())


def _pension(city: City, pen: pd.DataFrame, ok: np.ndarray, rng: np.random.Generator,
             cfg: GeneratorConfig, bd: pd.Timestamp) -> None:
    """Contact details corrected; payments of living pensioners suspended or resumed."""
    P = city.persons
    pid = pen["_pid"].to_numpy()
    rows = _picked(rng, ok, cfg.daily_update_rate)
    if not len(rows):
        return
    status = pen["发放状态"].to_numpy()[rows]
    switch = np.isin(status, ["正常发放", "暂停"]) & (rng.random(len(rows)) < PENSION_STATUS_SHARE)
    if "_bad_col" in pen:  # never on a row whose month is garbled (it is no bad row here anyway)
        switch &= (pen["_bad_col"].to_numpy()[rows] != "最近发放月份")
    contact = rows[~switch]
    phone_or_addr = rng.random(len(contact)) < 0.5
    ph = contact[phone_or_addr]
    if len(ph):  # the pensioner reports a new phone number
        phone = _new_phones(city, pid[ph], rng)
        _set(pen, ph, "联系电话", noise.noisy_phones(pd.Series(phone), rng, cfg.pension).to_numpy())
    ad = contact[~phone_or_addr]  # the address written anew
    _set(pen, ad, "参保地址", rewritten(city, P["act_house"].to_numpy()[pid[ad]],
                                      pen["参保地址"].to_numpy()[ad], "hrss_pension_ledger", rng))
    sw = rows[switch]
    resume = pen["发放状态"].to_numpy()[sw] == "暂停"
    _set(pen, sw[~resume], "发放状态", "暂停")
    cur = pension_month(bd)
    _set(pen, sw[resume], "发放状态", "正常发放")
    _set(pen, sw[resume], "_last_paid", cur)
    _set(pen, sw[resume], "最近发放月份", str(cur))


def _subsidy(sub: pd.DataFrame, ok: np.ndarray, plain: np.ndarray, rng: np.random.Generator,
             rate: float) -> None:
    """Whole households: the monthly amount reviewed, or the household leaves (停保).

    Only households on 在保 whose every row may be updated and whose members are all plain
    (alive, no anomaly), so a deceased head's overpayment stays as planted.
    """
    if not len(sub):
        return
    case = sub["低保证号"].to_numpy(dtype=object)
    row_ok = ok & (sub["发放状态"] == "在保").to_numpy() & plain[sub["_pid"].to_numpy()]
    good = pd.Series(row_ok).groupby(case).all()
    cases = good.index.to_numpy()[good.to_numpy()]
    cases = cases[rng.random(len(cases)) < rate]
    if not len(cases):
        return
    leave = cases[rng.random(len(cases)) < SUBSIDY_LEAVE_SHARE]
    review = cases[~np.isin(cases, leave)]
    raise_by = pd.Series(rng.uniform(1.03, 1.15, len(review)), index=review)
    rows = np.flatnonzero(np.isin(case, review))
    amount = sub["月保障金额"].to_numpy(dtype=float)[rows] * raise_by.reindex(case[rows]).to_numpy()
    _set(sub, rows, "月保障金额", np.round(amount, 2))
    _set(sub, np.flatnonzero(np.isin(case, leave)), "发放状态", "停保")
