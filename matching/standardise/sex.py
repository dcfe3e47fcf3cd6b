"""Sex codes to '男' / '女' / NA.

Accepted (after NFKC, trimming and upper-casing): 男 / 女, 男性 / 女性, M / F, MALE / FEMALE,
GB/T 2261.1 codes 1 (male) / 2 (female); 0 (unknown) and 9 (not stated), 未知, 未说明 and anything
else give NA. A caller's ``codes`` map (a contract's ``codes``) is applied first; its result is
read with the same table, so ``{"A": "M"}`` works as well as ``{"A": "男"}``. Vectorised with a
hash lookup (``Series.map`` of a dict).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

MALE, FEMALE = "男", "女"
SEX_CODES: dict[str, str] = {
    "男": MALE, "男性": MALE, "M": MALE, "MALE": MALE, "1": MALE, "男士": MALE,
    "女": FEMALE, "女性": FEMALE, "F": FEMALE, "FEMALE": FEMALE, "2": FEMALE, "女士": FEMALE,
}
"""Built-in table (keys upper-cased); codes 0 and 9 (GB/T 2261.1 unknown / not stated) are absent on purpose."""


def _key(s: pd.Series) -> pd.Series:
    t = s.astype("string").str.normalize("NFKC").str.strip().str.upper()
    return t.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)


def normalise_sex(s: pd.Series, codes: Mapping[str, str] | None = None) -> pd.Series:
    """'男' / '女' / NA for each value (``string`` dtype, same index); ``codes`` applied first.

    Each distinct value is read once (``pd.factorize``): a sex column has a handful of them.
    """
    ids, uniques = pd.factorize(s, use_na_sentinel=True)
    read = _normalise(pd.Series(uniques, dtype=object), codes).to_numpy(dtype=object, na_value=None)
    values = np.where(ids >= 0, read[np.maximum(ids, 0)] if len(read) else None, None)
    return pd.Series(values, index=s.index, dtype="string")


def _normalise(s: pd.Series, codes: Mapping[str, str] | None) -> pd.Series:
    t = _key(s)
    if codes:
        table = {k.strip().upper(): str(v) for k, v in codes.items()}
        mapped = t.map(table)
        t = _key(mapped.astype("string")).fillna(t)
    return t.map(SEX_CODES).astype("string")
