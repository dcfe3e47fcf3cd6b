"""Geography of the synthetic city: districts > streets > communities > grids, compounds,
houses, and the five ways departments write a house's address."""

from __future__ import annotations

import numpy as np
import pandas as pd

PROVINCE, CITY = "湖北省", "宜昌市"
DISTRICTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("西陵区", "420502", ("西陵街道", "学院街道", "云集街道", "西坝街道", "葛洲坝街道",
                         "夜明珠街道", "窑湾街道")),
    ("伍家岗区", "420503", ("大公桥街道", "万寿桥街道", "宝塔河街道", "伍家岗街道")),
    ("点军区", "420504", ("点军街道", "艾家镇", "桥边镇")),
    ("猇亭区", "420505", ("古老背街道", "云池街道", "虎牙街道")),
    ("夷陵区", "420506", ("小溪塔街道", "龙泉镇", "鸦鹊岭镇", "乐天溪镇")),
)
SHORT_DISTRICT = {"西陵区": "西陵", "伍家岗区": "伍家岗", "点军区": "点军", "猇亭区": "猇亭",
                  "夷陵区": "夷陵"}
COMMUNITY_STEMS = ("桃花", "东山", "隆康", "珍珠", "南湖", "云集", "环城", "福绥", "樵湖",
                   "铁路", "胜利", "夜明", "绿萝", "桔城", "白沙", "杨岔", "万寿", "宝塔",
                   "花艳", "共联", "紫阳", "东湖", "沙河", "望洲", "石板", "伍临", "长江",
                   "平湖", "合益", "三峡", "金岸", "桥边", "艾家", "虎牙", "云池", "古老",
                   "丁家", "龙泉", "鸦鹊", "乐天", "晓峰", "峡州", "梅岭", "常刘", "中南")
COMMUNITY_TAILS = ("岭", "路", "坡", "湾", "桥", "园", "坪", "苑", "村", "坝")
COMPOUND_HEADS = ("桃花", "东山", "滨江", "金色", "阳光", "锦绣", "夷陵", "三峡", "清江", "御景",
                  "紫阳", "鑫海", "望洲", "葛洲", "福星", "桂花", "龙盘", "江南", "水岸", "翡翠",
                  "天元", "世纪", "中南", "平湖", "玉龙", "绿洲", "宜和", "枫叶", "白鹭", "香山",
                  "春江", "和平", "幸福", "星光", "金桥", "明珠", "海棠", "书香", "华泰", "瑞景",
                  "东方", "馨港", "隆康", "云集", "长江", "山水", "佳和", "万豪", "丽景", "博雅")
COMPOUND_TAILS = ("苑", "花园", "家园", "城", "华庭", "广场", "新村", "名都", "公馆", "雅居",
                  "佳园", "山庄", "府", "国际")
ROADS = ("东湖路", "夷陵大道", "沿江大道", "东山大道", "西陵一路", "西陵二路", "解放路",
         "云集路", "珍珠路", "隆康路", "胜利四路", "城东大道", "发展大道", "港窑路", "桔城路",
         "中南路", "体育场路", "夷兴大道", "长江路", "宜昌大道", "峡州路", "绿萝路", "黄河路")
CN_NUM = np.array(["零", "一", "二", "三", "四", "五", "六", "七", "八", "九", "十"], dtype=object)


