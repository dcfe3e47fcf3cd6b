"""Person names: normalisation, flags, surname split, surname-aware pinyin, dialect-folded pinyin.

Every function works once per *distinct* name (``pd.factorize``) and spreads the result back with
an integer take: names repeat a lot (a city of a few million has a few hundred thousand distinct
names). On the distinct values, NFKC, whitespace, dots and flags are ``Series.str`` passes; OpenCC
(traditional -> simplified) converts all of them in one call (joined by newlines); pinyin is a
small Python function per distinct name that reads characters from a cache and calls pypinyin
only for phrases and unusual text (see :func:`_pinyin_of`).

Decisions:

- Middle-dot variants in minority names (U+00B7, U+0387, U+2022, U+2027, U+2219, U+22C5, U+30FB,
  U+FF65, ``.``, ``．``, ``-``, dashes) become the standard U+00B7 (民委发〔2016〕33号); a name
  written without any dot cannot be split and keeps none: its pinyin (which ignores dots) still
  equals the dotted form's.
- 於 stays 於 (OpenCC would merge it into 于, a different surname); both read ``yu`` in pinyin so
  they still compare close there.
- Latin letters are upper-cased; all whitespace is removed.
- Characters lost in legacy encodings (``?``, ``？``, U+FFFD, private use U+E000-U+F8FF) are kept
  as they are, flagged ``has_unknown``, and read ``?`` in pinyin: matching treats them as unknown,
  not as different.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pandas as pd

MIDDLE_DOT = "\u00b7"
DOT_VARIANTS = ("\u00b7\u0387\u2022\u2027\u2219\u22c5\u30fb\uff65\u2e31.\uff0e\ufe52"
                "\\-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d")
"""Characters read as the minority-name separator (before NFKC some of them are full-width)."""
UNKNOWN_CHARS = "?\ufffd\ue000-\uf8ff"
"""Regex character-class body of placeholders for characters lost to legacy encodings."""
_YU_PLACEHOLDER = "\ufdd0"  # a Unicode noncharacter: OpenCC leaves it alone

COMPOUND_SURNAMES: dict[str, str] = {
    "欧阳": "ou yang", "司马": "si ma", "诸葛": "zhu ge", "上官": "shang guan", "皇甫": "huang fu",
    "尉迟": "yu chi", "万俟": "mo qi", "长孙": "zhang sun", "慕容": "mu rong", "令狐": "ling hu",
    "东方": "dong fang", "夏侯": "xia hou", "公孙": "gong sun", "宇文": "yu wen", "司徒": "si tu",
    "司空": "si kong", "端木": "duan mu", "轩辕": "xuan yuan", "独孤": "du gu", "南宫": "nan gong",
    "西门": "xi men", "呼延": "hu yan", "澹台": "tan tai", "淳于": "chun yu", "濮阳": "pu yang",
    "申屠": "shen tu", "公冶": "gong ye", "宗政": "zong zheng", "太叔": "tai shu", "仲孙": "zhong sun",
    "赫连": "he lian", "闻人": "wen ren", "拓跋": "tuo ba", "鲜于": "xian yu", "闾丘": "lv qiu",
    "左丘": "zuo qiu", "东郭": "dong guo", "公羊": "gong yang", "谷梁": "gu liang", "羊舌": "yang she",
    "亓官": "qi guan", "司寇": "si kou", "巫马": "wu ma", "公西": "gong xi", "漆雕": "qi diao",
    "壤驷": "rang si", "夹谷": "jia gu", "段干": "duan gan", "颛孙": "zhuan sun", "梁丘": "liang qiu",
}
"""Compound surnames and their readings. Left out on purpose, because a common single surname plus
a given name is the likelier reading: 钟离, 单于, 乐正, 第五, 百里. Only names of 3+ characters are
split as compound."""

SURNAME_READINGS: dict[str, str] = {
    "单": "shan", "曾": "zeng", "解": "xie", "仇": "qiu", "区": "ou", "朴": "piao", "查": "zha",
    "覃": "qin", "翟": "zhai", "盖": "ge", "缪": "miao", "秘": "bi", "冼": "xian", "洗": "xian",
    "员": "yun", "乐": "yue", "种": "chong", "折": "she", "召": "shao", "隗": "wei", "句": "gou",
    "阚": "kan", "柏": "bai", "薄": "bo", "褚": "chu", "谌": "chen", "禚": "zhuo", "尉": "wei",
    "都": "du", "燕": "yan", "能": "nai", "佴": "nai", "卜": "bu", "应": "ying", "车": "che",
    "长": "chang", "重": "chong", "黑": "he", "宓": "mi", "繁": "po", "瞿": "qu", "訾": "zi",
    "厍": "she", "沈": "shen", "任": "ren", "华": "hua", "宁": "ning", "过": "guo", "纪": "ji",
    "那": "na", "贾": "jia", "藏": "zang", "乜": "nie", "费": "fei", "荀": "xun", "郇": "xun",
    "角": "jue", "叶": "ye", "盛": "sheng", "朝": "chao", "相": "xiang", "蕃": "pi", "於": "yu",
    "哈": "ha", "说": "yue", "寻": "xun", "殷": "yin", "万": "wan", "石": "shi",
}
"""Single-character surname readings that differ from (or are at risk in) the common reading."""

FUZZY_RULES: tuple[tuple[str, str], ...] = (
    (r"\bzh", "z"), (r"\bch", "c"), (r"\bsh", "s"),          # retroflex -> dental
    (r"\bn(?=[aeiouv])", "l"),                               # n -> l
    (r"\bhu\b", "fu"), (r"\bhui\b", "fei"), (r"\bhun\b", "fen"), (r"\bhuo\b", "fo"),
    (r"\bhu(a|ai|an|ang)\b", r"f\1"),                         # hu- -> f-
    (r"ng\b", "n"),                                          # -ng -> -n
)
"""Dialect folds applied in order to each syllable (z/zh, c/ch, s/sh, n/l, f/h, -n/-ng)."""

_STRING = "string"


@lru_cache(maxsize=1)
def _converter():  # noqa: ANN202 - opencc has no type hints
    import opencc

    return opencc.OpenCC("t2s")


def _t2s_distinct(values: pd.Series) -> pd.Series:
    """Traditional -> simplified, once per distinct value (all converted in one OpenCC call); 於 kept."""
    t = values.astype(_STRING)
    distinct = pd.unique(t.dropna())
    if len(distinct) == 0:
        return t
    table = dict(zip(distinct, _t2s_list(list(distinct))))
    # a few conversions are not idempotent (薴 -> 苧 -> 苎): convert changed values to a fixpoint
    for _ in range(3):
        changed = [v for k, v in table.items() if v != k]
        again = dict(zip(changed, _t2s_list(changed)))
        if all(again[v] == v for v in changed):
            break
        table = {k: again.get(v, v) for k, v in table.items()}
    return t.map(table).astype(_STRING)


def _t2s_list(values: list[str]) -> list[str]:
    """OpenCC t2s over many newline-free strings in one call, 於 protected."""
    if not values:
        return []
    joined = "\n".join(values).replace("於", _YU_PLACEHOLDER)
    converted = _converter().convert(joined).replace(_YU_PLACEHOLDER, "於").split("\n")
    if len(converted) != len(values):  # pragma: no cover - OpenCC never merges lines
        raise RuntimeError("OpenCC changed the number of lines")
    return converted


def _before_t2s(s: pd.Series) -> pd.Series:
    """NFKC, no whitespace, one standard middle dot, Latin upper-cased; empty -> NA."""
    # upper() may leave text that NFKC changes again (e.g. a decomposed capital): NFKC after it
    t = s.astype(_STRING).str.normalize("NFKC").str.upper().str.normalize("NFKC")
    # removing whitespace may join a combining mark to a base letter: NFKC once more
    t = t.str.replace(r"\s+", "", regex=True).str.normalize("NFKC")
    t = t.str.replace(f"[{DOT_VARIANTS}]+", MIDDLE_DOT, regex=True)
    t = t.str.strip(MIDDLE_DOT)
    return t.mask(t == "")


def normalise_name(s: pd.Series) -> pd.Series:
    """Names for comparison: NFKC (full-width -> half-width), whitespace removed, middle-dot variants
    -> U+00B7 (no leading/trailing dot), Latin upper-cased, traditional -> simplified (OpenCC
    ``t2s``, 於 kept). Idempotent; ``string`` dtype, same index, nulls and empty -> NA."""
    return _per_distinct(s, lambda u: _t2s_distinct(_before_t2s(u)))


def _per_distinct(s: pd.Series, fn: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``fn`` applied once per distinct value of ``s`` (``pd.factorize``), spread back (string dtype)."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    if len(uniques) == 0:
        return pd.Series(pd.NA, index=s.index, dtype=_STRING)
    done = fn(pd.Series(uniques, dtype=object)).to_numpy(dtype=object, na_value=None)
    values = np.where(codes >= 0, done[np.maximum(codes, 0)], None)
    return pd.Series(values, index=s.index, dtype=_STRING)


def name_flags(s: pd.Series) -> pd.DataFrame:
    """Booleans per name: ``has_unknown`` (``?``, ``？``, U+FFFD or private-use characters),
    ``traditional`` (OpenCC changes it, 於 aside), ``minority_dot`` (has a dot-separated part)."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    pre = _before_t2s(pd.Series(uniques, dtype=object))
    post = _t2s_distinct(pre)
    flags = {
        "has_unknown": pre.str.contains(f"[{UNKNOWN_CHARS}]", regex=True),
        "traditional": pre != post,
        "minority_dot": pre.str.contains(MIDDLE_DOT, regex=False),
    }
    return pd.DataFrame(
        {k: np.append(v.fillna(False).to_numpy(dtype=bool), False)[codes] for k, v in flags.items()},
        index=s.index,
    )


