"""Day N: the next night's snapshot of the same city.

A day's life events (below) and then its everyday updates (``updates.py``, about 1 % of the rows
at the default ``daily_update_rate``). Rows not touched stay exactly as they were (same values,
same key); changed rows keep their key and get a new update time where the export has one; new
rows get new keys. A day that reaches a pay day (pensions the 25th, subsidies the 10th) moves
every paying row's last paid month.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from unigrid.synthetic import idnum, names, noise
from unigrid.synthetic.badrows import MARKS, bad_pids
from unigrid.synthetic.config import GeneratorConfig
from unigrid.synthetic.population import City
from unigrid.synthetic.sources import (SEX_CN, addresses, birth_cert_rows, death_cert_rows,
                                       grid_rows, pension_month, subsidy_month)
from unigrid.synthetic.updates import apply_updates


def _next(keys: pd.Series, prefix_len: int) -> int:
    """The next free number of keys like ``HJ4205000123`` (blank keys of bad rows skipped)."""
    keys = keys.dropna()
    return int(keys.str[prefix_len:].astype(np.int64).max()) + 1 if len(keys) else 1


def _count(rate: float, n: int) -> int:
    return max(3, int(round(rate * n)))


def _set_rows(f: pd.DataFrame, rows: np.ndarray, col: str, values) -> None:
    f.loc[f.index[rows], col] = values


def apply_day(city: City, frames: dict[str, pd.DataFrame], day: int, cfg: GeneratorConfig) -> None:
    """Advance ``city`` and its export ``frames`` in place by one day (to day ``day``)."""
    rng = np.random.default_rng([city.seed, day])
    upto = {name: len(f) for name, f in frames.items()}
    old_bd = pd.Timestamp(city.business_date)
    bd = old_bd + pd.Timedelta(days=1)
    city.business_date = bd.date()
    city.day = day
    _pension_month(frames, old_bd, bd)
    _births(city, frames, rng, cfg, bd)
    _deaths(city, frames, rng, cfg, bd)
    _registrations(city, frames, rng, cfg, bd)
    _moves(city, frames, rng, cfg, bd)
    _corrections(city, frames, rng, cfg, bd)
    _new_wanted(city, frames, rng, cfg, bd)
    apply_updates(city, frames, day, cfg, upto)


def _stamp(rng: np.random.Generator, bd: pd.Timestamp, n: int, sep: str = " ",
           seconds: bool = True) -> np.ndarray:
    return noise.random_times(rng, pd.Series([bd] * n), with_seconds=seconds, sep=sep).to_numpy()


def _pension_month(frames: dict[str, pd.DataFrame], old: pd.Timestamp, bd: pd.Timestamp) -> None:
    """A new pension (or subsidy) month: rows being paid advance their last paid month."""
    f = frames["hrss_pension_ledger"]
    new, prev = pension_month(bd), pension_month(old)
    if new != prev:
        paid = (f["发放状态"] == "正常发放").to_numpy() & (f["_last_paid"].to_numpy() == prev)
        if "_bad_col" in f:  # a garbled month stays garbled (badrows.py)
            paid &= (f["_bad_col"] != "最近发放月份").to_numpy()
        f.loc[paid, "_last_paid"] = new
        f.loc[paid, "最近发放月份"] = str(new)
    s = frames["ca_subsistence"]
    new, prev = subsidy_month(bd), subsidy_month(old)
    if new != prev:
        paid = (s["发放状态"] == "在保").to_numpy() & (s["_last_paid"].to_numpy() == prev)
        s.loc[paid, "_last_paid"] = new
        s.loc[paid, "最近发放月份"] = f"{new // 100}-{new % 100:02d}"


def _births(city: City, frames: dict[str, pd.DataFrame], rng: np.random.Generator,
            cfg: GeneratorConfig, bd: pd.Timestamp) -> None:
    """New births yesterday: new persons (unregistered yet) and birth certificates."""
    P = city.persons
    n = _count(cfg.daily_birth_rate, len(P))
    age = (bd - pd.to_datetime(P["birth_date"])).dt.days / 365.25
    alive = P["death_date"].isna()
    mothers = P[alive & ~P["male"] & (age >= 21) & (age <= 40) & P["kind"].isin(["head", "spouse"])]
    mothers = mothers[mothers["hh"].isin(P.loc[P["kind"] == "spouse", "hh"])]
    hh = rng.choice(mothers["hh"].unique(), size=min(n, mothers["hh"].nunique()), replace=False)
    heads = P[P["kind"] == "head"].set_index("hh").loc[hh]
    k = len(hh)
    male = rng.random(k) < 0.51
    parts = names.draw_han_names(rng, male, heads["surname"].to_numpy())
    birth = np.full(k, (bd - pd.Timedelta(days=1)).to_datetime64().astype("datetime64[D]"))
    start = len(P)
    district = city.houses["district_code"].to_numpy()[heads["act_house"].to_numpy()]
    ids = _fresh_ids(P, idnum.local_region(district, np.full(k, bd.year)), birth, male)
    new = pd.DataFrame({
        "pid": np.arange(start, start + k), "hh": hh,
        "pos": P.groupby("hh")["pos"].max().reindex(hh).to_numpy() + 1,
        "relation": np.where(male, "子", "女"), "kind": "child", "male": male,
        "birth_date": birth.astype("datetime64[ns]"), "ethnicity": heads["ethnicity"].to_numpy(),
        "minority": False, "surname": parts["surname"].to_numpy(),
        "given1": parts["given1"].to_numpy(), "given2": parts["given2"].to_numpy(),
        "minority_name": None,
        "name": (parts["surname"] + parts["given1"] + parts["given2"]).to_numpy(),
        "migrant": heads["migrant"].to_numpy(), "reg_house": heads["reg_house"].to_numpy(),
        "act_house": heads["act_house"].to_numpy(),
        "household_no": heads["household_no"].to_numpy(), "death_date": pd.NaT,
        "registered": False, "id_number": ids, "second_id": None, "id_shared_with": -1,
        "phone": None, "is_wanted": False, "has_pension": False, "in_subsidy": False,
    })
    new = new[P.columns].astype({c: P[c].dtype for c in P.columns if P[c].dtype != object})
    city.persons = pd.concat([P, new], ignore_index=True)
    bc = frames["health_birth_cert"]
    rows = birth_cert_rows(city, city.persons.iloc[start:], rng, cfg, start=_next(bc["cert_no"], 3))
    rows["issued_at"] = _stamp(rng, bd, k, sep="T")
    frames["health_birth_cert"] = pd.concat([bc, rows], ignore_index=True)


def _fresh_ids(P: pd.DataFrame, region: np.ndarray, birth: np.ndarray, male: np.ndarray) -> np.ndarray:
    """Valid IDs not yet used by anybody (a few new persons: a small loop)."""
    used = set(P["id_number"]) | set(P["second_id"].dropna())
    out = []
    for r, b, m in zip(region, birth, male):
        ymd = pd.Timestamp(b).strftime("%Y%m%d")
        for h in range(497):
            seq = 2 * h + 1 if m else 2 * h + 2
            first17 = f"{r}{ymd}{seq:03d}"
            cand = first17 + idnum.check_chars(idnum.digits_of([first17], 17) - 48)[0]
            if cand not in used:
                used.add(cand)
                out.append(cand)
                break
    return np.array(out, dtype=object)


def _deaths(city: City, frames: dict[str, pd.DataFrame], rng: np.random.Generator,
            cfg: GeneratorConfig, bd: pd.Timestamp) -> None:
    """Deaths yesterday: death certificates, some cremations; registry not cancelled yet."""
    P = city.persons
    n = _count(cfg.daily_death_rate, len(P))
    age = ((bd - pd.to_datetime(P["birth_date"])).dt.days / 365.25).to_numpy()
    ok = (P["death_date"].isna() & ~P["is_wanted"] & (P["id_shared_with"] < 0)).to_numpy() & (age > 40)
    ok[bad_pids(frames)] = False  # no anomaly on a quarantined record
    cand = np.flatnonzero(ok)
    w = np.exp((np.minimum(age[cand], 100) - 40) / 10.0)
    dead = rng.choice(cand, size=min(n, len(cand)), replace=False, p=w / w.sum())
    city.persons.loc[dead, "death_date"] = bd - pd.Timedelta(days=1)
    p = city.persons.iloc[dead]
    dc = frames["health_death_cert"]
    rows = death_cert_rows(city, p, rng, cfg, start=_next(dc["cert_no"], 4))
    rows["reported_at"] = _stamp(rng, bd, len(p), sep="T")
    frames["health_death_cert"] = pd.concat([dc, rows], ignore_index=True)
    cr = frames["ca_cremation"]
    c = p[noise.pick(rng, len(p), 0.6)]
    if len(c):
        nums = cr["火化证号"].dropna().str[-7:].astype(np.int64)
        nxt = int(nums.max()) + 1 if len(nums) else 4200001
        from unigrid.synthetic.sources import _kin
        kin_name, kin_phone = _kin(city, c, rng)
        d = noise.format_dates(pd.Series([bd] * len(c)), "compact").to_numpy()
        new = pd.DataFrame({
            "火化证号": [f"HH{bd.year}{nxt + i}" for i in range(len(c))],
            "_pid": c["pid"].to_numpy(),
            "逝者姓名": noise.noisy_names(c, rng, cfg.cremation).to_numpy(),
            "性别": SEX_CN[c["male"].to_numpy().astype(int)],
            "身份证号": noise.noisy_ids(c["id_number"], rng, cfg.cremation, excel=True).to_numpy(),
            "出生日期": noise.format_dates(c["birth_date"], "cn").to_numpy(),
            "死亡日期": noise.format_dates(pd.Series([bd - pd.Timedelta(days=1)] * len(c)), "slash").to_numpy(),
            "火化日期": d,
            "户籍地址": addresses(city, np.where(c["reg_house"] >= 0, c["reg_house"], c["act_house"]),
                              "ca_cremation", rng),
            "家属姓名": kin_name, "家属电话": kin_phone,
        })
        frames["ca_cremation"] = pd.concat([cr, new.reindex(columns=cr.columns)], ignore_index=True)


def _registry_rows(city: City, p: pd.DataFrame, rng: np.random.Generator, cfg: GeneratorConfig,
                   bd: pd.Timestamp, start: int) -> pd.DataFrame:
    n = len(p)
    return pd.DataFrame({
        "人员编号": [f"HJ{start + i}" for i in range(n)],
        "_pid": p["pid"].to_numpy(),
        "户号": p["household_no"].to_numpy(),
        "姓名": noise.noisy_names(p, rng, cfg.registry, gbk=True).to_numpy(),
        "性别": SEX_CN[p["male"].to_numpy().astype(int)],
        "民族": p["ethnicity"].to_numpy(),
        "出生日期": noise.format_dates(p["birth_date"], "iso").to_numpy(),
        "公民身份号码": p["id_number"].to_numpy(),
        "与户主关系": p["relation"].to_numpy(),
        "户籍地址": addresses(city, p["reg_house"].to_numpy(), "ps_household_registry", rng),
        "户口状态": "正常", "注销日期": None, "注销原因": "",
        "登记日期": noise.format_dates(pd.Series([bd] * n), "iso").to_numpy(),
        "更新时间": _stamp(rng, bd, n),
        "_dup": False,
    })


def _registrations(city: City, frames: dict[str, pd.DataFrame], rng: np.random.Generator,
                   cfg: GeneratorConfig, bd: pd.Timestamp) -> None:
    """Some unregistered newborns get registered (one late birth too, when there is one)."""
    P = city.persons
    days = (bd - pd.to_datetime(P["birth_date"])).dt.days
    unreg = ~P["registered"] & ~P["migrant"] & P["death_date"].isna() & (P["reg_house"] >= 0)
    fresh = np.flatnonzero((unreg & (days >= 14) & (days < cfg.birth_register_days)).to_numpy())
    late = np.flatnonzero((unreg & (days >= cfg.birth_register_days)).to_numpy())
    pick = list(rng.choice(fresh, size=min(3, len(fresh)), replace=False))
    if len(late) and rng.random() < 0.5:
        pick.append(int(rng.choice(late)))
    if not pick:
        return
    city.persons.loc[pick, "registered"] = True
    reg = frames["ps_household_registry"]
    rows = _registry_rows(city, city.persons.iloc[pick], rng, cfg, bd, _next(reg["人员编号"], 2))
    frames["ps_household_registry"] = pd.concat([reg, rows.reindex(columns=reg.columns)],
                                                    ignore_index=True)


def _moves(city: City, frames: dict[str, pd.DataFrame], rng: np.random.Generator,
           cfg: GeneratorConfig, bd: pd.Timestamp) -> None:
    """Households move house; half transfer their registration too (registry rows change)."""
    P = city.persons
    k = _count(cfg.daily_move_rate / 2.5, len(P))
    heads = P[(P["kind"] == "head") & P["registered"] & P["death_date"].isna()]
    hh = rng.choice(heads["hh"].to_numpy(), size=min(k, len(heads)), replace=False)
    occupied = set(P["act_house"])
    free = np.array(sorted(set(range(len(city.houses))) - occupied))
    if not len(free):
        return
    new_house = free[rng.choice(len(free), size=len(hh), replace=False)] if len(free) >= len(hh) \
        else free[rng.integers(0, len(free), len(hh))]
    transfer = rng.random(len(hh)) < 0.5
    house_of = dict(zip(hh.tolist(), new_house.tolist()))
    members = P["hh"].isin(hh) & P["death_date"].isna()
    idx = np.flatnonzero(members.to_numpy())
    target = P["hh"].to_numpy()[idx]
    city.persons.loc[idx, "act_house"] = [house_of[h] for h in target]
    moved_reg = set(hh[transfer].tolist())
    ridx = [i for i, h in zip(idx, target) if h in moved_reg and P["registered"].iat[i]]
    city.persons.loc[ridx, "reg_house"] = [house_of[P["hh"].iat[i]] for i in ridx]
    reg = frames["ps_household_registry"]
    rows = np.flatnonzero(reg["_pid"].isin(ridx).to_numpy() & ~reg["_dup"].to_numpy()
                          & (reg["户口状态"] == "正常").to_numpy())
    if len(rows):
        pids = reg["_pid"].to_numpy()[rows]
        _set_rows(reg, rows, "户籍地址", addresses(city, city.persons["reg_house"].to_numpy()[pids],
                                                 "ps_household_registry", rng))
        _set_rows(reg, rows, "更新时间", _stamp(rng, bd, len(rows)))
    # the grid worker collects the moved heads at their new house
    g = frames["grid_collection"]
    heads_moved = city.persons[city.persons["hh"].isin(hh) & (city.persons["kind"] == "head")]
    new = grid_rows(city, heads_moved, pd.Series([bd] * len(heads_moved)), rng, cfg,
                    start=_next(g["采集编号"], 2) - 4205000000)
    frames["grid_collection"] = pd.concat([g, new.reindex(columns=g.columns)], ignore_index=True)


def _corrections(city: City, frames: dict[str, pd.DataFrame], rng: np.random.Generator,
                 cfg: GeneratorConfig, bd: pd.Timestamp) -> None:
    """Registry corrections: wrong IDs or names put right; a death finally cancelled.

    The department works through the quarantine report first: up to a third of the day's
    corrections go to rows with an empty required field (badrows.py), which get their ID and
    name put right and the empty field back.
    """
    P = city.persons
    reg = frames["ps_household_registry"]
    k = _count(cfg.daily_correction_rate, len(P))
    pid = reg["_pid"].to_numpy()
    true_id = P["id_number"].to_numpy()[pid]
    wrong = (reg["公民身份号码"].fillna("").to_numpy() != true_id) | (
        reg["姓名"].to_numpy() != P["name"].to_numpy()[pid])
    wrong &= ~reg["_dup"].to_numpy() & (reg["户口状态"] == "正常").to_numpy()
    wrong &= ~(P["id_shared_with"].to_numpy()[pid] >= 0)
    wrong &= ~reg["姓名"].str.contains("\u00b7|・|•|\\.", regex=True, na=False).to_numpy()
    bad = (reg["_bad"] == "required_blank").to_numpy() if "_bad" in reg else np.zeros(len(reg), bool)
    fix = np.flatnonzero(bad)
    fix = rng.choice(fix, size=min(max(1, k // 3), len(fix)), replace=False)
    cand = np.flatnonzero(wrong & ~bad)
    rows = np.concatenate([fix, rng.choice(cand, size=min(k - len(fix), len(cand)), replace=False)])
    rows = rows.astype(np.int64)
    if len(fix):
        cols = reg["_bad_col"].to_numpy(dtype=object)[fix]
        was = reg["_bad_was"].to_numpy(dtype=object)[fix]
        for c in set(cols):
            _set_rows(reg, fix[cols == c], c, was[cols == c])
        for m in MARKS:
            _set_rows(reg, fix, m, None)
    if len(rows):
        _set_rows(reg, rows, "公民身份号码", true_id[rows])
        _set_rows(reg, rows, "姓名", P["name"].to_numpy()[pid[rows]])
        _set_rows(reg, rows, "更新时间", _stamp(rng, bd, len(rows)))
    death = pd.to_datetime(P["death_date"]).to_numpy()[pid]
    stale = np.flatnonzero(~np.isnat(death) & (reg["户口状态"] == "正常").to_numpy()
                           & ~reg["_dup"].to_numpy()
                           & (death < (bd - pd.Timedelta(days=30)).to_datetime64()))
    if len(stale):
        r = rng.choice(stale, size=1)
        _set_rows(reg, r, "户口状态", "注销")
        _set_rows(reg, r, "注销日期", bd.strftime("%Y-%m-%d"))
        _set_rows(reg, r, "注销原因", "死亡")
        _set_rows(reg, r, "更新时间", _stamp(rng, bd, 1))


def _new_wanted(city: City, frames: dict[str, pd.DataFrame], rng: np.random.Generator,
                cfg: GeneratorConfig, bd: pd.Timestamp) -> None:
    """One more person on the wanted list."""
    P = city.persons
    age = (bd - pd.to_datetime(P["birth_date"])).dt.days / 365.25
    ok = (P["death_date"].isna() & ~P["is_wanted"] & (age >= 18) & (age <= 60)
          & (P["id_shared_with"] < 0)).to_numpy()
    ok[bad_pids(frames)] = False  # no anomaly on a quarantined record
    cand = np.flatnonzero(ok)
    if not len(cand):
        return
    i = int(rng.choice(cand))
    city.persons.loc[i, "is_wanted"] = True
    p = city.persons.iloc[[i]]
    w = frames["ps_wanted_list"]
    nxt = _next(w["ztry_bh"], 2) if len(w) else 20250001
    home = np.where(p["reg_house"] >= 0, p["reg_house"], p["act_house"])
    row = pd.DataFrame({
        "ztry_bh": [f"ZT{nxt}"], "_pid": [i],
        "xm": noise.noisy_names(p, rng, cfg.wanted).to_numpy(),
        "xb": ["1" if p["male"].iat[0] else "2"],
        "csrq": noise.format_dates(p["birth_date"], "compact").to_numpy(),
        "sfzh": p["id_number"].to_numpy(),
        "ajbh": [f"A420500{bd.year}{int(rng.integers(0, 10**6)):06d}"],
        "lasj": [bd.strftime("%Y-%m-%d")],
        "hjdz": addresses(city, home, "ps_wanted_list", rng),
        "gxsj": _stamp(rng, bd, 1),
    })
    frames["ps_wanted_list"] = pd.concat([w, row.reindex(columns=w.columns)], ignore_index=True)

