"""All eight generated exports land from a fresh city with the shipped contracts; the next
night's exports land incrementally."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from connectors.stage import extract_stage
from unigrid.settings import DEFAULT_CONTRACTS_DIR, load_settings
from unigrid.synthetic import generate_city
from warehouse.connection import work_db

from .conftest import ctx


@pytest.mark.slow
def test_generated_city_lands_every_source_with_the_manifest_counts(tmp_path: Path) -> None:
    day1 = generate_city(persons=2000, seed=11, out=tmp_path / "city", force=True)
    settings = replace(load_settings(env={}, cwd=tmp_path), contracts_dir=DEFAULT_CONTRACTS_DIR,
                       source_root=tmp_path / "city" / "exports")
    result = extract_stage(settings, ctx(20))
    assert result.status == "ok", result.messages
    per = result.counts["per_source"]
    expected = {s["name"]: s["records"] for s in day1["sources"]}
    assert len(expected) == 8
    assert {k: v["rows_landed"] for k, v in per.items()} == expected
    assert all(v["rows_rejected"] == 0 for v in per.values())
    truth = pd.read_parquet(tmp_path / "city" / "truth" / "records.parquet")
    with work_db(settings.work_db) as con:
        for source, keys in truth.groupby("source")["source_key"]:
            landed = {r[0] for r in con.execute(f'SELECT _source_key FROM raw."{source}"').fetchall()}
            assert landed == set(keys), source  # the keys the truth knows, exactly

    # the next night: only new and changed rows land; re-running the night changes nothing
    day2 = generate_city(persons=2000, seed=11, out=tmp_path / "city", day=2, force=True)
    r2 = extract_stage(settings, ctx(21))
    assert r2.status == "ok", r2.messages
    per2 = r2.counts["per_source"]
    for s in day2["sources"]:
        p = per2[s["name"]]
        assert p["rows_landed"] == p["rows_new"] + p["rows_changed"]
        if s["name"] != "ps_wanted_list":  # the wanted list is pulled past its watermark
            assert p["rows_read"] == s["records"]
    wanted = next(s for s in day2["sources"] if s["name"] == "ps_wanted_list")
    assert per2["ps_wanted_list"]["rows_read"] < wanted["records"]
    again = extract_stage(settings, ctx(21))
    assert again.counts["per_source"] == per2


@pytest.mark.slow
@pytest.mark.parametrize("url", [
    pytest.param("postgresql+psycopg://postgres@127.0.0.1:5432/test", marks=pytest.mark.postgres,
                 id="postgres"),
    pytest.param("mysql+pymysql://root@127.0.0.1:3306/test", marks=pytest.mark.mariadb,
                 id="mariadb")])
def test_generated_wanted_list_lands_from_the_sql_server(tmp_path: Path, url: str) -> None:
    """``unigrid generate --sql-url``: the wanted list comes from a real server; the shipped
    contract reads it once UNIGRID_WANTED_DB_URL points there (here: under a unique table)."""
    import shutil

    import sqlalchemy as sa

    from .conftest import unique_table

    table = unique_table("ug_city_wanted")
    manifest = generate_city(persons=300, seed=5, out=tmp_path / "city", sql_url=url,
                             sql_table=table, force=True)
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    text = (DEFAULT_CONTRACTS_DIR / "ps_wanted_list.yaml").read_text(encoding="utf-8")
    (contracts / "ps_wanted_list.yaml").write_text(
        text.replace("table: ps_wanted_list", f"table: {table}"), encoding="utf-8")
    shutil.copy(DEFAULT_CONTRACTS_DIR / "hrss_pension_ledger.yaml", contracts)
    settings = replace(load_settings(env={"UNIGRID_WANTED_DB_URL": url}, cwd=tmp_path),
                       contracts_dir=contracts, source_root=tmp_path / "city" / "exports")
    try:
        result = extract_stage(settings, ctx(20))
    finally:
        eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with eng.begin() as con:
            con.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        eng.dispose()
    assert result.status == "ok", result.messages
    expected = {s["name"]: s["records"] for s in manifest["sources"]}
    per = result.counts["per_source"]
    assert per["ps_wanted_list"]["rows_landed"] == expected["ps_wanted_list"] > 0
    assert per["hrss_pension_ledger"]["rows_landed"] == expected["hrss_pension_ledger"]
