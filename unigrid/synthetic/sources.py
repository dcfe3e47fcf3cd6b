"""Each department's export, built from the city as a DataFrame of the export's own columns.

Every frame also carries internal columns starting with ``_`` (never written): ``_pid`` (the
person's row index in ``City.persons``) and the facts anomaly detection and day-N changes need.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from unigrid.synthetic import geo, names, noise
from unigrid.synthetic.config import GeneratorConfig
from unigrid.synthetic.population import City

SOURCES = ("ps_household_registry", "ps_wanted_list", "ca_cremation", "ca_subsistence",
           "hrss_pension_ledger", "health_birth_cert", "health_death_cert", "grid_collection")
"""Source (contract) names, in manifest order."""
KEYS: dict[str, tuple[str, ...]] = {
    "ps_household_registry": ("人员编号",), "ps_wanted_list": ("ztry_bh",),
    "ca_cremation": ("火化证号",), "ca_subsistence": ("低保证号", "序号"),
    "hrss_pension_ledger": ("社保编号",), "health_birth_cert": ("cert_no",),
    "health_death_cert": ("cert_no",), "grid_collection": ("采集编号",),
}
"""Key columns per source; source_key = the key values joined with ``|``."""
ID_COLUMN = {"ps_household_registry": "公民身份号码", "ps_wanted_list": "sfzh",
             "ca_cremation": "身份证号", "ca_subsistence": "身份证号",
             "hrss_pension_ledger": "身份证号", "health_death_cert": "id_number",
             "grid_collection": "身份证号"}
"""The column holding the record subject's own ID number (birth certificates have none)."""

# Address style probabilities (styles 1..5) per source.
STYLE_P = {
    "ps_household_registry": (0.05, 0.25, 0.60, 0.10, 0.0),
    "ps_wanted_list": (0.1, 0.2, 0.6, 0.1, 0.0),
    "ca_cremation": (0.2, 0.4, 0.1, 0.3, 0.0),
    "ca_subsistence": (0.4, 0.1, 0.1, 0.35, 0.05),
    "hrss_pension_ledger": (0.35, 0.4, 0.1, 0.15, 0.0),
    "health_birth_cert": (0.1, 0.5, 0.3, 0.1, 0.0),
    "health_death_cert": (0.1, 0.4, 0.4, 0.1, 0.0),
    "grid_collection": (0.08, 0.07, 0.05, 0.05, 0.75),
}
HOSPITALS = np.array(["宜昌市中心人民医院", "宜昌市第一人民医院", "三峡大学附属仁和医院",
                      "宜昌市妇幼保健院", "宜昌市夷陵医院", "宜昌市第二人民医院"], dtype=object)
CAUSES = np.array(["冠心病", "脑梗死", "肺癌", "慢性阻塞性肺疾病", "高血压病", "肝癌", "胃癌",
                   "糖尿病并发症", "肺部感染", "心力衰竭", "交通事故", "衰老"], dtype=object)
SEX_CN = np.array(["女", "男"], dtype=object)


def bdate(city: City) -> pd.Timestamp:
    return pd.Timestamp(city.business_date)


PENSION_PAY_DAY = 25
"""Pensions are paid on the 25th (day 1, the 20th, and day 2 are no pay days: a typical night)."""


def pension_month(d: pd.Timestamp) -> int:
    """Last paid pension month (YYYYMM) on a business date: pensions are paid on the 25th."""
    p = d if d.day >= PENSION_PAY_DAY else d.replace(day=1) - pd.Timedelta(days=1)
    return p.year * 100 + p.month


def subsidy_month(d: pd.Timestamp) -> int:
    """Last paid subsistence-allowance month on a business date: paid on the 10th."""
    p = d if d.day >= 10 else d.replace(day=1) - pd.Timedelta(days=1)
    return p.year * 100 + p.month


