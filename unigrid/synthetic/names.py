"""Names: surname frequencies, given-name characters, minority names and name errors."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

# (surname, relative frequency per mille); the top of the national list plus compound surnames
# and surnames with special readings (单 曾 区 仇 解 查 朴).
SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 71), ("李", 72), ("张", 68), ("刘", 54), ("陈", 45), ("杨", 31), ("黄", 22),
    ("赵", 20), ("吴", 20), ("周", 19), ("徐", 14), ("孙", 13), ("马", 12), ("朱", 12),
    ("胡", 13), ("郭", 11), ("何", 10), ("高", 10), ("林", 10), ("罗", 10), ("郑", 9),
    ("梁", 9), ("谢", 8), ("宋", 7), ("唐", 7), ("许", 7), ("韩", 7), ("冯", 7), ("邓", 7),
    ("曹", 6), ("彭", 7), ("曾", 6), ("肖", 6), ("田", 6), ("董", 5), ("袁", 5), ("潘", 5),
    ("于", 5), ("蒋", 5), ("蔡", 5), ("余", 6), ("杜", 5), ("叶", 5), ("程", 5), ("苏", 4),
    ("魏", 4), ("吕", 4), ("丁", 4), ("任", 4), ("沈", 4), ("姚", 4), ("卢", 4), ("姜", 4),
    ("崔", 3), ("钟", 3), ("谭", 4), ("陆", 3), ("汪", 3), ("范", 3), ("金", 3), ("石", 3),
    ("廖", 3), ("贾", 3), ("夏", 3), ("韦", 3), ("付", 3), ("方", 3), ("白", 3), ("邹", 3),
    ("孟", 3), ("熊", 4), ("秦", 3), ("邱", 3), ("江", 3), ("尹", 3), ("薛", 2), ("闫", 2),
    ("段", 2), ("雷", 3), ("侯", 2), ("龙", 2), ("史", 2), ("陶", 2), ("黎", 2), ("贺", 2),
    ("顾", 2), ("毛", 2), ("郝", 2), ("龚", 2), ("邵", 2), ("万", 3), ("覃", 2), ("向", 3),
    ("於", 0.3), ("翟", 0.5), ("单", 0.6), ("区", 0.2), ("仇", 0.3), ("解", 0.4), ("查", 0.4),
    ("朴", 0.2), ("欧阳", 0.8), ("司马", 0.2), ("诸葛", 0.1), ("上官", 0.2),
)

MALE_CHARS = ("伟强军磊洋勇杰涛明超斌鹏辉刚平健俊峰浩宇轩博文志宏建国华林波海东亮飞"
              "凯鑫龙翔晨阳宁成新旭坤松雷哲彬振兴德忠义诚锋")
FEMALE_CHARS = ("芳娜敏静丽艳娟霞秀英慧婷雪梅琳玲燕萍红洁颖倩琴云莉兰凤晶欣怡佳蓉瑶"
                "月媛珍菲妍璐露悦萱彤丹琪")
NEUTRAL_CHARS = "小春秋晓思子嘉天雨安一可心梦乐宏"
RARE_CHARS = "䶮㛃䴉㼆"
"""Characters outside GBK (CJK extension A): ``?`` in a GBK export."""

UYGHUR_GIVEN = ("买买提", "艾力", "阿不都", "热合曼", "吐尔逊", "努尔", "阿依古丽", "古丽",
                "帕提古丽", "迪丽拜尔", "艾克拜尔", "肉孜", "阿力木", "萨迪克", "再努尔",
                "阿卜杜拉", "米娜瓦尔", "热依拉", "玉苏甫", "依明")
KAZAKH_GIVEN = ("叶尔兰", "努尔兰", "阿依达娜", "别克", "哈力木", "加娜尔", "巴合提", "赛力克")

DOT_VARIANTS = np.array(["・", "•", ".", ""], dtype=object)
"""Middle-dot variants seen instead of U+00B7: U+30FB, U+2022, a full stop, nothing."""


def surname_table() -> tuple[np.ndarray, np.ndarray]:
    """(surnames, probabilities)."""
    names = np.array([s for s, _ in SURNAMES], dtype=object)
    w = np.array([f for _, f in SURNAMES], dtype=float)
    return names, w / w.sum()


def draw_han_names(rng: np.random.Generator, male: np.ndarray, surname: np.ndarray | None = None,
                   rare_rate: float = 0.0) -> pd.DataFrame:
    """Han names as components: surname, given1, given2 ('' for one-character given names)."""
    n = len(male)
    if surname is None:
        names, p = surname_table()
        surname = names[rng.choice(len(names), size=n, p=p)]
    male_pool = np.array(list(MALE_CHARS + NEUTRAL_CHARS), dtype=object)
    female_pool = np.array(list(FEMALE_CHARS + NEUTRAL_CHARS), dtype=object)
    g1 = np.where(male, male_pool[rng.integers(0, len(male_pool), n)],
                  female_pool[rng.integers(0, len(female_pool), n)])
    g2 = np.where(male, male_pool[rng.integers(0, len(male_pool), n)],
                  female_pool[rng.integers(0, len(female_pool), n)])
    g2 = np.where(rng.random(n) < 0.3, "", g2)
    rare = rng.random(n) < rare_rate
    rare_pool = np.array(list(RARE_CHARS), dtype=object)
    g1 = np.where(rare, rare_pool[rng.integers(0, len(rare_pool), n)], g1)
    return pd.DataFrame({"surname": surname, "given1": g1, "given2": g2})


def draw_minority_names(rng: np.random.Generator, n: int, kazakh: np.ndarray) -> np.ndarray:
    """Transliterated names ``买买提·艾力`` (own name, U+00B7, father's name)."""
    ug = np.array(UYGHUR_GIVEN, dtype=object)
    kz = np.array(KAZAKH_GIVEN, dtype=object)
    own = np.where(kazakh, kz[rng.integers(0, len(kz), n)], ug[rng.integers(0, len(ug), n)])
    father = ug[rng.integers(0, len(ug), n)]
    return (pd.Series(own, dtype=object) + "\u00b7" + pd.Series(father, dtype=object)).to_numpy()


@lru_cache(maxsize=1)
def homophone_pool() -> dict[str, tuple[str, ...]]:
    """GB2312 level-1 characters grouped by toneless pinyin: char -> other chars, same sound."""
    from pypinyin import lazy_pinyin
    chars = []
    for hi in range(0xB0, 0xD8):
        for lo in range(0xA1, 0xFF):
            if hi == 0xD7 and lo > 0xF9:
                continue
            try:
                chars.append(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    groups: dict[str, list[str]] = {}
    for c, py in zip(chars, lazy_pinyin(chars)):
        groups.setdefault(py, []).append(c)
    pinyin_of = dict(zip(chars, lazy_pinyin(chars)))
    out: dict[str, tuple[str, ...]] = {}
    for c, py in pinyin_of.items():
        others = tuple(x for x in groups[py] if x != c)
        if others:
            out[c] = others
    return out


def homophone_replace(rng: np.random.Generator, chars: np.ndarray) -> np.ndarray:
    """Replace each character by a random other character with the same pinyin (if any)."""
    pool = homophone_pool()
    uniq, inv = np.unique(np.asarray(chars, dtype=object).astype(str), return_inverse=True)
    out = np.asarray(chars, dtype=object).copy()
    u = rng.random(len(out))
    for k, c in enumerate(uniq):  # loop over distinct characters (a few hundred), not rows
        others = pool.get(c)
        if not others:
            continue
        sel = inv == k
        idx = (u[sel] * len(others)).astype(int)
        out[sel] = np.array(others, dtype=object)[idx]
    return out


def compose(parts: pd.DataFrame, minority_name: pd.Series) -> pd.Series:
    """Full name from components, or the minority name where set."""
    han = parts["surname"].astype(str) + parts["given1"].astype(str) + parts["given2"].astype(str)
    return minority_name.where(minority_name.notna() & (minority_name != ""), han)


@lru_cache(maxsize=1)
def _s2t():
    """The OpenCC simplified -> traditional converter (loaded once)."""
    import opencc
    return opencc.OpenCC("s2t")


def to_traditional(names: pd.Series) -> pd.Series:
    """Names in traditional characters (OpenCC s2t), converted in one call."""
    if len(names) == 0:
        return names
    joined = _s2t().convert("\n".join(names.astype(str).tolist()))
    return pd.Series(joined.split("\n"), index=names.index, dtype=object)


def add_space(names: pd.Series, rng: np.random.Generator) -> pd.Series:
    """A space after the first character or before the last (``王 芳``, ``欧阳 娜 娜``)."""
    s = names.astype(str)
    after_first = rng.random(len(s)) < 0.7
    a = s.str[:1] + " " + s.str[1:]
    b = s.str[:-1] + " " + s.str[-1:]
    return a.where(after_first, b)


GBK_DOT_VARIANTS = np.array([".", ""], dtype=object)
"""The variants a GBK system can store (・ and • are outside GBK)."""


def dot_variant(names: pd.Series, rng: np.random.Generator,
                variants: np.ndarray = DOT_VARIANTS) -> pd.Series:
    """Replace U+00B7 with one of ``variants`` (default ・ • . or nothing)."""
    v = variants[rng.integers(0, len(variants), len(names))]
    parts = names.astype(str).str.split("\u00b7", n=1, expand=True)
    if parts.shape[1] < 2:
        return names
    return parts[0] + pd.Series(v, index=names.index, dtype=object) + parts[1]
