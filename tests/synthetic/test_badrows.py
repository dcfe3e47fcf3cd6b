"""Hard errors the generator plants (unigrid/synthetic/badrows.py) and truth/bad_rows.parquet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.contract import load_contracts
from matching.standardise.dates import parse_dates, parse_months
from tests.synthetic.conftest import export, manifest, truth
from unigrid.settings import DEFAULT_CONTRACTS_DIR
from unigrid.synthetic import DEFAULT_CONFIG, KEYS, SOURCES, SourceErrors, generate_city
from unigrid.synthetic.badrows import (
    KINDS,
    REQUIRED,
    REQUIRED_DATES,
    RULE,
    bad_date_texts,
    bad_rows_truth,
    blank,
    export_keys,
    export_rows,
    plant_source,
    rates,
    scaled_hard_errors,
    source_errors,
)

BOOST = 50
"""Hard-error rates x50 in the boosted city (3,000 persons): every kind in the big sources."""


@pytest.fixture(scope="module")
def contracts() -> dict:
    return {c.name: c for c in load_contracts(DEFAULT_CONTRACTS_DIR)}


def toy(n: int, key: str = "编号") -> pd.DataFrame:
    """A frame shaped like the grid collection: key, required grid code and name, person index."""
    return pd.DataFrame({"采集编号": [f"CJ{i:07d}" for i in range(n)], "_pid": np.arange(n) // 2,
                         "网格编码": "420502001001001", "姓名": "张三", "出生日期": "1990-01-01"})


# -- declared against the contracts -----------------------------------------------------------

def test_required_columns_are_the_contracts(contracts: dict) -> None:
    for name in SOURCES:
        c = contracts[name]
        assert tuple(KEYS[name]) == tuple(c.key), name
        req = {m.column for m in c.columns if m.required}
        assert set(REQUIRED[name]) - set(c.key) == req - set(c.key), name


@pytest.mark.parametrize("source", sorted(REQUIRED_DATES))
def test_required_dates_are_required_and_parsed(contracts: dict, source: str) -> None:
    col, kind = REQUIRED_DATES[source]
    m = next(m for m in contracts[source].columns if m.column == col)
    assert m.required and m.value_type == kind


@settings(max_examples=60, deadline=None)
@given(year=st.integers(1900, 2026), month=st.integers(1, 12), day=st.integers(1, 28),
       seed=st.integers(0, 2**32 - 1))
def test_bad_dates_never_parse(year: int, month: int, day: int, seed: int) -> None:
    """Whatever the real date, the garbage is unparseable with every contract's formats."""
    rng = np.random.default_rng(seed)
    cur = pd.Series([f"{year}-{month:02d}-{day:02d}", f"{year}年{month:02d}月{day:02d}日",
                     f"{year}{month:02d}{day:02d}", None] * 4)
    texts = pd.Series(bad_date_texts(cur, "date", rng))
    assert texts.notna().all()
    for fmts in (["%Y-%m-%d"], ["%Y年%m月%d日", "%Y/%m/%d", "%Y%m%d", "%Y-%m-%d"]):
        assert parse_dates(texts, fmts).isna().all()
    months = pd.Series(bad_date_texts(pd.Series([f"{year}{month:02d}"] * 8), "month", rng))
    assert parse_months(months, ["%Y%m"]).isna().all()


# -- planting on a toy frame ------------------------------------------------------------------

RATES = SourceErrors(key_blank=0.01, required_blank=0.02, row_twice=0.01, key_reused=0.005)


def test_rates_roughly_as_configured() -> None:
    n = 40_000
    f = plant_source("grid_collection", toy(n), np.ones(n, dtype=bool), RATES,
                     np.random.default_rng(1))
    counts = f["_bad"].value_counts()
    for kind, rate in rates(RATES).items():
        sd = np.sqrt(n * rate)
        assert abs(counts.get(kind, 0) - n * rate) <= 4 * sd + 1, kind
    assert "date_unparseable" not in counts  # the grid collection has no required date


@pytest.mark.parametrize("kind, column, check", [
    ("key_blank", "采集编号", lambda v: v is None),
    ("required_blank", None, lambda v: v is None),
])
def test_blanked_cells(kind: str, column: str | None, check) -> None:
    f = plant_source("grid_collection", toy(5000), np.ones(5000, dtype=bool), RATES,
                     np.random.default_rng(2))
    rows = f[f["_bad"] == kind]
    assert len(rows) > 10
    for _, r in rows.iterrows():
        assert check(r[column or r["_bad_col"]])
        assert r["_bad_was"] is not None


def test_only_eligible_rows_and_keys_reused_from_earlier_other_persons() -> None:
    n = 6000
    ok = np.arange(n) % 3 != 0
    f = plant_source("grid_collection", toy(n), ok, RATES, np.random.default_rng(3))
    marked = f["_bad"].notna().to_numpy()
    assert marked.any() and not (marked & ~ok).any()
    reused = np.flatnonzero((f["_bad"] == "key_reused").to_numpy())
    assert len(reused)
    keys = f["采集编号"].to_numpy()
    for j in reused:
        i = np.flatnonzero(keys[:j] == keys[j])
        assert len(i) == 1 and f["_pid"].iat[i[0]] != f["_pid"].iat[j]
        assert pd.isna(f["_bad"].iat[i[0]])


