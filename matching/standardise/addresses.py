"""Addresses parsed into province / city / district / street / community / compound / building /
unit / room, and a canonical house key that lets departments' five ways of writing one house meet::

    西陵区桃花苑3-2-501                                   -> 420502|桃花苑|3|2|501
    宜昌市西陵区桃花苑小区3号楼2单元501室                    -> 420502|桃花苑|3|2|501
    湖北省宜昌市西陵区西陵街道桃花岭社区桃花苑小区3栋2单元501  -> 420502|桃花苑|3|2|501
    西陵区东湖路18号桃花苑3幢2单元501号                      -> 420502|桃花苑|3|2|501
    西陵 桃花苑 3-2-501 / 桃花苑小区3号楼二单元501            -> 420502|… / ?|桃花苑|3|2|501

House key: ``<district_code>|<compound>|<building>|<unit>|<room>``; the compound without its
trailing 小区, numbers as Arabic digits without leading zeros, an absent unit as an empty field,
``?`` for an unknown district (matching can still compare the rest). No key (NA) without a
compound (or, failing that, a road and door number) and a building or room.

How (vectorised, regular expressions via ``Series.str.extract``, over distinct addresses only):

1. NFKC, whitespace runs collapsed; Chinese numerals 一..九十九 before 号楼/栋/幢/座/单元/楼/层/室
   become digits (a per-match conversion, run only on the rows that have one).
2. The house tail is read from the end: building (号楼 / 栋 / 幢 / 座 / 号 / ``-``), optional unit
   (单元 / ``-``), room (室 / 号 / 房 / 户 optional): ``3-2-501``, ``3号楼2单元501室``, ``3栋501``.
3. The head is consumed from the left: province (…省 / 自治区 / 直辖市, or a bare province name),
   city (…市 / 自治州 / 地区 / 盟), district (…区 / 县 / 市 / 旗), street (…街道 / 镇 / 乡),
   community (…社区 / 居委会 / 村委会, or …村 before a group number ``3组``: a compound may be
   a 新村), road and door
   number (…路 / 街 / 大道 / 巷 + ``18号``); what is left is the compound. A city or district
   candidate is only consumed when it is a real division name (python-stdnum's ``loc.dat``, names
   current today), so ``阳光新区3栋…`` keeps 阳光新区 as its compound. A bare Yichang district name
   (``西陵``, from ``divisions.csv``) counts when followed by a space.
4. District codes: ``divisions.csv`` (the five Yichang districts and the city's counties), then
   loc.dat by (city, district) name, the city defaulting to ``default_city``; then a name unique
   nationwide. ``city``/``province`` are filled from the district's code, or ``default_city`` when
   no district was written.

Why not cpca or jionlp (STACK.md): cpca breaks on setuptools >= 81 (``pkg_resources`` is gone) and
misplaces bare district names; jionlp parses ~200 addresses/s and weighs ~170 MB; neither splits
building, unit and room, which is the part the house key needs. Known limits: a street or
community written without its district does not give the district (no street table ships; the
generator's grid table could supply one later); building letters (``A座``) and floor-door forms
(``5楼1号``) are not read.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

COLUMNS = ("province", "city", "district", "district_code", "street", "community", "road",
           "road_no", "compound", "building", "unit", "room", "house_key")
"""Output columns (``road`` and ``road_no`` are extra: the door number of style 4)."""

_STRING = pd.StringDtype("python")
_ARROW = pd.StringDtype("pyarrow")
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}
_CN_NUM = "[零〇一二两三四五六七八九十]+"
_MARKERS = "号楼|栋|幢|座|单元|楼|层|室"
_NAME = r"[^\s\d省市区县镇乡街路道号栋幢座单元室小\-]"  # a character of a division name

TAIL = re.compile(
    r"^(?P<head>.*?)(?<!\d)(?P<building>\d{1,4})\s*(?:号楼|栋|幢|座|号|#|-)\s*"
    r"(?:(?P<unit>\d{1,2})\s*(?:单元|-)\s*)?(?P<room>\d{1,5})\s*(?:室|号|房|户)?\s*$"
)
STREET = r"(?P<street>[^\s\d][^\s]{1,9}?(?:街道办事处|街道|镇|乡)(?!小区|花园|广场|家园|苑|公寓))"
COMMUNITY = (r"(?P<community>[^\s\d][^\s]{1,11}?(?:社区居民委员会|社区居委会|社区|居委会|村民委员会|村委会"
             r"|村(?=\s*\d+组)))")
ROAD = r"(?P<road>[^\s\d]{1,10}?(?:大道|大街|路|街|巷))\s*(?P<road_no>\d{1,5})号(?!楼)"


def cn_number(text: str) -> int:
    """Chinese numeral up to 99 (十, 十二, 二十, 二十三, 一二 read digit by digit) to int."""
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (_CN_DIGITS.get(tens, 1) if tens else 1) * 10 + (_CN_DIGITS.get(ones, 0) if ones else 0)
    return int("".join(str(_CN_DIGITS[c]) for c in text))


def _convert_cn_numerals(t: pd.Series) -> pd.Series:
    """Chinese numerals before building / unit / room markers to digits (only rows that have one)."""
    pattern = f"({_CN_NUM})(?=\\s*(?:{_MARKERS}))"
    has = t.str.contains(f"{_CN_NUM}\\s*(?:{_MARKERS})", regex=True).fillna(False).astype(bool)
    if not has.any():
        return t
    fixed = t[has].astype(_STRING).str.replace(pattern, lambda m: str(cn_number(m.group(1))), regex=True)
    out = t.copy()
    out[has] = fixed
    return out


@lru_cache(maxsize=1)
def divisions() -> pd.DataFrame:
    """The shipped division table (``divisions.csv``): code, name, short_name, level, parent_code."""
    with resources.files(__package__).joinpath("divisions.csv").open(encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False)


@lru_cache(maxsize=1)
def _loc() -> dict[str, dict[str, str]]:
    """Current division names from stdnum's loc.dat: provinces, cities, and counties by city."""
    text = resources.files("stdnum").joinpath("cn/loc.dat").read_text(encoding="utf-8")
    provinces: dict[str, str] = {}
    cities: dict[str, str] = {}
    by_city: dict[str, str] = {}
    county_codes: dict[str, set[str]] = {}
    prov = ""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^(\s*)(\d+) (?:province|county)="([^"]*)"', line)
        if not m:
            continue
        if not m.group(1):
            prov = m.group(2)
            provinces[m.group(3)] = prov + "0000"
            continue
        code = prov + m.group(2)
        current = None
        for part in m.group(3).split(","):
            rng = re.match(r"^\[(\d*)-(\d*)\](.*)$", part)
            if rng is None:
                current = part
            elif not rng.group(2):
                current = rng.group(3)
        if not current or current in ("市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"):
            continue
        if code.endswith("0000"):
            continue
        if code.endswith("00"):
            cities.setdefault(current, code)
        else:
            by_city[code[:4] + "|" + current] = code
            county_codes.setdefault(current, set()).add(code)
    unique = {name: next(iter(codes)) for name, codes in county_codes.items() if len(codes) == 1}
    for row in divisions().itertuples():
        if row.level == "province":
            provinces[row.name] = row.code
        elif row.level == "city":
            cities[row.name] = row.code
        else:
            by_city[row.parent_code[:4] + "|" + row.name] = row.code
    names = {code: name for name, code in {**provinces, **cities}.items()}
    for key, code in by_city.items():
        names[code] = key.split("|", 1)[1]
    return {"provinces": provinces, "cities": cities, "by_city": by_city, "unique": unique,
            "names": names}


