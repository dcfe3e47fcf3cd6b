"""``standardise_records`` works once per distinct value: the result must be what each row gives
standardised alone (property over random frames full of repeats, nulls and messy values)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matching.std import INPUT_FIELDS, once_per_distinct, standardise_records

IDS = ["420502199001011238", "42050219900101123x", "４２０５０２１９９００１０１１２３８",
       "420502900101123", "12345", "", None, "'420502198505052341"]
NAMES = ["李丽", "張偉", "张伟", "单雄信", "欧阳娜", "阿依·买买提", "王?", " 刘 娜 ", "", None, "LI Na"]
ADDRESSES = ["西陵区桃花苑3-2-501", "宜昌市西陵区桃花苑小区3号楼2单元501", "伍家岗区东山1-1-101",
             "某地", "", None]
PHONES = ["138 0000 1111", "+86 13800001111", "0717-1234567", None]


def frame(seed: int, n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pick = (lambda xs: [xs[i] for i in rng.integers(0, len(xs), n)])
    df = pd.DataFrame({"source": "grid_collection", "source_key": [f"K{i}" for i in range(n)],
                       "kind": "grid", "department": "d", "run_id": "20261101", "row_hash": "h"})
    for f in INPUT_FIELDS:
        df[f] = None
    df["id_number"] = pick(IDS)
    df["mother_id_number"] = pick(IDS)
    df["father_id_number"] = pick(IDS)
    df["name"] = pick(NAMES)
    df["address"] = pick(ADDRESSES)
    df["phone"] = pick(PHONES)
    df["sex"] = pick(["男", "女", "1", "2", None])
    df["birth_date"] = pd.to_datetime(pick(["1990-01-01", "2026-06-01", None]))
    df["record_time"] = pd.NaT
    df["flags"] = [[] for _ in range(n)]
    return df


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_row_as_if_standardised_alone(seed: int) -> None:
    df = frame(seed)
    whole = standardise_records(df)
    rows = np.random.default_rng(seed).choice(len(df), size=8, replace=False)  # ~0.5 s a call
    alone = pd.concat([standardise_records(df.iloc[[i]]) for i in rows])
    pd.testing.assert_frame_equal(whole.iloc[rows], alone)
    halves = pd.concat([standardise_records(df.iloc[:17]), standardise_records(df.iloc[17:])])
    pd.testing.assert_frame_equal(whole, halves)
    assert whole["name"].nunique() < len(df)  # the frame really repeats values


@pytest.mark.parametrize("values", [
    pd.Series(["a", "b", "a", None, "b"], dtype="string"),
    pd.Series([None, None], dtype="string"),
    pd.Series([], dtype="string"),
    pd.Series(["x"], dtype="string", index=[7]),
])
def test_once_per_distinct_takes_back_to_the_rows(values: pd.Series) -> None:
    calls: list[int] = []

    def fn(u: pd.Series) -> pd.DataFrame:
        calls.append(len(u))
        return pd.DataFrame({"up": u.str.upper(), "null": u.isna()})

    out = once_per_distinct(values, fn)
    assert list(out.index) == list(values.index)
    assert out["up"].tolist() == [v.upper() if isinstance(v, str) else pd.NA
                                  for v in values.tolist()]
    assert out["null"].tolist() == values.isna().tolist()
    assert calls == [values.nunique() + 1]  # distinct values plus one null