def build_grids(persons: int, rng: np.random.Generator, weights: tuple[float, ...],
                persons_per_community: int, persons_per_grid: int) -> pd.DataFrame:
    """Communities and grids: district > street > community > grid, with 15-digit grid codes."""
    n_comm = max(len(DISTRICTS), int(round(persons / persons_per_community)))
    w = np.asarray(weights, dtype=float) / sum(weights)
    per_district = np.maximum(1, np.floor(w * n_comm).astype(int))
    names = np.array([h + t for h in COMMUNITY_STEMS for t in COMMUNITY_TAILS], dtype=object)
    names = names[rng.permutation(len(names))]
    rows = []
    k = 0
    for (dname, dcode, streets), nc in zip(DISTRICTS, per_district):
        comm_per_street = np.zeros(len(streets), dtype=int)
        for i in range(nc):
            comm_per_street[i % len(streets)] += 1
        for si, street in enumerate(streets):
            for ci in range(comm_per_street[si]):
                stem = names[k % len(names)] + ("" if k < len(names) else str(k // len(names)))
                k += 1
                community = f"{stem}社区"
                share = w[[d[1] for d in DISTRICTS].index(dcode)] / nc
                n_grid = max(1, int(round(share * persons / persons_per_grid)))
                for gi in range(n_grid):
                    code = f"{dcode}{si + 1:03d}{ci + 1:03d}{gi + 1:03d}"
                    rows.append((code, f"{community}第{gi + 1}网格", community, street, dname,
                                 dcode, share / n_grid))
    g = pd.DataFrame(rows, columns=["grid_code", "grid_name", "community", "street", "district",
                                    "district_code", "_share"])
    return g


def build_houses(grids: pd.DataFrame, n_houses: int, rng: np.random.Generator) -> pd.DataFrame:
    """Compounds (unique names) filled with buildings, units, floors and doors.

    Each community gets compounds in proportion to its population share; each compound spans
    the community's grids by building number.
    """
    comm = grids.groupby(["district_code", "street", "community"], sort=False).agg(
        share=("_share", "sum"), grids=("grid_code", list)).reset_index()
    names = np.array([h + t for h in COMPOUND_HEADS for t in COMPOUND_TAILS], dtype=object)
    names = names[rng.permutation(len(names))]
    mean_cap = 900
    rows = []
    k = 0
    for r in comm.itertuples(index=False):
        target = max(8, int(np.ceil(r.share * n_houses)))
        n_comp = max(1, int(round(target / mean_cap)))
        caps = np.full(n_comp, target // n_comp)
        caps[: target - caps.sum()] += 1
        for cap in caps:
            name = names[k % len(names)]
            if k >= len(names):
                name = f"{name}{CN_NUM[1 + (k // len(names)) % 9 + 1]}期"
            k += 1
            units = int(rng.choice([1, 2, 3, 4], p=[0.2, 0.4, 0.3, 0.1]))
            doors = int(rng.choice([2, 3, 4], p=[0.5, 0.3, 0.2]))
            floors = int(rng.integers(4, 19))
            per_building = units * doors * floors
            buildings = int(np.clip(np.ceil(cap / per_building), 1, 30))
            if buildings * per_building < cap:
                floors = int(np.clip(np.ceil(cap / (buildings * units * doors)), floors, 33))
            road = ROADS[int(rng.integers(0, len(ROADS)))]
            rows.append((r.district_code, r.street, r.community, name, buildings, units, floors,
                         doors, road, int(rng.integers(1, 300)), r.grids))
    comp = pd.DataFrame(rows, columns=["district_code", "street", "community", "compound",
                                       "buildings", "units", "floors", "doors", "road", "door_no",
                                       "grids"])
    size = (comp["buildings"] * comp["units"] * comp["floors"] * comp["doors"]).to_numpy()
    ci = np.repeat(np.arange(len(comp)), size)
    offset = np.arange(size.sum()) - np.repeat(np.cumsum(size) - size, size)
    u, d, f = comp["units"].to_numpy()[ci], comp["doors"].to_numpy()[ci], comp["floors"].to_numpy()[ci]
    door = offset % d + 1
    rest = offset // d
    floor = rest % f + 1
    rest = rest // f
    unit = rest % u + 1
    building = rest // u + 1
    ngrids = comp["grids"].map(len).to_numpy()[ci]
    grid_idx = (building - 1) % ngrids
    grid_code = np.array([g for gl in comp["grids"] for g in gl], dtype=object)
    grid_start = np.cumsum(comp["grids"].map(len).to_numpy()) - comp["grids"].map(len).to_numpy()
    houses = pd.DataFrame({
        "house_id": [f"H{i:08d}" for i in range(1, len(ci) + 1)],
        "district_code": comp["district_code"].to_numpy()[ci],
        "street": comp["street"].to_numpy()[ci],
        "community": comp["community"].to_numpy()[ci],
        "grid_code": grid_code[grid_start[ci] + grid_idx],
        "compound": comp["compound"].to_numpy()[ci],
        "building": building.astype(np.int64),
        "unit": unit.astype(np.int64),
        "room": (floor * 100 + door).astype(np.int64).astype(str),
        "road": comp["road"].to_numpy()[ci],
        "door_no": comp["door_no"].to_numpy()[ci].astype(np.int64),
    })
    dname = {c: n for n, c, _ in DISTRICTS}
    houses.insert(1, "district", houses["district_code"].map(dname))
    houses["house_key"] = (houses["district_code"] + "|" + houses["compound"] + "|"
                           + houses["building"].astype(str) + "|" + houses["unit"].astype(str)
                           + "|" + houses["room"])
    houses["standard_address"] = address_style(houses, 3)
    return houses


def _cn(n: pd.Series) -> pd.Series:
    """Chinese numeral for 1..10, Arabic digits above."""
    v = n.to_numpy()
    out = np.where(v <= 10, CN_NUM[np.clip(v, 0, 10)], v.astype(str))
    return pd.Series(out, index=n.index, dtype=object)


def address_style(h: pd.DataFrame, style: int, variant: int = 0) -> pd.Series:
    """One of the five address styles for houses ``h`` (see docs/sources.md).

    Style 5 (free-form) has variants 0..3: ``桃花苑3栋2单元501``, ``西陵 桃花苑 3-2-501``,
    ``桃花苑小区3号楼二单元501`` (Chinese numerals), ``西陵区桃花苑3栋2单元501室``.
    """
    b, u, r = h["building"].astype(str), h["unit"].astype(str), h["room"].astype(str)
    d, c = h["district"].astype(str), h["compound"].astype(str)
    if style == 1:
        return d + c + b + "-" + u + "-" + r
    if style == 2:
        return CITY + d + c + "小区" + b + "号楼" + u + "单元" + r + "室"
    if style == 3:
        return (PROVINCE + CITY + d + h["street"] + h["community"] + c + "小区" + b + "栋"
                + u + "单元" + r)
    if style == 4:
        return d + h["road"] + h["door_no"].astype(str) + "号" + c + b + "幢" + u + "单元" + r + "号"
    if variant == 0:
        return c + b + "栋" + u + "单元" + r
    if variant == 1:
        return d.map(SHORT_DISTRICT) + " " + c + " " + b + "-" + u + "-" + r
    if variant == 2:
        return c + "小区" + _cn(h["building"]) + "号楼" + _cn(h["unit"]) + "单元" + r
    return d + c + b + "栋" + u + "单元" + r + "室"


def address_table(houses: pd.DataFrame) -> np.ndarray:
    """(n_houses, 8) object array: styles 1-4 and four free-form variants of each house."""
    cols = [address_style(houses, s) for s in (1, 2, 3, 4)]
    cols += [address_style(houses, 5, v) for v in range(4)]
    return np.column_stack([c.to_numpy(dtype=object) for c in cols])


def pick_addresses(table: np.ndarray, house_idx: np.ndarray, style_p: tuple[float, ...],
                   rng: np.random.Generator) -> np.ndarray:
    """Addresses of houses (row indices into ``table``) in styles drawn with ``style_p``.

    ``style_p`` has five probabilities for styles 1..5; style 5 picks a free-form variant.
    """
    n = len(house_idx)
    style = rng.choice(5, size=n, p=np.asarray(style_p) / sum(style_p))
    col = np.where(style < 4, style, 4 + rng.integers(0, 4, n))
    return table[house_idx, col]