@lru_cache(maxsize=1)
def _lookups() -> dict[str, object]:
    """Lookup Series (fast ``Series.map``), name sets and regex alternations, built once."""
    loc = _loc()
    div = divisions()
    suffix = r"(省|市|壮族自治区|回族自治区|维吾尔自治区|自治区|特別行政區)$"
    full_p = {re.sub(suffix, "", p): p for p in loc["provinces"]}
    city_short = div.loc[div.level == "city"].set_index("short_name")["name"].to_dict()
    short = div.loc[div.level.isin(["district", "county"])].set_index("short_name")["name"].to_dict()
    out: dict[str, object] = {k: pd.Series(v, dtype=_STRING) for k, v in loc.items()}
    out.update(
        province_names=set(loc["provinces"]),
        city_names=set(loc["cities"]),
        county_names={k.split("|", 1)[1] for k in loc["by_city"]} | set(loc["unique"]),
        full_p=pd.Series(full_p, dtype=_STRING),
        prov_alt="|".join(sorted(map(re.escape, full_p), key=len, reverse=True)),
        city_short=pd.Series(city_short, dtype=_STRING),
        city_alt="|".join(map(re.escape, city_short)),
        district_short=pd.Series(short, dtype=_STRING),
        district_alt="|".join(map(re.escape, sorted(short, key=len, reverse=True))),
    )
    return out