def month_add(ym: np.ndarray, k: np.ndarray | int) -> np.ndarray:
    """Add ``k`` months to YYYYMM integers."""
    ym = np.asarray(ym, dtype=np.int64)
    t = ym // 100 * 12 + ym % 100 - 1 + np.asarray(k)
    return t // 12 * 100 + t % 12 + 1


def ym_of(dates: pd.Series) -> np.ndarray:
    d = pd.to_datetime(pd.Series(dates))
    return (d.dt.year * 100 + d.dt.month).to_numpy()


def addresses(city: City, house_idx: np.ndarray, source: str, rng: np.random.Generator) -> np.ndarray:
    return geo.pick_addresses(city.addresses, np.asarray(house_idx), STYLE_P[source], rng)


def home_of(p: pd.DataFrame) -> np.ndarray:
    """Registered house where there is one, else the actual house."""
    reg = p["reg_house"].to_numpy()
    return np.where(reg >= 0, reg, p["act_house"].to_numpy())


def _years(p: pd.DataFrame) -> np.ndarray:
    return pd.to_datetime(p["birth_date"]).dt.year.to_numpy()


def build_registry(city: City, rng: np.random.Generator, cfg: GeneratorConfig) -> pd.DataFrame:
    """公安 household registry: one row per registered person, plus 重户 second rows."""
    P = city.persons
    bd = bdate(city)
    p = P[P["registered"]]
    n = len(p)
    death = pd.to_datetime(p["death_date"])
    dead = death.notna().to_numpy()
    # registration date: shortly after birth for the young, a move-in date for others
    birth = pd.to_datetime(p["birth_date"])
    young = (bd - birth).dt.days.to_numpy() < 365 * 18
    days_old = (bd - birth).dt.days.to_numpy()
    after_birth = birth + pd.to_timedelta(np.minimum(rng.integers(3, 60, n), days_old - 1), "D")
    move_in = bd - pd.to_timedelta(rng.integers(300, 12000, n), "D")
    move_in = move_in.where(move_in > birth, after_birth)
    reg_date = after_birth.where(young, move_in)
    # deaths: cancelled (注销 死亡) unless planted as not cancelled (an anomaly once the death
    # is 30+ days old and a cremation or death certificate exists: see truth.anomalies_truth)
    not_cancelled = dead & noise.pick(rng, n, cfg.death_not_cancelled_rate)
    cancel_delay = np.minimum(rng.integers(3, 60, n), np.maximum(0, (bd - death).dt.days.fillna(0)
                                                                 .to_numpy().astype(int)))
    cancelled_dead = dead & ~not_cancelled
    emigrated = ~dead & noise.pick(rng, n, 0.003) & p["second_id"].isna().to_numpy()
    cancel = pd.Series(pd.NaT, index=p.index, dtype="datetime64[ns]")
    cancel[cancelled_dead] = (death + pd.to_timedelta(cancel_delay, "D"))[cancelled_dead]
    cancel[emigrated] = (bd - pd.to_timedelta(rng.integers(30, 1800, n), "D"))[emigrated]
    cancel = cancel.where(~emigrated | (cancel > reg_date), reg_date + pd.Timedelta(days=1))
    status = np.where(cancelled_dead | emigrated, "注销", "正常")
    reason = np.select([cancelled_dead, emigrated], ["死亡", "迁出"], "")
    last = pd.concat([reg_date, cancel], axis=1).max(axis=1)
    upd_day = (last + pd.to_timedelta(rng.integers(0, 30, n), "D")).clip(upper=bd - pd.Timedelta(days=1))
    f = pd.DataFrame({
        "_pid": p["pid"].to_numpy(),
        "户号": p["household_no"].to_numpy(),
        "姓名": noise.noisy_names(p, rng, cfg.registry, gbk=True).to_numpy(),
        "性别": SEX_CN[p["male"].to_numpy().astype(int)],
        "民族": p["ethnicity"].to_numpy(),
        "出生日期": noise.format_dates(p["birth_date"], "iso").to_numpy(),
        "公民身份号码": noise.noisy_ids(p["id_number"], rng, cfg.registry, _years(p),
                                       cfg.pension_legacy_age).to_numpy(),
        "与户主关系": p["relation"].to_numpy(),
        "户籍地址": addresses(city, p["reg_house"].to_numpy(), "ps_household_registry", rng),
        "户口状态": status,
        "注销日期": noise.format_dates(cancel, "iso").to_numpy(),
        "注销原因": reason,
        "登记日期": noise.format_dates(reg_date, "iso").to_numpy(),
        "更新时间": noise.random_times(rng, upd_day).to_numpy(),
        "_dup": False,
    })
    # second registrations (重户) under the second ID, in another household
    d = P[P["second_id"].notna() & P["registered"]]
    m = len(d)
    if m:
        first_hh = int(P["household_no"].dropna().astype(np.int64).max())
        d_reg = pd.Series(bd - pd.to_timedelta(rng.integers(100, 6000, m), "D"))
        d_birth = pd.Series(pd.to_datetime(d["birth_date"]).to_numpy()) + pd.Timedelta(days=30)
        d_reg = d_reg.where(d_reg > d_birth, d_birth)
        house = np.where(rng.random(m) < 0.5, d["act_house"].to_numpy(),
                         rng.integers(0, len(city.houses), m))
        g = pd.DataFrame({
            "_pid": d["pid"].to_numpy(),
            "户号": [str(first_hh + 1 + i) for i in range(m)],
            "姓名": noise.noisy_names(d, rng, cfg.registry, gbk=True).to_numpy(),
            "性别": SEX_CN[d["male"].to_numpy().astype(int)],
            "民族": d["ethnicity"].to_numpy(),
            "出生日期": noise.format_dates(d["birth_date"], "iso").to_numpy(),
            "公民身份号码": d["second_id"].to_numpy(),
            "与户主关系": "户主",
            "户籍地址": addresses(city, house, "ps_household_registry", rng),
            "户口状态": "正常", "注销日期": None, "注销原因": "",
            "登记日期": noise.format_dates(d_reg, "iso").to_numpy(),
            "更新时间": noise.random_times(rng, d_reg + pd.to_timedelta(rng.integers(0, 30, m), "D")).to_numpy(),
            "_dup": True,
        })
        f = pd.concat([f, g], ignore_index=True)
    f.insert(0, "人员编号", [f"HJ{4205000001 + i}" for i in range(len(f))])
    return f


