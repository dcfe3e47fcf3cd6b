"""Stage functions on tiny staged tables: std assembly (real standardisers), match with a saved
model, versioned model artefacts; the review / evaluate CLI on the result."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from matching.model import current_model, save_model
from matching.stage import match_stage, standardise_stage
from unigrid.settings import load_settings
from unigrid.stages import RunContext
from warehouse.connection import connect, connect_work

from .factories import fixed_model

ID_A = "420502199001011238"  # check digits below are computed by the fixture
RUN1 = RunContext.for_date(date(2026, 11, 1))
RUN2 = RunContext.for_date(date(2026, 11, 2))


def _id(first17: str) -> str:
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return first17 + "10X98765432"[sum(int(c) * k for c, k in zip(first17, w)) % 11]


IDA, IDB = _id("42050219900101123"), _id("42050219850505234")

REGISTRY = pd.DataFrame({
    "_source_key": ["HJ1", "HJ2", "HJ3"], "name": ["李丽", "王伟", "張偉"],
    "sex": ["女", "男", "男"], "birth_date": pd.to_datetime(["1990-01-01", "1985-05-05",
                                                            "2026-06-01"]),
    "id_number": [IDA, IDB, None], "household_no": ["H1", "H2", "H2"],
    "address": ["西陵区桃花苑3-2-501", "西陵区桃花苑1-1-101", "西陵区桃花苑1-1-101"],
    "registry_status": ["正常", "正常", "正常"],
})
GRID = pd.DataFrame({
    "_source_key": ["G1"], "name": ["李莉"], "sex": ["女"],
    "birth_date": pd.to_datetime(["1990-01-01"]), "id_number": [None],
    "address": ["宜昌市西陵区桃花苑小区3号楼2单元501"], "phone": ["138 0000 1111"],
})
BIRTH = pd.DataFrame({
    "_source_key": ["B1"], "name": [None], "sex": ["男"],
    "birth_date": pd.to_datetime(["2026-06-01"]), "father_id_number": [IDB],
    "address": ["西陵区桃花苑1-1-101"],
})


def _write(con, name: str, df: pd.DataFrame, run_id: str = "20261101") -> None:
    df = df.assign(_run_id=run_id, _source=name, _row_no=range(1, len(df) + 1),
                   _row_hash="h", _flags=[[] for _ in range(len(df))])
    con.register("tmp_df", df)
    con.execute(f"CREATE OR REPLACE TABLE staged.{name} AS SELECT * FROM tmp_df")
    con.unregister("tmp_df")


@pytest.fixture()
def settings(tmp_path):
    s = load_settings(env={"UNIGRID_HOME": str(tmp_path)}, cwd=tmp_path).ensure_dirs()
    con = connect_work(s.work_db)
    _write(con, "ps_household_registry", REGISTRY)
    _write(con, "grid_collection", GRID)
    _write(con, "health_birth_cert", BIRTH)
    con.close()
    save_model(fixed_model(), s.model_dir, on=date(2026, 10, 1))
    return s


def test_standardise_stage_builds_std_record(settings) -> None:
    r = standardise_stage(settings, RUN1)
    assert r.counts["records"] == 5
    con = connect(settings.work_db, read_only=True)
    std = con.execute("SELECT * FROM std.record ORDER BY record_id").df().set_index("source_key")
    con.close()
    assert list(std.record_id) == [0, 1, 2, 3, 4]
    assert std.loc["HJ3", "name"] == "张伟"  # traditional -> simplified
    assert std.loc["G1", "name_py"] == std.loc["HJ1", "name_py"]  # homophones
    assert std.loc["HJ1", "id_status"] == "valid" and pd.isna(std.loc["G1", "id18"])
    assert std.loc["G1", "phone"] == "13800001111"
    assert std.loc["G1", "house_key"] == std.loc["HJ1", "house_key"] is not None
    assert std.loc["B1", "kind"] == "birth_certificate"
    assert std.loc["B1", "family_household_no"] == "H2"  # the father's registry household
    assert std.loc["HJ1", "department"] != ""


def test_standardise_stage_reads_latest_row_per_key(settings) -> None:
    con = connect_work(settings.work_db)
    later = REGISTRY.iloc[[0]].assign(name="李俪")
    old = con.execute("SELECT * FROM staged.ps_household_registry").df()
    new = later.assign(_run_id="20261102", _source="ps_household_registry", _row_no=1,
                       _row_hash="h2", _flags=[[]])
    con.register("n", pd.concat([old, new[old.columns]], ignore_index=True))
    con.execute("CREATE OR REPLACE TABLE staged.ps_household_registry AS SELECT * FROM n")
    con.close()
    standardise_stage(settings, RUN1)
    con = connect(settings.work_db, read_only=True)
    assert con.execute("SELECT name FROM std.record WHERE source_key='HJ1'").fetchall() == [("李丽",)]
    con.close()
    standardise_stage(settings, RUN2)
    con = connect(settings.work_db, read_only=True)
    assert con.execute("SELECT name FROM std.record WHERE source_key='HJ1'").fetchall() == [("李俪",)]
    con.close()


def test_match_stage_links_and_reports(settings) -> None:
    standardise_stage(settings, RUN1)
    r = match_stage(settings, RUN1)
    assert r.status == "ok" and r.counts["model_version"] == 1
    con = connect(settings.work_db, read_only=True)
    pl = dict(con.execute("SELECT source_key, person_id FROM link.person_link").fetchall())
    con.close()
    assert len(pl) == 5
    assert pl["G1"] == pl["HJ1"]
    assert pl["B1"] == pl["HJ3"]  # newborn: father's household + birth date + sex + address
    assert len(set(pl.values())) == 3


def test_model_versions_and_pointer(tmp_path) -> None:
    p1 = save_model({"a": 1}, tmp_path, on=date(2026, 1, 2))
    p2 = save_model({"a": 2}, tmp_path, on=date(2026, 1, 3), meta={"why": "retrain"})
    assert (p1.name, p2.name) == ("model-v1-20260102.json", "model-v2-20260103.json")
    assert current_model(tmp_path) == (2, {"a": 2})
    assert current_model(tmp_path / "none") is None


@pytest.mark.slow
def test_review_and_evaluate_cli(settings, monkeypatch, tmp_path) -> None:
    from rich.console import Console

    import unigrid.cli_match as cm
    from unigrid.cli_match import evaluate, review_app

    monkeypatch.setattr(cm, "console", Console(width=300))
    monkeypatch.setenv("UNIGRID_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    standardise_stage(settings, RUN1)
    match_stage(settings, RUN1)
    app = typer.Typer()
    app.add_typer(review_app, name="review")
    app.command("evaluate")(evaluate)
    run = CliRunner().invoke
    res = run(app, ["review", "decide", "--left", "grid_collection:G1", "--right",
                    "ps_household_registry:HJ1", "--verdict", "different", "--user", "steward",
                    "--reason", "other mother"])
    assert res.exit_code == 0, res.output
    assert "decision 1" in res.output
    res = run(app, ["review", "decide", "--left", "x", "--right", "a:b", "--verdict", "same",
                    "--user", "u"])
    assert res.exit_code == 2
    res = run(app, ["review", "list", "--show", "decisions"])
    assert res.exit_code == 0 and "steward" in res.output and "different" in res.output
    res = run(app, ["review", "list"])
    assert res.exit_code == 0 and "review queue" in res.output
    res = run(app, ["review", "explain", "--left", "grid_collection:G1", "--right",
                    "ps_household_registry:HJ1"])
    assert res.exit_code == 0 and "mw_name" in res.output
    # the decision takes effect on the next run and the pair stays split
    match_stage(settings, RUN2)
    con = connect(settings.work_db, read_only=True)
    pl = dict(con.execute("SELECT source_key, person_id FROM link.person_link").fetchall())
    con.close()
    assert pl["G1"] != pl["HJ1"]
    res = run(app, ["review", "undo", "1", "--user", "steward"])
    assert res.exit_code == 0 and "undo of 1" in res.output
    res = run(app, ["review", "list", "--show", "effective"])
    assert "different" not in res.output
    # evaluate against a truth file
    truth = tmp_path / "city" / "truth"
    truth.mkdir(parents=True)
    pd.DataFrame({"source": ["ps_household_registry"] * 3 + ["grid_collection",
                                                             "health_birth_cert"],
                  "source_key": ["HJ1", "HJ2", "HJ3", "G1", "B1"],
                  "person_id": ["T1", "T2", "T3", "T1", "T3"]}).to_parquet(truth / "records.parquet")
    md = tmp_path / "acc.md"
    res = run(app, ["evaluate", "--city", str(tmp_path / "city"), "--markdown", str(md)])
    assert res.exit_code == 0, res.output
    assert "precision 1.0000" in res.output and "recall 0.5000" in res.output
    assert "| grid_collection | ps_household_registry |" in md.read_text()


def test_chunked_std_equals_one_frame(settings) -> None:
    from matching.std import (iter_staged, read_staged, staged_queries, standardise_records,
                              write_std)

    con = connect_work(settings.work_db)
    try:
        queries = staged_queries(con, RUN1.run_id)
        chunks = list(iter_staged(con, queries, chunk_rows=1))
        assert len(chunks) == 3  # one per source at least
        write_std(con, (standardise_records(c) for c in chunks))
        a = con.execute("SELECT * EXCLUDE (flags) FROM std.record ORDER BY record_id").df()
        write_std(con, standardise_records(read_staged(con, RUN1.run_id)))
        b = con.execute("SELECT * EXCLUDE (flags) FROM std.record ORDER BY record_id").df()
    finally:
        con.close()
    pd.testing.assert_frame_equal(a, b)