def split_surname(s: pd.Series) -> pd.DataFrame:
    """``surname`` and ``given`` of normalised names: a compound surname (COMPOUND_SURNAMES) when
    the name has 3+ characters, else the first character. Minority names with a dot, and names
    without Chinese characters, have no surname (NA) and the whole name as ``given``; a
    one-character name is all surname."""
    codes, uniques = pd.factorize(normalise_name(s), use_na_sentinel=True)
    n = pd.Series(uniques, dtype=_STRING)  # once per distinct name
    length = n.str.len()
    han = n.str.match(r"[\u3400-\u9fff\uf900-\ufaff]", na=False) & ~n.str.contains(
        MIDDLE_DOT, regex=False).fillna(False)
    compound = han & (length >= 3) & n.str.slice(0, 2).isin(list(COMPOUND_SURNAMES)).fillna(False)
    surname = n.str.slice(0, 1).where(~compound, n.str.slice(0, 2)).where(han)
    given = n.where(~han, n.str.slice(1).where(~compound, n.str.slice(2)))
    given = given.mask(given == "")

    def spread(x: pd.Series) -> pd.Series:
        values = np.append(x.to_numpy(dtype=object, na_value=None), None)[codes]
        return pd.Series(values, index=s.index, dtype=_STRING)

    return pd.DataFrame({"surname": spread(surname), "given": spread(given)}, index=s.index)


