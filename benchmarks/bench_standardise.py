"""Throughput of each standardiser on generated-looking values (default 1,000,000 rows each).

    .venv/bin/python benchmarks/bench_standardise.py [--rows N] [--seed S]

Values imitate the departments' exports (docs/sources.md): ID numbers with legacy 15-digit
numbers, lowercase x, full-width digits, typos and Excel damage; dates in the five formats plus
Excel serials; sex codes of four vocabularies; names drawn from common surnames and given-name
characters (so they repeat as real names do) with traditional forms, inner spaces and minority
dots; phones with +86, hyphens and landlines; addresses in the five house styles. Generation is
not timed. Prints rows/s per standardiser (one run each, wall clock) and the distinct counts
that matter for the per-distinct-value parts (names, addresses).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from matching.standardise import addresses, dates, ids, names, phones, sex

W = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏"
                "魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵"
                "万钱严覃武戴莫孔向汤单区解仇朴查翟盖缪") + ["欧阳", "司马", "诸葛", "上官"]
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红娥玲芬燕彩春菊兰凤洁梅琳素云莲真环雪荣"
             "爱妹香月莺媛艳瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓")
TRAD = str.maketrans("张刘陈杨黄赵吴马伟军杰涛华红兰凤洁云莲荣爱", "張劉陳楊黃趙吳馬偉軍傑濤華紅蘭鳳潔雲蓮榮愛")
DISTRICTS = ["西陵区", "伍家岗区", "点军区", "猇亭区", "夷陵区"]
COMPOUNDS = ["桃花苑", "东山花园", "滨江苑", "金色家园", "阳光城", "锦绣华庭", "夷陵广场", "桃花金色家园",
             "滨江阳光城", "东山锦绣华庭"]
STREETS = ["西陵街道", "学院街道", "云集街道", "小溪塔街道", "万寿桥街道"]
COMMUNITIES = ["桃花岭社区", "东山社区", "滨江社区", "云集社区", "夜明珠社区"]
ROADS = ["东湖路", "夷陵大道", "解放路", "西陵一路", "沿江大道"]


def _pick(rng: np.random.Generator, items: list[str], n: int) -> np.ndarray:
    return np.array(items, dtype=object)[rng.integers(0, len(items), n)]


def gen_ids(rng: np.random.Generator, n: int) -> pd.Series:
    regions = np.array(["420502", "420503", "420504", "420505", "420506", "420521", "420581", "110105"])
    births = pd.Timestamp("1930-01-01") + pd.to_timedelta(rng.integers(0, 33000, n), unit="D")
    first = (regions[rng.integers(0, len(regions), n)].astype(object) + births.strftime("%Y%m%d").to_numpy(dtype=object)
             + pd.Series(rng.integers(0, 1000, n)).map("{:03d}".format).to_numpy(dtype=object))
    digits = np.frombuffer("".join(first).encode(), dtype=np.uint8).reshape(n, 17) - 48
    check = np.array(list("10X98765432"), dtype=object)[(digits @ W) % 11]
    num = pd.Series(first + check)
    kind = rng.random(n)
    legacy = num.str.slice(0, 6) + num.str.slice(8, 17)
    num = num.where(kind >= 0.05, legacy)
    num = num.where((kind < 0.05) | (kind >= 0.08), num.str.lower())
    num = num.where((kind < 0.08) | (kind >= 0.10), num.str.slice(0, 10) + "7" + num.str.slice(11))
    full = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
    num = num.where((kind < 0.10) | (kind >= 0.11), num.str.translate(full))
    num = num.where((kind < 0.11) | (kind >= 0.12), "'" + num)
    num = num.where((kind < 0.12) | (kind >= 0.125), "4.20502E+17")
    return num.where(kind < 0.98, None)


def gen_dates(rng: np.random.Generator, n: int) -> pd.Series:
    d = pd.Series(pd.Timestamp("1930-01-01") + pd.to_timedelta(rng.integers(0, 33000, n), unit="D"))
    y, m, day = d.dt.year.astype(str), d.dt.month.astype(str), d.dt.day.astype(str)
    styles = [d.dt.strftime("%Y-%m-%d"), y + "/" + m + "/" + day, y + "年" + m + "月" + day + "日",
              d.dt.strftime("%Y%m%d"), ((d - pd.Timestamp("1899-12-30")).dt.days).astype(str),
              d.dt.strftime("%Y-%m-%d %H:%M:%S")]
    which = rng.integers(0, len(styles), n)
    which = np.where((which == 4) & (d < pd.Timestamp("1955-01-01")).to_numpy(), 0, which)  # serials >= 20000
    out = styles[0].copy()
    for i, s in enumerate(styles[1:], start=1):
        out = out.where(which != i, s)
    return out


def gen_names(rng: np.random.Generator, n: int) -> pd.Series:
    given = _pick(rng, GIVEN, n) + np.where(rng.random(n) < 0.7, _pick(rng, GIVEN, n), "")
    s = pd.Series(_pick(rng, SURNAMES, n) + given)
    kind = rng.random(n)
    s = s.where(kind >= 0.05, s.str.translate(TRAD))
    s = s.where((kind < 0.05) | (kind >= 0.07), s.str.slice(0, 1) + " " + s.str.slice(1))
    s = s.where((kind < 0.07) | (kind >= 0.08), "买买提" + _pick(rng, ["·", "・", "•", ".", ""], n) + "艾力")
    return s.where((kind < 0.08) | (kind >= 0.081), s.str.slice(0, 1) + "?")


def gen_phones(rng: np.random.Generator, n: int) -> pd.Series:
    mob = pd.Series(_pick(rng, ["138", "139", "150", "186", "177", "199"], n)) + pd.Series(
        rng.integers(0, 10**8, n)).map("{:08d}".format)
    land = "0717-" + pd.Series(rng.integers(2_000_000, 9_000_000, n)).astype(str)
    kind = rng.random(n)
    s = mob.where(kind >= 0.6, mob)
    s = s.where((kind < 0.6) | (kind >= 0.75), "+86 " + mob)
    s = s.where((kind < 0.75) | (kind >= 0.85), mob.str.slice(0, 3) + "-" + mob.str.slice(3, 7) + "-" + mob.str.slice(7))
    s = s.where((kind < 0.85) | (kind >= 0.97), land)
    return s.where(kind < 0.97, "无")


def gen_addresses(rng: np.random.Generator, n: int) -> pd.Series:
    d = pd.Series(_pick(rng, DISTRICTS, n))
    c = pd.Series(_pick(rng, COMPOUNDS, n))
    b = pd.Series(rng.integers(1, 31, n)).astype(str)
    u = pd.Series(rng.integers(1, 7, n)).astype(str)
    r = pd.Series(rng.integers(1, 34, n)).astype(str) + pd.Series(rng.integers(1, 5, n)).map("{:02d}".format)
    styles = [
        d + c + b + "-" + u + "-" + r,
        "宜昌市" + d + c + "小区" + b + "号楼" + u + "单元" + r + "室",
        "湖北省宜昌市" + d + pd.Series(_pick(rng, STREETS, n)) + pd.Series(_pick(rng, COMMUNITIES, n)) + c + "小区"
        + b + "栋" + u + "单元" + r,
        d + pd.Series(_pick(rng, ROADS, n)) + pd.Series(rng.integers(1, 300, n)).astype(str) + "号" + c + b + "幢"
        + u + "单元" + r + "号",
        d.str.slice(0, -1) + " " + c + " " + b + "-" + u + "-" + r,
    ]
    which = rng.integers(0, len(styles), n)
    out = styles[0].copy()
    for i, s in enumerate(styles[1:], start=1):
        out = out.where(which != i, s)
    return out


def bench(label: str, fn: Callable[[pd.Series], object], values: pd.Series) -> float:
    start = time.perf_counter()
    fn(values)
    secs = time.perf_counter() - start
    rate = len(values) / secs
    print(f"{label:<34} {len(values):>10,} rows {secs:>8.2f} s {rate:>12,.0f} rows/s", flush=True)
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    n = args.rows
    print(f"generating {n:,} values per standardiser (seed {args.seed}); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    id_values, date_values = gen_ids(rng, n), gen_dates(rng, n)
    sex_values = pd.Series(_pick(rng, ["男", "女", "1", "2", "M", "F", "男性", "9", ""], n))
    name_values, phone_values, address_values = gen_names(rng, n), gen_phones(rng, n), gen_addresses(rng, n)
    print(f"distinct names {name_values.nunique():,}, distinct addresses {address_values.nunique():,}")
    bench("ids.clean_id", ids.clean_id, id_values)
    bench("ids.classify_ids", ids.classify_ids, id_values)
    bench("dates.parse_dates (mixed formats)", dates.parse_dates, date_values)
    bench("sex.normalise_sex", sex.normalise_sex, sex_values)
    bench("names.normalise_name", names.normalise_name, name_values)
    bench("names.name_pinyin", names.name_pinyin, name_values)
    bench("names.pinyin_fuzzy (from names)", names.pinyin_fuzzy, name_values)
    bench("phones.normalise_phone", phones.normalise_phone, phone_values)
    bench("addresses.parse_addresses", addresses.parse_addresses, address_values)


if __name__ == "__main__":
    main()