def _consume(rest: pd.Series, pattern: str, group: str, known: set[str] | None = None,
             candidates: np.ndarray | None = None) -> tuple[pd.Series, pd.Series]:
    """Take ``pattern`` from the start of ``rest`` (only values in ``known`` when given).

    ``candidates`` (a cheap Arrow pre-filter) limits the regex extraction to rows that can match.
    Returns the taken text (NA where nothing was taken) and the rest.
    """
    got = pd.Series(pd.NA, index=rest.index, dtype=_STRING)
    sub = rest if candidates is None else rest[candidates]
    if len(sub) == 0:
        return got, rest
    parts = sub.str.extract(f"^\\s*{pattern}(?P<_rest>.*)$", expand=True)
    found = parts[group].astype(_STRING)
    if known is not None:
        found = found.where(found.isin(known))
    got.loc[found.index] = found
    took = got.notna()
    if took.any():
        rest = rest.copy()
        rest[took] = parts.loc[took[took].index, "_rest"].astype(_STRING)
    return got, rest


def _has(ta: pd.Series, pattern: str) -> np.ndarray:
    """Rows of Arrow-backed ``ta`` containing ``pattern`` (RE2: a fast, coarse pre-filter)."""
    return ta.str.contains(pattern, regex=True).to_numpy(dtype=bool, na_value=False)