_CHAR_PINYIN: dict[str, str] = {}
"""Reading of each character seen so far (pypinyin's reading of the character alone)."""
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def _char_reading(ch: str) -> str:
    reading = _CHAR_PINYIN.get(ch)
    if reading is None:
        from pypinyin import Style, lazy_pinyin

        reading = lazy_pinyin(ch, style=Style.NORMAL)[0]
        _CHAR_PINYIN[ch] = reading
    return reading


def _pinyin_of(name: str) -> str:
    """Pinyin of one normalised name (called once per distinct name).

    The surname (compound first) is read from the surname tables or, failing that, as its
    character alone; the given name as pypinyin's ``lazy_pinyin`` reads it, but cheaper: one or two
    Chinese characters that are not one of pypinyin's phrases are read character by character from
    a cache (which is what ``lazy_pinyin`` does for them); phrases and longer or mixed text go
    through ``lazy_pinyin``. Minority names (with a dot) have no surname.
    """
    syllables: list[str] = []
    rest = name
    # readings apply to a surname passed alone too (``单`` -> shan, ``尉迟`` -> yu chi)
    if MIDDLE_DOT not in name and name[:2] in COMPOUND_SURNAMES:
        syllables.extend(COMPOUND_SURNAMES[name[:2]].split())
        rest = name[2:]
    elif MIDDLE_DOT not in name and _HAN.match(name[:1]):
        # the surname is read alone (never as part of a phrase with the given name)
        syllables.append(SURNAME_READINGS.get(name[0]) or _char_reading(name[0]))
        rest = name[1:]
    if not rest:
        pass
    elif len(rest) <= 2 and _HAN.fullmatch(rest) and rest not in _phrases():
        syllables.extend(_char_reading(ch) for ch in rest)
    else:
        from pypinyin import Style, lazy_pinyin

        syllables.extend(lazy_pinyin(rest, style=Style.NORMAL, errors=_other))
    return " ".join(p for p in syllables if p)


