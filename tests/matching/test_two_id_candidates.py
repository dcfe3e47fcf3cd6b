"""Registry records with one name, birth date and sex under two ID numbers are queued (重户)."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from matching.link import Thresholds, _pair_sql

ROWS = [
    # record_id, kind, name, birth_date, sex, id_key
    (1, "household_registry", "王芳", "1995-11-07", "女", "420503199511070029"),
    (2, "household_registry", "王芳", "1995-11-07", "女", "420505199511076123"),  # 重户 candidate
    (3, "household_registry", "王芳", "1995-11-07", "男", "420505199511076131"),  # other sex
    (4, "grid_collection", "王芳", "1995-11-07", "女", "420506199511070045"),     # not registry
    (5, "household_registry", "王芳", "1995-11-07", "女", None),                  # no usable ID
    (6, "household_registry", "李丽", "1980-01-01", "女", "420502198001010028"),
    (7, "household_registry", "李丽", "1980-01-01", "女", "420502198001010028"),  # same ID
]


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("CREATE SCHEMA std")
    df = pd.DataFrame(ROWS, columns=["record_id", "kind", "name", "birth_date", "sex", "id_key"])
    df["birth_date"] = pd.to_datetime(df["birth_date"]).dt.date
    c.register("df", df)
    c.execute("CREATE TABLE std.record AS SELECT * FROM df")
    return c


def _new_pairs(con, *model: tuple[int, int]) -> pd.DataFrame:
    """The stage's new-pair SQL over model pairs ``model`` (weight 9: match band) and no
    deterministic pairs: what it adds from the two-ID candidates, and how it bands them."""
    rows = ", ".join(f"({a}, {b}, 9.0)" for a, b in model)
    con.execute("CREATE OR REPLACE TEMP TABLE model_pairs AS SELECT * FROM "
                f"(VALUES {rows}) t(record_id_l, record_id_r, match_weight)")
    con.execute("CREATE OR REPLACE TEMP TABLE det_pairs "
                "(record_id_l BIGINT, record_id_r BIGINT, verdict VARCHAR)")
    return con.execute(_pair_sql(Thresholds(), "") + " ORDER BY record_id_l, record_id_r").df()


def test_adds_only_registry_two_id_pairs_in_the_review_band(con) -> None:
    out = _new_pairs(con, (6, 7))
    added = out[out.method == "identity_candidate"]
    assert added[["record_id_l", "record_id_r"]].values.tolist() == [[1, 2]]
    assert added.band.tolist() == ["review"]
    assert len(out) == 2


def test_a_pair_the_model_kept_is_not_duplicated(con) -> None:
    out = _new_pairs(con, (1, 2))
    assert len(out) == 1 and out.method.tolist() == ["model"]
