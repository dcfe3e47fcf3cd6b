"""The synthetic population: households in houses, persons with names, IDs, deaths, pensions,
subsistence allowance, wanted persons, duplicate registrations and shared ID numbers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from unigrid.synthetic import geo, idnum, names
from unigrid.synthetic.config import GeneratorConfig

HH_SIZE_P = np.array([0.20, 0.30, 0.27, 0.13, 0.07, 0.03])
ETHNICITIES = np.array(["汉族", "土家族", "回族", "苗族", "维吾尔族", "哈萨克族"], dtype=object)


@dataclass
class City:
    """The city's state: geography, houses, persons (with internal columns) and addresses."""

    seed: int
    persons_n: int
    day: int
    business_date: date
    grids: pd.DataFrame
    houses: pd.DataFrame
    persons: pd.DataFrame
    addresses: np.ndarray
    """(n_houses, 8) address strings: styles 1-4 and four free-form variants."""


def _days(d: date) -> np.datetime64:
    return np.datetime64(d, "D")


def _age_years(birth: np.ndarray, on: np.datetime64) -> np.ndarray:
    return ((on - birth).astype("timedelta64[D]").astype(np.int64) / 365.25).astype(np.int64)


def adult_ages(rng: np.random.Generator, n: int) -> np.ndarray:
    """Ages of household heads (20..95): a pyramid bulging at 30-65."""
    ages = np.arange(20, 96)
    w = np.where(ages < 30, 0.6 + (ages - 20) * 0.04, np.where(ages <= 65, 1.0,
                 np.exp(-(ages - 65) / 10.0)))
    return rng.choice(ages, size=n, p=w / w.sum())