@lru_cache(maxsize=1)
def _phrases() -> dict:  # type: ignore[type-arg]
    from pypinyin.constants import PHRASES_DICT

    return PHRASES_DICT


def _other(run: str) -> list[str]:
    """pypinyin's reading of a run of non-Chinese characters: dots skipped, unknowns ``?``."""
    out: list[str] = []
    for token in _split_runs(run):
        if token in (MIDDLE_DOT, ""):
            continue
        out.append("?" if _is_unknown(token) else token.lower())
    return out


def _is_unknown(token: str) -> bool:
    return token == "?" or token == "\ufffd" or "\ue000" <= token <= "\uf8ff"


def _split_runs(run: str) -> list[str]:
    """A run of non-Chinese characters: unknown placeholders and dots alone, other text grouped."""
    out: list[str] = []
    buf = ""
    for ch in run:
        if _is_unknown(ch) or ch == MIDDLE_DOT:
            if buf:
                out.append(buf)
                buf = ""
            out.append(ch)
        else:
            buf += ch
    if buf:
        out.append(buf)
    return out


def name_pinyin(s: pd.Series) -> pd.Series:
    """Surname-aware pinyin without tones, syllables joined by one space (``单雄信`` -> ``shan xiong
    xin``); a surname passed alone gets its surname reading (``单`` -> ``shan``, ``尉迟`` -> ``yu chi``;
    so does a two-character name equal to a compound surname). Names are normalised first (traditional and simplified read the same); middle dots are
    skipped; unknown characters read ``?``; Latin text is kept lower-cased. Computed once per
    distinct name and spread back."""
    n = normalise_name(s)
    return _per_distinct(n, lambda u: u.map(_pinyin_of, na_action="ignore"))


def fold_pinyin(p: pd.Series) -> pd.Series:
    """Dialect-fold pinyin text (FUZZY_RULES): zh/ch/sh -> z/c/s, initial n -> l, hu- -> f-
    (hui -> fei, huang -> fang), -ng -> -n. ``?`` stays ``?``. Once per distinct value, each
    syllable folded once (a cached table: there are ~400 syllables)."""
    return _per_distinct(p, lambda u: u.map(_fold_text, na_action="ignore"))


def _fold_text(text: str) -> str:
    return " ".join(_fold_syllable(x) for x in str(text).lower().split(" "))


@lru_cache(maxsize=8192)
def _fold_syllable(syllable: str) -> str:
    for pattern, repl in FUZZY_RULES:
        syllable = re.sub(pattern, repl, syllable)
    return syllable


def pinyin_fuzzy(s: pd.Series) -> pd.Series:
    """Dialect-folded pinyin for a second tier of closeness (刘娜 ``liu la`` = 刘拉; 黄芳 ``fan fan``
    = 方凡; 张生 ``zan sen`` = 赞森). Accepts names, or pinyin already made by :func:`name_pinyin`
    (values of only ``a-z``, digits, ``?`` and single spaces are taken as pinyin)."""
    t = s.astype(_STRING)
    is_pinyin = t.str.fullmatch(r"[a-z0-9?]+(?: [a-z0-9?]+)*", na=False)
    if bool(is_pinyin.all()):
        return fold_pinyin(t)
    made = name_pinyin(t.where(~is_pinyin))
    return fold_pinyin(made.where(~is_pinyin, t))