def build_wanted(city: City, rng: np.random.Generator, cfg: GeneratorConfig) -> pd.DataFrame:
    """公安 wanted list (SQL table, vendor column names)."""
    p = city.persons[city.persons["is_wanted"]]
    n = len(p)
    bd = bdate(city)
    case = bd - pd.to_timedelta(rng.integers(30, 3650, n), "D")
    return pd.DataFrame({
        "ztry_bh": [f"ZT{20250001 + i}" for i in range(n)],
        "_pid": p["pid"].to_numpy(),
        "xm": noise.noisy_names(p, rng, cfg.wanted).to_numpy(),
        "xb": np.where(p["male"].to_numpy(), "1", "2"),
        "csrq": noise.format_dates(p["birth_date"], "compact").to_numpy(),
        "sfzh": noise.noisy_ids(p["id_number"], rng, cfg.wanted).to_numpy(),
        "ajbh": [f"A420500{c.year}{rng_i:06d}" for c, rng_i in
                 zip(case, rng.integers(0, 10**6, n))],
        "lasj": noise.format_dates(pd.Series(case), "iso").to_numpy(),
        "hjdz": addresses(city, home_of(p), "ps_wanted_list", rng),
        "gxsj": noise.random_times(rng, pd.Series(case) + pd.to_timedelta(
            rng.integers(0, 25, n), "D")).to_numpy(),
    })


