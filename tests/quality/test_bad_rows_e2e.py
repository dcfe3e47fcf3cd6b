"""End to end: the generator's planted hard errors (truth/bad_rows.parquet) go through extract and
validate into quarantine.row, each with its rule, and nothing else of a source is quarantined."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from unigrid.settings import DEFAULT_CONTRACTS_DIR, load_settings
from unigrid.stages import RunContext, run_stage

PERSONS, SEED, BOOST = 3000, 23, 50
"""A 3,000-person city with the hard-error rates x50, so that every rule shows up."""


def quarantined(con, run_id: str) -> pd.DataFrame:
    """One row per (quarantined row, reason): source, source_key, row_no, rule, column."""
    return con.execute("""
        SELECT source, source_key, row_no, r.rule AS rule, r."column" AS "column"
        FROM quarantine.row, unnest(reasons) AS t(r) WHERE run_id = ?""", [run_id]).df()


@pytest.mark.slow
def test_planted_bad_rows_are_quarantined_with_their_rule(tmp_path: Path) -> None:
    from unigrid.synthetic import DEFAULT_CONFIG, SOURCES, generate_city
    from unigrid.synthetic.badrows import scaled_hard_errors
    from warehouse.connection import work_db

    city = tmp_path / "city"
    manifest = generate_city(PERSONS, SEED, city,
                             config=scaled_hard_errors(DEFAULT_CONFIG, BOOST))
    settings = replace(load_settings(env={}, cwd=tmp_path), contracts_dir=DEFAULT_CONTRACTS_DIR,
                       source_root=city / "exports")
    ctx = RunContext.for_date(date(2026, 11, 20))
    extract = run_stage("extract", settings, ctx)
    assert extract.status == "ok", extract.messages
    result = run_stage("validate", settings, ctx)
    assert result.status == "ok", result.messages

    truth = pd.read_parquet(city / "truth" / "bad_rows.parquet")
    assert set(truth["rule"]) == {"key_missing", "required_missing", "unparseable", "duplicate_key"}
    assert set(truth["kind"]) == {"key_blank", "required_blank", "date_unparseable", "row_twice",
                                  "key_reused"}
    with work_db(settings.work_db) as con:
        q = quarantined(con, ctx.run_id)
        rec = con.execute("SELECT source, rows_read, rows_staged, rows_quarantined, ok "
                          "FROM meta.reconcile WHERE run_id = ?", [ctx.run_id]).df()
        staged = {s: con.execute(f'SELECT count(*) FROM staged."{s}"').fetchone()[0]
                  for s in SOURCES}

    # every planted bad row is quarantined with the planted rule on the planted column
    hit = truth.merge(q, on=["source", "row_no", "rule"], how="left", suffixes=("", "_q"),
                      indicator=True)
    missing = hit[hit["_merge"] == "left_only"]
    assert missing.empty, missing[["source", "row_no", "kind", "column"]].to_dict("records")
    assert (hit["column"] == hit["column_q"]).all()
    assert (hit["source_key"].fillna("") == hit["source_key_q"].fillna("")).all()
    # and nothing else: the quarantined rows are exactly the planted ones
    got = set(map(tuple, q[["source", "row_no"]].drop_duplicates().to_numpy().tolist()))
    assert got == set(map(tuple, truth[["source", "row_no"]].to_numpy().tolist()))
    # a row has only its planted reason, except an empty subsistence case number, which is the
    # key (key_missing) and a required field (required_missing) at once (docs/generator.md)
    extra = q.merge(truth[["source", "row_no", "rule"]], on=["source", "row_no", "rule"],
                    how="left", indicator=True).query("_merge == 'left_only'")
    assert set(map(tuple, extra[["source", "rule", "column"]].to_numpy().tolist())) <= {
        ("ca_subsistence", "required_missing", "低保证号")}

    # reconcile holds, and the counts add up to the manifest's rows
    assert len(rec) == len(SOURCES) and rec["ok"].all()
    assert (rec["rows_read"] == rec["rows_staged"] + rec["rows_quarantined"]).all()
    rows = {s["name"]: s["records"] for s in manifest["sources"]}
    per = truth.groupby("source").size()
    for _, r in rec.iterrows():
        assert r["rows_read"] == rows[r["source"]]
        assert r["rows_quarantined"] == per.get(r["source"], 0), r["source"]
        assert staged[r["source"]] == r["rows_staged"]
    # staged holds one row per record of truth/records.parquet not quarantined
    records = pd.read_parquet(city / "truth" / "records.parquet")
    keyed_bad = truth[~truth["rule"].isin(["key_missing", "duplicate_key"])]
    want = records.groupby("source").size() - keyed_bad.groupby("source").size().reindex(
        records["source"].unique(), fill_value=0)
    for s in SOURCES:
        assert staged[s] == want.get(s, 0), s


def two_nights(tmp_path: Path):
    """Generate, extract and validate day 1 then day 2 (incremental) of the boosted city; yield
    (settings, city, run ids)."""
    from unigrid.synthetic import DEFAULT_CONFIG, generate_city
    from unigrid.synthetic.badrows import scaled_hard_errors

    city = tmp_path / "city"
    settings = replace(load_settings(env={}, cwd=tmp_path), contracts_dir=DEFAULT_CONTRACTS_DIR,
                       source_root=city / "exports")
    runs = []
    for day, run_date in ((1, date(2026, 11, 20)), (2, date(2026, 11, 21))):
        generate_city(PERSONS, SEED, city, day=day, force=True,
                      config=scaled_hard_errors(DEFAULT_CONFIG, BOOST))
        ctx = RunContext.for_date(run_date)
        assert run_stage("extract", settings, ctx).status == "ok"
        result = run_stage("validate", settings, ctx)
        assert result.status == "ok", result.messages
        runs.append(ctx.run_id)
    return settings, city, runs


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory):
    return two_nights(tmp_path_factory.mktemp("nights"))


@pytest.mark.slow
def test_day2_bad_rows_quarantined_in_one_of_the_runs(nights) -> None:
    """Day 2 lands only new and changed rows: a bad row unchanged since day 1 stays in run 1's
    quarantine (same row number: new rows are appended), a changed one is quarantined again."""
    from warehouse.connection import work_db

    settings, city, runs = nights
    truth = pd.read_parquet(city / "truth" / "bad_rows.parquet")
    with work_db(settings.work_db) as con:
        q = pd.concat([quarantined(con, r) for r in runs], ignore_index=True)
        rec = con.execute("SELECT ok, rows_read = rows_staged + rows_quarantined FROM "
                          "meta.reconcile WHERE run_id = ?", [runs[1]]).fetchall()
    assert rec and all(a and b for a, b in rec)
    hit = truth.merge(q.drop_duplicates(["source", "row_no", "rule"]),
                      on=["source", "row_no", "rule"], how="left", indicator=True)
    assert (hit["_merge"] == "both").all(), hit[hit["_merge"] != "both"].to_dict("records")


@pytest.mark.slow
def test_day2_first_occurrence_of_a_repeated_key_stays_staged(nights) -> None:
    from warehouse.connection import work_db

    settings, city, _ = nights
    truth = pd.read_parquet(city / "truth" / "bad_rows.parquet")
    records = pd.read_parquet(city / "truth" / "records.parquet")
    reused = truth[truth["kind"] == "key_reused"]
    assert len(reused)
    with work_db(settings.work_db) as con:
        for source, keys in reused.groupby("source")["source_key"]:
            staged = {r[0] for r in con.execute(
                f'SELECT _source_key FROM staged."{source}"').fetchall()}
            assert set(keys) <= set(records.loc[records["source"] == source, "source_key"])
            assert set(keys) <= staged, source