def build_households(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(household index per person, position within household) for exactly ``n`` persons."""
    sizes = rng.choice(np.arange(1, 7), size=n // 2 + 10, p=HH_SIZE_P)
    cum = np.cumsum(sizes)
    k = int(np.searchsorted(cum, n)) + 1
    sizes = sizes[:k].copy()
    sizes[-1] -= cum[k - 1] - n
    hh = np.repeat(np.arange(k), sizes)
    pos = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return hh, pos


def build_city(persons: int, seed: int, config: GeneratorConfig) -> City:
    """Build the day-1 city from (seed, persons): deterministic."""
    rngs = [np.random.default_rng([seed, 0, k]) for k in range(8)]
    bd = _days(config.day1)
    grids = geo.build_grids(persons, rngs[0], config.district_weights,
                            config.persons_per_community, config.persons_per_grid)
    hh, pos = build_households(persons, rngs[1])
    n_hh = int(hh.max()) + 1
    n_houses = int(np.ceil(n_hh * 1.12 / (1 - config.vacancy_rate)))
    houses = geo.build_houses(grids, n_houses, rngs[0])
    p = _people(hh, pos, bd, rngs[2], config)
    p = _place(p, houses, n_hh, rngs[3], config)
    p = _identify(p, houses, bd, rngs[4], config)
    p = _benefits(p, bd, rngs[5], config)
    grids = grids.drop(columns="_share")
    return City(seed=seed, persons_n=persons, day=1, business_date=config.day1, grids=grids,
                houses=houses, persons=p, addresses=geo.address_table(houses))


def _people(hh: np.ndarray, pos: np.ndarray, bd: np.datetime64, rng: np.random.Generator,
            config: GeneratorConfig) -> pd.DataFrame:
    """Relations, sex, birth dates, ethnicity and names of every person."""
    n = len(hh)
    n_hh = int(hh.max()) + 1
    u = rng.random(n)
    head_male = rng.random(n_hh) < 0.7
    rel = np.full(n, "其他", dtype=object)
    kind = np.full(n, "other", dtype=object)
    kind[pos == 0] = "head"
    kind[(pos == 1) & (u < 0.85)] = "spouse"
    kind[(pos == 1) & (u >= 0.85)] = "child"
    kind[(pos == 2) | (pos == 3)] = "child"
    kind[(pos == 4) & (u < 0.5)] = "parent"
    kind[(pos == 4) & (u >= 0.5)] = "grandchild"
    kind[(pos == 5) & (u < 0.5)] = "parent"
    male = rng.random(n) < 0.5
    male[kind == "head"] = head_male[hh[kind == "head"]]
    male[kind == "spouse"] = ~head_male[hh[kind == "spouse"]]
    head_age = adult_ages(rng, n_hh)[hh]
    age = np.zeros(n, dtype=np.int64)
    age[kind == "head"] = head_age[kind == "head"]
    sp = kind == "spouse"
    age[sp] = np.clip(head_age[sp] + np.round(rng.normal(0, 3, sp.sum())).astype(int)
                      + np.where(male[sp], 2, -2), 18, 99)
    ch = kind == "child"
    gap = rng.integers(22, 39, n)
    age[ch] = head_age[ch] - gap[ch]
    young = ch & (age < 0)
    age[young] = (rng.random(young.sum()) * np.maximum(1, head_age[young] - 19)).astype(int)
    gc = kind == "grandchild"
    age[gc] = head_age[gc] - rng.integers(45, 66, gc.sum())
    gc_bad = gc & (age < 0)
    kind[gc_bad] = "child"
    age[gc_bad] = (rng.random(gc_bad.sum()) * np.maximum(1, head_age[gc_bad] - 19)).astype(int)
    pa = kind == "parent"
    age[pa] = np.clip(head_age[pa] + rng.integers(22, 36, pa.sum()), 0, 101)
    ot = kind == "other"
    age[ot] = rng.integers(1, 81, ot.sum())
    rel[kind == "head"] = "户主"
    rel[kind == "spouse"] = "配偶"
    rel[(kind == "child")] = np.where(male[kind == "child"], "子", "女")
    rel[(kind == "grandchild")] = np.where(male[kind == "grandchild"], "孙子", "孙女")
    rel[(kind == "parent")] = np.where(male[kind == "parent"], "父亲", "母亲")
    birth = bd - (age * 365.25).astype("timedelta64[D]") - rng.integers(1, 365, n).astype(
        "timedelta64[D]")
    # ethnicity per household; minority (Uyghur/Kazakh) households get transliterated names
    eu = rng.random(n_hh)
    m = config.minority_household_rate
    eth_hh = np.select([eu < m * 0.8, eu < m, eu < m + 0.08, eu < m + 0.09, eu < m + 0.095],
                       [4, 5, 1, 2, 3], 0)
    eth = ETHNICITIES[eth_hh[hh]]
    minority = np.isin(eth_hh[hh], [4, 5])
    sn, sp_ = names.surname_table()
    own_surname = sn[rng.choice(len(sn), size=n, p=sp_)]
    head_idx = np.flatnonzero(pos == 0)[hh]
    inherits = np.isin(kind, ["head", "child", "grandchild"]) | ((kind == "parent") & male)
    surname = np.where(inherits, own_surname[head_idx], own_surname)
    parts = names.draw_han_names(rng, male, surname, config.rare_char_rate)
    mname = np.full(n, None, dtype=object)
    mname[minority] = names.draw_minority_names(rng, int(minority.sum()), eth[minority] == "哈萨克族")
    parts["minority_name"] = mname
    p = pd.DataFrame({"pid": np.arange(n), "hh": hh, "pos": pos, "relation": rel, "kind": kind,
                      "male": male, "birth_date": birth, "ethnicity": eth, "minority": minority})
    p = pd.concat([p, parts], axis=1)
    p["name"] = names.compose(parts, pd.Series(mname, dtype=object))
    return p


def _place(p: pd.DataFrame, houses: pd.DataFrame, n_hh: int, rng: np.random.Generator,
           config: GeneratorConfig) -> pd.DataFrame:
    """Houses: registered (household) and actual; migrants; household numbers."""
    order = rng.permutation(len(houses))
    hh_house = order[:n_hh]
    vacant = order[n_hh:]
    hh_migrant = rng.random(n_hh) < config.migrant_household_rate
    hh_moved = (rng.random(n_hh) < config.household_moved_rate) & ~hh_migrant
    hh_actual = hh_house.copy()
    nm = int(hh_moved.sum())
    hh_actual[hh_moved] = vacant[rng.integers(0, max(1, len(vacant)), nm)] if len(vacant) else \
        hh_house[rng.integers(0, n_hh, nm)]
    hh = p["hh"].to_numpy()
    reg = np.where(hh_migrant[hh], -1, hh_house[hh])
    act = hh_actual[hh].copy()
    moved = (rng.random(len(p)) < config.person_moved_rate) & (p["kind"].to_numpy() != "head")
    act[moved] = rng.integers(0, len(houses), int(moved.sum()))
    hh_no = np.array([f"{300000001 + i}" for i in range(n_hh)], dtype=object)
    p["migrant"] = hh_migrant[hh]
    p["reg_house"] = reg
    p["act_house"] = act
    p["household_no"] = np.where(hh_migrant[hh], None, hh_no[hh])
    return p


def _identify(p: pd.DataFrame, houses: pd.DataFrame, bd: np.datetime64,
              rng: np.random.Generator, config: GeneratorConfig) -> pd.DataFrame:
    """Deaths, registration of newborns, ID numbers (incl. second IDs and 重号), phones."""
    n = len(p)
    birth = p["birth_date"].to_numpy().astype("datetime64[D]")
    age = _age_years(birth, bd)
    # deaths in the last three years, age-weighted
    w = np.exp((np.minimum(age, 100) - 40) / 10.0)
    k = int(round(config.died_recently_rate * n))
    dead = rng.choice(n, size=k, replace=False, p=w / w.sum())
    death = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    death[dead] = bd - rng.integers(1, 3 * 365, k).astype("timedelta64[D]")
    death[dead] = np.maximum(death[dead], birth[dead] + np.timedelta64(1, "D"))
    p["death_date"] = death
    alive = np.isnat(death)
    # registration of newborns
    days_old = (bd - birth).astype(np.int64)
    u = rng.random(n)
    in_cert_age = days_old < config.birth_cert_years * 365
    newborn = days_old < config.newborn_unregistered_days
    late = (days_old > config.birth_register_days) & in_cert_age
    unregistered = (newborn & (u < 0.7)) | (late & (u < config.birth_unregistered_rate))
    unregistered &= p["kind"].to_numpy() == "child"
    p["registered"] = ~p["migrant"].to_numpy() & ~unregistered
    # ID numbers: local residents mostly from their district; migrants from elsewhere
    hubei, others = idnum.other_county_codes()
    hh = p["hh"].to_numpy()
    n_hh = int(hh.max()) + 1
    hh_code = np.where(rng.random(n_hh) < 0.5, hubei[rng.integers(0, len(hubei), n_hh)],
                       others[rng.integers(0, len(others), n_hh)])
    district = np.where(p["reg_house"].to_numpy() >= 0,
                        houses["district_code"].to_numpy()[np.maximum(p["reg_house"].to_numpy(), 0)],
                        houses["district_code"].to_numpy()[p["act_house"].to_numpy()])
    byear = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    region = idnum.local_region(district, byear)
    elsewhere = rng.random(n) < config.born_elsewhere_rate
    own_code = np.where(rng.random(n) < 0.5, hubei[rng.integers(0, len(hubei), n)],
                        others[rng.integers(0, len(others), n)])
    region = np.where(elsewhere, own_code, region)
    region = np.where(p["migrant"].to_numpy(), hh_code[hh], region)
    # duplicate registrations: a second ID (other region) for some registered persons
    reg = p["registered"].to_numpy()
    dup = reg & (age >= 16) & (rng.random(n) < config.duplicate_registration_rate)
    dup_idx = np.flatnonzero(dup)
    dcodes = np.array([c for _, c, _ in geo.DISTRICTS])
    dup_region = np.where(rng.random(len(dup_idx)) < 0.6, dcodes[rng.integers(0, 5, len(dup_idx))],
                          own_code[dup_idx])
    dup_region = np.where(dup_region == region[dup_idx], hubei[rng.integers(0, len(hubei),
                                                                            len(dup_idx))],
                          dup_region)
    all_ids = idnum.make_ids(np.concatenate([region, dup_region]),
                             np.concatenate([birth, birth[dup_idx]]),
                             np.concatenate([p["male"].to_numpy(), p["male"].to_numpy()[dup_idx]]))
    ids = all_ids[:n].copy()
    second = np.full(n, None, dtype=object)
    second[dup_idx] = all_ids[n:]
    # 重号: some persons were issued another person's number (same birth date and sex)
    male = p["male"].to_numpy()
    cand = np.flatnonzero(reg & alive & (age >= 25) & (age <= 60) & ~dup)
    kpairs = max(2, int(round(config.duplicate_issue_pairs_rate * n)))
    kpairs = min(kpairs, len(cand) // 4)
    chosen = (rng.choice(cand, size=min(len(cand), 4 * kpairs), replace=False) if kpairs
              else np.array([], int))
    a_list: list[int] = []
    b_list: list[int] = []
    for sex in (True, False):  # pair consecutive persons of the same sex
        same = chosen[male[chosen] == sex]
        half = len(same) // 2
        a_list += same[:half].tolist()
        b_list += same[half:2 * half].tolist()
    a_list, b_list = a_list[:kpairs], b_list[:kpairs]
    shared_with = np.full(n, -1, dtype=np.int64)
    if a_list:
        a_arr, b_arr = np.array(a_list), np.array(b_list)
        birth[a_arr] = birth[b_arr]
        ids[a_arr] = ids[b_arr]
        shared_with[a_arr] = b_arr
        shared_with[b_arr] = a_arr
    p["birth_date"] = birth
    p["id_number"] = ids
    p["second_id"] = second
    p["id_shared_with"] = shared_with
    # phones for persons aged 14+
    p["phone"] = np.where(age >= 14, new_phones(rng, n), None)
    return p


PHONE_PREFIXES = np.array(["130", "131", "132", "133", "135", "136", "137", "138", "139", "150",
                           "151", "152", "155", "157", "158", "159", "166", "176", "177", "180",
                           "181", "183", "186", "187", "188", "189", "199"], dtype=object)


def new_phones(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random mobile numbers (11 digits, a real prefix)."""
    body = rng.integers(0, 10**8, n)
    return PHONE_PREFIXES[rng.integers(0, len(PHONE_PREFIXES), n)] + \
        pd.Series(body).astype(str).str.zfill(8).to_numpy()


def _benefits(p: pd.DataFrame, bd: np.datetime64, rng: np.random.Generator,
              config: GeneratorConfig) -> pd.DataFrame:
    """Wanted persons, pensioners and subsistence-allowance households."""
    n = len(p)
    birth = p["birth_date"].to_numpy().astype("datetime64[D]")
    death = p["death_date"].to_numpy().astype("datetime64[D]")
    alive = np.isnat(death)
    ref = np.where(alive, bd, death)
    age = _age_years(birth, bd)
    age_ref = ((ref - birth).astype(np.int64) / 365.25).astype(np.int64)
    male = p["male"].to_numpy()
    reg = p["registered"].to_numpy()
    cand = np.flatnonzero(alive & (age >= 18) & (age <= 65) & (p["id_shared_with"].to_numpy() < 0))
    k = min(len(cand), max(3, int(round(config.wanted_rate * n))))
    wanted = np.zeros(n, dtype=bool)
    wanted[rng.choice(cand, size=k, replace=False)] = True
    p["is_wanted"] = wanted
    retire = np.where(male, 60, 55)
    p["has_pension"] = reg & (age_ref >= retire) & (rng.random(n) < config.pension_rate)
    hh = p["hh"].to_numpy()
    n_hh = int(hh.max()) + 1
    head = p["kind"].to_numpy() == "head"
    head_dead = np.zeros(n_hh, dtype=bool)
    head_dead[hh[head & ~alive]] = True
    hh_reg = np.zeros(n_hh, dtype=bool)
    hh_reg[hh[head & reg]] = True
    u = rng.random(n_hh)
    sub_hh = hh_reg & ((u < config.subsidy_household_rate)
                       | (head_dead & (u < config.subsidy_dead_head_rate)))
    # dead non-heads leave the roster; the head stays listed
    p["in_subsidy"] = sub_hh[hh] & reg & (alive | head)
    return p