def _parse_distinct(t: pd.Series, default_city: str) -> pd.DataFrame:
    """Parse distinct normalised addresses (see the module docstring)."""
    lk = _lookups()
    ta = t.astype(_ARROW)
    tail = t.str.extract(TAIL)
    head = tail["head"].astype(_STRING).fillna(t)

    province, rest = _consume(head, r"(?P<p>[^\s\d]{2,8}?(?:省|自治区|特別行政區))", "p",
                              lk["province_names"], _has(ta, "省|自治区|特別行政區"))
    before_city = f"(?=\\s|[^\\s\\d省区县]{{2,8}}?(?:市|自治州|地区|盟)|{lk['city_alt']})"
    bare_p, rest2 = _consume(rest, f"(?P<p>{lk['prov_alt']}){before_city}", "p",
                             candidates=_has(ta, f"^\\s*(?:{lk['prov_alt']})"))
    bare_p = bare_p.where(province.isna())
    rest = rest.where(bare_p.isna(), rest2)
    province = province.fillna(bare_p.map(lk["full_p"]))

    city, rest = _consume(rest, r"(?P<c>[^\s\d省区县]{2,8}?(?:市|自治州|地区|盟))", "c", lk["city_names"],
                          _has(ta, "市|自治州|地区|盟"))
    bare_c, rest2 = _consume(rest, f"(?P<c>{lk['city_alt']})(?=\\s|{_NAME}{{1,6}}?(?:区|县))", "c",
                             candidates=_has(ta, lk["city_alt"]))
    bare_c = bare_c.where(city.isna())
    rest = rest.where(bare_c.isna(), rest2)
    city = city.fillna(bare_c.map(lk["city_short"]))

    district, rest = _consume(rest, r"(?P<d>[^\s\d省]{1,10}?(?:区|县|市|旗))", "d", lk["county_names"],
                              _has(ta, "区|县|市|旗"))
    bare_d, rest2 = _consume(rest, f"(?P<d>{lk['district_alt']})(?=\\s)", "d",
                             candidates=_has(ta, f"(?:{lk['district_alt']})\\s"))
    bare_d = bare_d.where(district.isna())
    rest = rest.where(bare_d.isna(), rest2)
    district = district.fillna(bare_d.map(lk["district_short"]))

    street, rest = _consume(rest, STREET, "street", candidates=_has(ta, "街道|镇|乡"))
    community, rest = _consume(rest, COMMUNITY, "community", candidates=_has(ta, "社区|居委会|村"))
    road_cand = _has(ta, "(?:大道|大街|路|街|巷)\\s*[0-9]+号")
    road_with_no, rest = _consume(rest, f"(?P<road_and_no>{ROAD})", "road_and_no", candidates=road_cand)
    road_parts = road_with_no.str.extract(f"^{ROAD}$")
    road = road_parts["road"].astype(_STRING)
    road_no = road_parts["road_no"].astype(_STRING)

    compound = rest.astype(_ARROW).str.replace(r"\s+", "", regex=True)
    compound = compound.str.replace(r"(?:小区|小區)$", "", regex=True).astype(_STRING)
    compound = compound.mask(compound == "")

    # district code: (city or default city, district) -> code, then a nationwide unique name
    city_code = city.fillna(default_city).map(lk["cities"])
    code = (city_code.str.slice(0, 4) + "|" + district).map(lk["by_city"])
    code = code.fillna(district.map(lk["unique"]))
    # city / province from the district's code, else the default city when no district is written
    code_city = (code.str.slice(0, 4) + "00").map(lk["names"])
    city = city.fillna(code_city).fillna(
        pd.Series(default_city, index=t.index, dtype=_STRING).where(district.isna()))
    prov_code = city.map(lk["cities"]).str.slice(0, 2) + "0000"
    province = province.fillna(prov_code.map(lk["names"]))

    def number(col: str) -> pd.Series:
        x = tail[col].astype(_ARROW).str.lstrip("0")
        return x.mask((x == "").fillna(False).astype(bool), "0").astype(_STRING)

    building, unit, room = number("building"), number("unit"), number("room")
    place = compound.fillna(road + road_no + "号")
    key = (code.fillna("?") + "|" + place + "|" + building.fillna("") + "|" + unit.fillna("")
           + "|" + room.fillna(""))
    key = key.where(place.notna() & (building.notna() | room.notna()))
    return pd.DataFrame(
        {"province": province, "city": city, "district": district, "district_code": code,
         "street": street, "community": community, "road": road, "road_no": road_no,
         "compound": compound, "building": building, "unit": unit, "room": room, "house_key": key},
        index=t.index,
    ).astype(_STRING)


def normalise_address_text(s: pd.Series) -> pd.Series:
    """NFKC, whitespace runs to one space, trimmed, dashes unified, Chinese numerals before
    building/unit markers as digits; empty -> NA."""
    t = s.astype(_ARROW).str.normalize("NFKC").str.replace(r"\s+", " ", regex=True).str.strip()
    t = t.str.replace("[\u2010-\u2015\u2212\ufe63]", "-", regex=True)
    t = _convert_cn_numerals(t).astype(_STRING)
    return t.mask(t == "")


def parse_addresses(s: pd.Series, default_city: str = "宜昌市") -> pd.DataFrame:
    """Parse addresses (module docstring); one row per input row, index kept, all ``string`` dtype.

    Columns: province, city, district, district_code, street, community, road, road_no, compound,
    building, unit, room, house_key. Each distinct address is parsed once.
    """
    t = normalise_address_text(s)
    distinct = pd.Series(pd.unique(t.dropna()), dtype=_STRING)
    parsed = _parse_distinct(distinct, default_city) if len(distinct) else pd.DataFrame(
        columns=list(COLUMNS), dtype=_STRING)
    out = _take(parsed, pd.Index(distinct).get_indexer(t))
    out.index = s.index
    return out[list(COLUMNS)]


def _take(parsed: pd.DataFrame, pos) -> pd.DataFrame:  # noqa: ANN001 - numpy int array
    """Rows of ``parsed`` at ``pos`` (-1 -> all NA)."""
    padded = pd.concat([parsed.reset_index(drop=True),
                        pd.DataFrame({c: pd.Series([pd.NA], dtype=_STRING) for c in parsed.columns})],
                       ignore_index=True)
    pos = pos.copy()
    pos[pos < 0] = len(parsed)
    return padded.iloc[pos].reset_index(drop=True)