def test_composite_key_reused_whole() -> None:
    n = 4000
    f = pd.DataFrame({"低保证号": [f"DB{i // 3}" for i in range(n)], "序号": np.arange(n) % 3 + 1,
                      "_pid": np.arange(n), "姓名": "李四"})
    err = SourceErrors(key_reused=0.01, key_blank=0.01)
    f = plant_source("ca_subsistence", f, np.ones(n, dtype=bool), err, np.random.default_rng(4))
    keys = export_keys("ca_subsistence", f)
    assert (keys.notna() & keys.duplicated()).sum() == (f["_bad"] == "key_reused").sum() > 0
    assert keys.isna().sum() == (f["_bad"] == "key_blank").sum() > 0


def test_export_rows_doubles_and_truth_follows() -> None:
    f = plant_source("grid_collection", toy(3000), np.ones(3000, dtype=bool),
                     SourceErrors(row_twice=0.01), np.random.default_rng(5))
    twice = int((f["_bad"] == "row_twice").sum())
    out = export_rows(f)
    assert len(out) == len(f) + twice > len(f)
    cols = ["采集编号", "网格编码", "姓名", "_pid"]
    copies = np.flatnonzero((out["_bad"] == "row_twice").to_numpy())
    assert (out[cols].iloc[copies].to_numpy() == out[cols].iloc[copies - 1].to_numpy()).all()
    assert out["_bad"].iloc[copies - 1].isna().all()
    frames = {s: pd.DataFrame({c: [] for c in (*KEYS[s], "_pid")}) for s in SOURCES}
    frames["grid_collection"] = out
    t = bad_rows_truth(frames)
    assert list(t["row_no"]) == list(copies + 1)
    assert (t["rule"] == "duplicate_key").all() and (t["column"] == "采集编号").all()


def test_truth_drops_a_mark_whose_error_was_put_right() -> None:
    f = plant_source("grid_collection", toy(3000), np.ones(3000, dtype=bool),
                     SourceErrors(required_blank=0.02), np.random.default_rng(6))
    rows = np.flatnonzero(f["_bad"].notna().to_numpy())
    frames = {s: pd.DataFrame({c: [] for c in (*KEYS[s], "_pid")}) for s in SOURCES}
    frames["grid_collection"] = f
    assert len(bad_rows_truth(frames)) == len(rows)
    fixed = f.copy()
    r = rows[0]
    fixed.iat[r, fixed.columns.get_loc(fixed["_bad_col"].iat[r])] = fixed["_bad_was"].iat[r]
    frames["grid_collection"] = fixed
    assert set(bad_rows_truth(frames)["row_no"]) == set(rows[1:] + 1)


def test_scaled_rates_and_defaults() -> None:
    cfg = scaled_hard_errors(DEFAULT_CONFIG, 10)
    base, scaled = source_errors(DEFAULT_CONFIG), source_errors(cfg)
    for name in SOURCES:
        for k in KINDS:
            assert getattr(scaled[name], k) == pytest.approx(min(0.2, 10 * getattr(base[name], k)))
        assert scaled[name].id_mistyped == base[name].id_mistyped
    total = {n: sum(rates(e).values()) for n, e in base.items()}
    assert total["ps_wanted_list"] == 0
    assert max(total, key=total.get) == "grid_collection"
    assert all(0.0002 <= t <= 0.001 for n, t in total.items() if n != "ps_wanted_list")


# -- a generated city ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def boosted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 3,000-person city with hard-error rates x50, day 1 and day 2."""
    base = tmp_path_factory.mktemp("boosted")
    cfg = scaled_hard_errors(DEFAULT_CONFIG, BOOST)
    generate_city(3000, 5, base / "d1", config=cfg)
    generate_city(3000, 5, base / "d2", day=2, config=cfg)
    return base / "d1", base / "d2"