def _kin(city: City, p: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Name and phone of a living household member (next of kin) for each person in ``p``."""
    P = city.persons
    adult = P["phone"].notna() & P["death_date"].isna()
    cand = P[adult][["hh", "name", "phone", "pid"]]
    first = cand.drop_duplicates("hh").set_index("hh")
    kin = first.reindex(p["hh"].to_numpy())
    same = kin["pid"].to_numpy() == p["pid"].to_numpy()
    n = len(p)
    rand_names = names.draw_han_names(rng, rng.random(n) < 0.5)
    rnd = (rand_names["surname"] + rand_names["given1"] + rand_names["given2"]).to_numpy()
    rnd_phone = ("139" + pd.Series(rng.integers(0, 10**8, n)).astype(str).str.zfill(8)).to_numpy()
    missing = kin["name"].isna().to_numpy() | same
    return (np.where(missing, rnd, kin["name"].to_numpy()),
            np.where(missing, rnd_phone, kin["phone"].to_numpy()))


XLSX_DATES = ("slash", "cn", "compact")


def build_cremation(city: City, rng: np.random.Generator, cfg: GeneratorConfig) -> pd.DataFrame:
    """民政 cremation records of (most of) the dead."""
    P = city.persons
    bd = bdate(city)
    dead = P[P["death_date"].notna()]
    p = dead[noise.pick(rng, len(dead), cfg.cremation_rate)]
    n = len(p)
    death = pd.to_datetime(p["death_date"])
    crem = (death + pd.to_timedelta(rng.integers(1, 6, n), "D")).clip(upper=bd)
    kin_name, kin_phone = _kin(city, p, rng)
    st = lambda: noise.mixed_styles(rng, n, XLSX_DATES, (1, 1, 1))  # noqa: E731
    f = pd.DataFrame({
        "火化证号": [f"HH{y}{4200001 + i}" for i, y in enumerate(crem.dt.year)],
        "_pid": p["pid"].to_numpy(),
        "逝者姓名": noise.noisy_names(p, rng, cfg.cremation).to_numpy(),
        "性别": SEX_CN[p["male"].to_numpy().astype(int)],
        "身份证号": noise.noisy_ids(p["id_number"], rng, cfg.cremation, excel=True).to_numpy(),
        "出生日期": noise.format_dates(p["birth_date"], st()).to_numpy(),
        "死亡日期": noise.format_dates(death, st()).to_numpy(),
        "火化日期": noise.format_dates(crem, st()).to_numpy(),
        "户籍地址": addresses(city, home_of(p), "ca_cremation", rng),
        "家属姓名": kin_name,
        "家属电话": noise.noisy_phones(pd.Series(kin_phone), rng, cfg.cremation).to_numpy(),
        "_date": crem.to_numpy(),
    })
    return f.sort_values(["_date", "火化证号"], kind="stable").drop(columns="_date").reset_index(drop=True)


def build_subsidy(city: City, rng: np.random.Generator, cfg: GeneratorConfig) -> pd.DataFrame:
    """民政 subsistence allowance roster: one row per household member."""
    P = city.persons
    bd = bdate(city)
    p = P[P["in_subsidy"]].sort_values(["hh", "pos"])
    n = len(p)
    hh = p["hh"].to_numpy()
    uniq, first, size = np.unique(hh, return_index=True, return_counts=True)
    k = np.searchsorted(uniq, hh)
    seq = np.arange(n) - first[k] + 1
    houses = city.houses
    dcode = houses["district_code"].to_numpy()[p["reg_house"].to_numpy()]
    case_no = np.array([f"DB{dc}{10001 + i}" for i, dc in enumerate(dcode[first])], dtype=object)
    amount = np.round(size * 680 * rng.uniform(0.45, 1.0, len(uniq)), 2)
    approve = bd - pd.to_timedelta(rng.integers(60, 2500, len(uniq)), "D")
    # the head's death: still paid (anomaly) or stopped at the death month
    head = p["kind"].to_numpy() == "head"
    hdeath = pd.Series(pd.NaT, index=range(len(uniq)), dtype="datetime64[ns]")
    hd = pd.to_datetime(p["death_date"]).to_numpy()[first]
    hdeath[:] = hd
    approve = pd.Series(np.where(hdeath.notna() & (approve >= hdeath),
                                 hdeath - pd.to_timedelta(rng.integers(30, 400, len(uniq)), "D"),
                                 approve))
    cur = subsidy_month(bd)
    still = hdeath.notna().to_numpy() & noise.pick(rng, len(uniq), cfg.deceased_subsidy_rate)
    last = np.where(hdeath.notna().to_numpy() & ~still, ym_of(hdeath.fillna(bd)), cur)
    status = np.where(hdeath.notna().to_numpy() & ~still, "停保", "在保")
    last_txt = pd.Series(last).astype(str)
    last_txt = (last_txt.str[:4] + "-" + last_txt.str[4:]).to_numpy()
    st = noise.mixed_styles(rng, len(uniq), XLSX_DATES, (1, 1, 1))
    return pd.DataFrame({
        "低保证号": case_no[k], "序号": seq.astype(np.int64),
        "_pid": p["pid"].to_numpy(), "_head": head, "_last_paid": last[k],
        "姓名": noise.noisy_names(p, rng, cfg.subsidy).to_numpy(),
        "身份证号": noise.noisy_ids(p["id_number"], rng, cfg.subsidy, excel=True).to_numpy(),
        "与户主关系": p["relation"].to_numpy(),
        "家庭人口": size[k].astype(np.int64),
        "月保障金额": amount[k],
        "家庭住址": addresses(city, p["reg_house"].to_numpy(), "ca_subsistence", rng),
        "审批日期": noise.format_dates(approve, st).to_numpy()[k],
        "发放状态": status[k],
        "最近发放月份": last_txt[k],
    })


def build_pension(city: City, rng: np.random.Generator, cfg: GeneratorConfig) -> pd.DataFrame:
    """人社 pension ledger (GB18030)."""
    P = city.persons
    bd = bdate(city)
    p = P[P["has_pension"]]
    n = len(p)
    birth = pd.to_datetime(p["birth_date"])
    retire_years = np.where(p["male"].to_numpy(), 60, 55)
    start = ym_of(birth)
    start = month_add(start, retire_years * 12 + 1)
    cur = pension_month(bd)
    start = np.clip(start, 199201, cur)
    death = pd.to_datetime(p["death_date"])
    dead = death.notna().to_numpy()
    dm = np.where(dead, ym_of(death.fillna(bd)), 0)
    overpaid = dead & noise.pick(rng, n, cfg.deceased_pensioner_rate) & (dm < cur)
    still_paid = overpaid & (rng.random(n) < 0.7)
    late_stop = overpaid & ~still_paid
    suspended = ~dead & noise.pick(rng, n, cfg.pension_suspended_rate)
    last = np.full(n, cur, dtype=np.int64)
    last[dead] = np.minimum(dm, cur)[dead]
    late_last = np.minimum(month_add(dm, rng.integers(1, 7, n)), cur)
    last[late_stop] = late_last[late_stop]
    last[still_paid] = cur
    last[suspended] = month_add(np.full(n, cur), -rng.integers(1, 7, n))[suspended]
    last = np.maximum(last, start)
    status = np.where(dead & ~still_paid, "终止", np.where(suspended, "暂停", "正常发放"))
    amount = np.round(rng.lognormal(np.log(3200), 0.35, n), 2)
    return pd.DataFrame({
        "社保编号": [f"{420500000001 + i}" for i in range(n)],
        "_pid": p["pid"].to_numpy(), "_last_paid": last,
        "姓名": noise.noisy_names(p, rng, cfg.pension).to_numpy(),
        "性别": np.where(p["male"].to_numpy(), "1", "2"),
        "出生年月": birth.dt.strftime("%Y%m").to_numpy(),
        "身份证号": noise.noisy_ids(p["id_number"], rng, cfg.pension, _years(p),
                                   cfg.pension_legacy_age).to_numpy(),
        "参保地址": addresses(city, p["act_house"].to_numpy(), "hrss_pension_ledger", rng),
        "月养老金": [f"{a:.2f}" for a in amount],
        "开始领取月份": start.astype(str),
        "最近发放月份": last.astype(str),
        "发放状态": status,
        "联系电话": noise.noisy_phones(p["phone"], rng, cfg.pension).to_numpy(),
    })


def build_birth_certs(city: City, rng: np.random.Generator, cfg: GeneratorConfig) -> pd.DataFrame:
    """卫健 birth certificates of children born in the last years (parents in the household)."""
    P = city.persons
    bd = bdate(city)
    birth = pd.to_datetime(P["birth_date"])
    kids = P[(P["kind"] == "child") & ((bd - birth).dt.days < cfg.birth_cert_years * 365)
             & ~P["migrant"]]
    return birth_cert_rows(city, kids, rng, cfg, start=1)


def birth_cert_rows(city: City, kids: pd.DataFrame, rng: np.random.Generator,
                    cfg: GeneratorConfig, start: int) -> pd.DataFrame:
    """Birth certificate rows for ``kids`` (cert numbers from ``start``)."""
    P = city.persons
    bd = bdate(city)
    n = len(kids)
    heads = P[P["kind"] == "head"].set_index("hh")
    spouses = P[P["kind"] == "spouse"].drop_duplicates("hh").set_index("hh")
    h = heads.reindex(kids["hh"].to_numpy())
    s = spouses.reindex(kids["hh"].to_numpy())
    head_male = h["male"].to_numpy().astype(bool)
    birth = pd.to_datetime(kids["birth_date"])
    days_old = (bd - birth).dt.days.to_numpy()
    err = cfg.birth_cert

    def parent(male_head: bool) -> tuple[np.ndarray, np.ndarray]:
        """Name and ID of the father (male_head=True) or mother."""
        use_head = head_male if male_head else ~head_male
        nm_h = noise.noisy_names(h.reset_index(), rng, err).to_numpy()
        nm_s = noise.noisy_names(s.reset_index().fillna({"surname": "", "given1": "",
                                                        "given2": "", "name": ""}), rng, err).to_numpy()
        id_h = noise.noisy_ids(h["id_number"].reset_index(drop=True), rng, err).to_numpy()
        id_s = noise.noisy_ids(s["id_number"].reset_index(drop=True), rng, err).to_numpy()
        has_s = s["pid"].notna().to_numpy()
        name = np.where(use_head, nm_h, np.where(has_s, nm_s, None))
        ids = np.where(use_head, id_h, np.where(has_s, id_s, None))
        return name, ids

    father_name, father_id = parent(True)
    mother_name, mother_id = parent(False)
    child = noise.noisy_names(kids, rng, err).to_numpy()
    unnamed = (days_old < 60) & noise.pick(rng, n, cfg.newborn_unnamed_rate)
    child = np.where(unnamed, np.where(rng.random(n) < 0.5, "", None), child)
    issued = birth + pd.to_timedelta(np.minimum(rng.integers(1, 6, n), np.maximum(days_old, 0)), "D")
    house = kids["act_house"].to_numpy()
    f = pd.DataFrame({
        "cert_no": [f"Q42{start + i:08d}" for i in range(n)],
        "_pid": kids["pid"].to_numpy(),
        "child_name": child,
        "sex": SEX_CN[kids["male"].to_numpy().astype(int)],
        "birth_date": noise.format_dates(kids["birth_date"], "iso").to_numpy(),
        "birth_place": HOSPITALS[rng.integers(0, len(HOSPITALS), n)],
        "mother_name": mother_name, "mother_id_number": mother_id,
        "father_name": father_name, "father_id_number": father_id,
        "address": addresses(city, house, "health_birth_cert", rng),
        "issued_at": noise.random_times(rng, pd.Series(issued), sep="T").to_numpy(),
    })
    return f


def build_death_certs(city: City, rng: np.random.Generator, cfg: GeneratorConfig) -> pd.DataFrame:
    """卫健 death certificates of (most of) the dead."""
    P = city.persons
    dead = P[P["death_date"].notna()]
    p = dead[noise.pick(rng, len(dead), cfg.death_cert_rate)]
    return death_cert_rows(city, p, rng, cfg, start=1)


def death_cert_rows(city: City, p: pd.DataFrame, rng: np.random.Generator,
                    cfg: GeneratorConfig, start: int) -> pd.DataFrame:
    """Death certificate rows for persons ``p`` (cert numbers from ``start``)."""
    bd = bdate(city)
    n = len(p)
    death = pd.to_datetime(p["death_date"])
    rep = (death + pd.to_timedelta(rng.integers(0, 4, n), "D")).clip(upper=bd)
    place = np.where(rng.random(n) < 0.7, HOSPITALS[rng.integers(0, len(HOSPITALS), n)], "家中")
    f = pd.DataFrame({
        "cert_no": [f"SW42{start + i:08d}" for i in range(n)],
        "_pid": p["pid"].to_numpy(),
        "name": noise.noisy_names(p, rng, cfg.death_cert).to_numpy(),
        "sex": SEX_CN[p["male"].to_numpy().astype(int)],
        "id_number": noise.noisy_ids(p["id_number"], rng, cfg.death_cert).to_numpy(),
        "birth_date": noise.format_dates(p["birth_date"], "iso").to_numpy(),
        "death_date": noise.format_dates(death, "iso").to_numpy(),
        "death_place": place,
        "cause": CAUSES[rng.integers(0, len(CAUSES), n)],
        "address": addresses(city, home_of(p), "health_death_cert", rng),
        "reported_at": noise.random_times(rng, pd.Series(rep), sep="T").to_numpy(),
    })
    return f


GRID_SEX = np.array(["男", "女", "M", "F", "1", "2", ""], dtype=object)


def build_grid(city: City, rng: np.random.Generator, cfg: GeneratorConfig) -> pd.DataFrame:
    """网格 collection: the messiest source."""
    P = city.persons
    bd = bdate(city)
    n = len(P)
    chosen = noise.pick(rng, n, cfg.grid_coverage) | (P["is_wanted"].to_numpy()
                                                      & noise.pick(rng, n, cfg.wanted_grid_rate))
    idx = np.flatnonzero(chosen)
    again = idx[noise.pick(rng, len(idx), cfg.grid_repeat_rate)]
    idx = np.sort(np.concatenate([idx, again]))
    p = P.iloc[idx]
    when = bd - pd.to_timedelta(rng.integers(1, 730, len(p)), "D")
    death = pd.to_datetime(p["death_date"]).to_numpy()
    birth = pd.to_datetime(p["birth_date"]).to_numpy()
    when = np.where(~np.isnat(death) & (when.to_numpy() >= death),
                    death - pd.to_timedelta(rng.integers(1, 200, len(p)), "D").to_numpy(), when)
    keep = when > birth
    p, when = p[keep], pd.Series(when[keep])
    return grid_rows(city, p, when, rng, cfg, start=1)


def grid_rows(city: City, p: pd.DataFrame, when: pd.Series, rng: np.random.Generator,
              cfg: GeneratorConfig, start: int) -> pd.DataFrame:
    """Grid collection rows for persons ``p`` collected on days ``when``."""
    n = len(p)
    err = cfg.grid
    male = p["male"].to_numpy()
    sex_style = rng.choice(4, size=n, p=[0.7, 0.1, 0.1, 0.1])
    sex = np.select([sex_style == 0, sex_style == 1, sex_style == 2],
                    [SEX_CN[male.astype(int)], np.where(male, "M", "F"), np.where(male, "1", "2")], "")
    ids = noise.noisy_ids(p["id_number"], rng, err).to_numpy()
    ids = np.where(p["registered"].to_numpy() | p["migrant"].to_numpy(), ids, None)
    styles = noise.mixed_styles(rng, n, noise.DATE_STYLES, (0.4, 0.2, 0.2, 0.2))
    bdates = noise.format_dates(p["birth_date"], styles).to_numpy()
    bdates = np.where(noise.pick(rng, n, err.date_missing), None, bdates)
    house = p["act_house"].to_numpy()
    grid_code = city.houses["grid_code"].to_numpy()[house]
    collector = _collectors(city)[grid_code]
    t = noise.random_times(rng, when, with_seconds=False)
    return pd.DataFrame({
        "采集编号": [f"CJ{4205000001 + start - 1 + i}" for i in range(n)],
        "_pid": p["pid"].to_numpy(),
        "网格编码": grid_code,
        "姓名": noise.noisy_names(p, rng, err).to_numpy(),
        "性别": sex,
        "身份证号": ids,
        "出生日期": bdates,
        "联系电话": noise.noisy_phones(p["phone"], rng, err).to_numpy(),
        "居住地址": addresses(city, house, "grid_collection", rng),
        "人员类型": np.where(p["migrant"].to_numpy(), "流动人口", "户籍人口"),
        "采集时间": t.to_numpy(),
        "采集人": collector.to_numpy(),
    })


def _collectors(city: City) -> pd.Series:
    """One grid worker's name per grid (deterministic from the grid codes)."""
    g = city.grids["grid_code"]
    rng = np.random.default_rng([city.seed, 99])
    parts = names.draw_han_names(rng, rng.random(len(g)) < 0.4)
    return pd.Series((parts["surname"] + parts["given1"] + parts["given2"]).to_numpy(), index=g.to_numpy())


BUILDERS = {
    "ps_household_registry": build_registry, "ps_wanted_list": build_wanted,
    "ca_cremation": build_cremation, "ca_subsistence": build_subsidy,
    "hrss_pension_ledger": build_pension, "health_birth_cert": build_birth_certs,
    "health_death_cert": build_death_certs, "grid_collection": build_grid,
}


def build_all(city: City, cfg: GeneratorConfig, progress=None) -> dict[str, pd.DataFrame]:
    """Every source's frame; each source draws from its own random stream."""
    out: dict[str, pd.DataFrame] = {}
    for i, name in enumerate(SOURCES):
        rng = np.random.default_rng([city.seed, 1, i])
        out[name] = BUILDERS[name](city, rng, cfg)
        if progress:
            progress("departments' exports", i + 1, len(SOURCES))
    plant_ids_onto_real(city, out, np.random.default_rng([city.seed, 2]), cfg)
    return out


def plant_ids_onto_real(city: City, frames: dict[str, pd.DataFrame], rng: np.random.Generator,
                        cfg: GeneratorConfig) -> None:
    """A few records carry another real person's ID (a typo that landed on a real number).

    The other person has the same sex; at least two such records in the grid collection.
    """
    P = city.persons
    male = P["male"].to_numpy()
    pool = {sex: P["pid"].to_numpy()[(male == sex) & P["registered"].to_numpy()] for sex in (True, False)}
    for name in ("grid_collection", "hrss_pension_ledger", "ca_subsistence"):
        f = frames[name]
        col = ID_COLUMN[name]
        has = f[col].map(lambda v: isinstance(v, str)).to_numpy()
        rows = np.flatnonzero(has & noise.pick(rng, len(f), cfg.id_typo_onto_real_rate))
        if name == "grid_collection" and len(rows) < 2:
            rows = rng.choice(np.flatnonzero(has), size=min(2, int(has.sum())), replace=False)
        for r in rows:  # a handful of rows
            own = int(f["_pid"].iat[r])
            cands = pool[bool(male[own])]
            other = int(cands[rng.integers(0, len(cands))])
            if other != own and P["id_number"].iat[other] != P["id_number"].iat[own]:
                f.iat[r, f.columns.get_loc(col)] = P["id_number"].iat[other]


def source_keys(name: str, frame: pd.DataFrame) -> pd.Series:
    """source_key: the key columns' text joined with ``|``."""
    cols = KEYS[name]
    key = frame[cols[0]].astype(str)
    for c in cols[1:]:
        key = key + "|" + frame[c].astype(str)
    return key