def check_truth_against_exports(city: Path) -> pd.DataFrame:
    """Every bad_rows entry is visible in the export, and the export has no other hard error."""
    bad = truth(city, "bad_rows")
    for source in SOURCES:
        f = export(city, source)
        keys = export_keys(source, f)
        b = bad[bad["source"] == source]
        row = b["row_no"].to_numpy() - 1
        assert b["row_no"].is_unique
        assert (keys.iloc[row].to_numpy(dtype=object) == b["source_key"].to_numpy(dtype=object)).all()
        later = (keys.duplicated(keep="first") & keys.notna()).to_numpy()
        expect = {"key_missing": keys.isna().to_numpy(), "duplicate_key": later}
        for rule, mask in expect.items():
            assert set(np.flatnonzero(mask) + 1) == set(b.loc[b["rule"] == rule, "row_no"]), (source, rule)
        for col in REQUIRED[source]:
            empty = blank(f[col]) & keys.notna().to_numpy() & ~later
            rows = b.loc[(b["rule"] == "required_missing") & (b["column"] == col), "row_no"]
            assert set(np.flatnonzero(empty) + 1) == set(rows), (source, col)
        if source in REQUIRED_DATES:
            col, kind = REQUIRED_DATES[source]
            text = f[col].astype(object).where(~pd.isna(f[col]), None)
            parse = parse_months if kind == "month" else parse_dates
            fmts = next(c.formats for c in load_contracts(DEFAULT_CONTRACTS_DIR, (source,))[0].columns
                        if c.column == col)
            garbage = parse(text.map(lambda v: v if v is None else str(v)), fmts).isna().to_numpy() \
                & ~blank(f[col]) & keys.notna().to_numpy() & ~later
            rows = b.loc[b["rule"] == "unparseable", "row_no"]
            assert set(np.flatnonzero(garbage) + 1) == set(rows), source
        rec = truth(city, "records")
        kept = b.loc[~b["rule"].isin(["key_missing", "duplicate_key"]), "source_key"]
        assert kept.isin(rec.loc[rec["source"] == source, "source_key"]).all()
    return bad


@pytest.mark.slow
def test_city_bad_rows_match_exports(city1: Path) -> None:
    bad = check_truth_against_exports(city1)
    assert set(bad["rule"]) <= set(RULE.values())
    m = manifest(city1)
    assert sum(s["bad_rows"] for s in m["sources"]) == len(bad)


@pytest.mark.slow
def test_boosted_city_every_kind_everywhere(boosted: tuple[Path, Path]) -> None:
    d1, _ = boosted
    bad = check_truth_against_exports(d1)
    errs = source_errors(scaled_hard_errors(DEFAULT_CONFIG, BOOST))
    m = {s["name"]: s for s in manifest(d1)["sources"]}
    for name in SOURCES:
        have = set(bad.loc[bad["source"] == name, "kind"])
        want = {k for k, r in rates(errs[name]).items() if r > 0}
        assert have <= want and bool(have) == bool(want), name
        if m[name]["records"] >= 1000:
            assert have == want, name
        # rates roughly as configured: a share of the rows (eligible rows are most of them)
        n, r = m[name]["records"], sum(rates(errs[name]).values())
        assert (bad["source"] == name).sum() <= n * r + 4 * np.sqrt(n * r) + 1, name
    for name in ("ps_household_registry", "grid_collection"):
        n, r = m[name]["records"], sum(rates(errs[name]).values())
        assert (bad["source"] == name).sum() >= 0.6 * n * r, name


@pytest.mark.slow
def test_no_anomaly_on_a_bad_row(boosted: tuple[Path, Path]) -> None:
    for city in boosted:
        a, bad = truth(city, "anomalies"), truth(city, "bad_rows")
        keyed = bad[bad["source_key"].notna()]
        hit = a.merge(keyed[~keyed["rule"].isin(["duplicate_key"])], on=["source", "source_key"])
        assert hit.empty
        hit = a.merge(bad, on=["source", "person_id"])
        assert hit.empty


@pytest.mark.slow
def test_day2_bad_rows_stay_bad_unless_corrected(boosted: tuple[Path, Path]) -> None:
    d1, d2 = boosted
    check_truth_against_exports(d2)
    b1, b2 = truth(d1, "bad_rows"), truth(d2, "bad_rows")
    cols = ["source", "source_key", "kind", "column", "person_id"]
    gone = b1.merge(b2[cols], on=cols, how="left", indicator=True).query("_merge == 'left_only'")
    # only registry rows the day's corrections put right disappear, and at least one does
    assert len(gone) >= 1 and set(gone["source"]) == {"ps_household_registry"}
    assert set(gone["kind"]) == {"required_blank"}
    reg1, reg2 = export(d1, "ps_household_registry"), export(d2, "ps_household_registry")
    for _, g in gone.iterrows():
        r1 = reg1.loc[reg1["人员编号"] == g["source_key"]].iloc[0]
        r2 = reg2.loc[reg2["人员编号"] == g["source_key"]].iloc[0]
        assert r1[g["column"]] == "" and r2[g["column"]] != ""
        assert r2["更新时间"] > r1["更新时间"]
    # the grid's bad lines are byte-identical on day 2 (new rows are appended: row numbers stay)
    l1 = (d1 / "exports" / "grid_collection.csv").read_bytes().splitlines()
    l2 = (d2 / "exports" / "grid_collection.csv").read_bytes().splitlines()
    rows = b1.loc[b1["source"] == "grid_collection", "row_no"]
    assert len(rows) and all(l1[r] == l2[r] for r in rows)  # line 0 is the header
    assert len(b2) >= len(b1) - len(gone)


@pytest.mark.slow
def test_same_seed_same_bad_rows(boosted: tuple[Path, Path], tmp_path: Path) -> None:
    d1, _ = boosted
    generate_city(3000, 5, tmp_path / "again", config=scaled_hard_errors(DEFAULT_CONFIG, BOOST))
    pd.testing.assert_frame_equal(truth(d1, "bad_rows"), truth(tmp_path / "again", "bad_rows"))
