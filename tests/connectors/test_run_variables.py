"""A contract location may name the run's dated drop folder (backfills read their own date)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from connectors.contract import Contract
from connectors.readers import source_files
from connectors.stage import with_run_variables
from unigrid.settings import load_settings
from unigrid.stages import RunContext


def _contract(path: str) -> Contract:
    return Contract.model_validate({
        "name": "pension_x", "system": "x", "department": "hrss", "department_zh": "人社局",
        "kind": "pension_payments", "location": {"path": path},
        "format": {"type": "csv", "encoding": "utf-8"}, "key": ["k"],
        "columns": [{"column": "n", "field": "name"}]})


def test_business_date_placeholder_picks_the_dated_folder(tmp_path: Path) -> None:
    for d in ("2026-11-19", "2026-11-20"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "pension.csv").write_text("k,n\n1,a\n")
    s = load_settings(env={"UNIGRID_SOURCE_ROOT": str(tmp_path)}, cwd=tmp_path)
    ctx = RunContext.for_date(date(2026, 11, 20))
    files = source_files(_contract("${UNIGRID_BUSINESS_DATE}/pension.csv"),
                         with_run_variables(s, ctx))
    assert files == [tmp_path / "2026-11-20" / "pension.csv"]


def test_the_run_date_wins_over_a_stray_environment_variable(tmp_path: Path) -> None:
    s = load_settings(env={"UNIGRID_BUSINESS_DATE": "2020-01-01"}, cwd=tmp_path)
    out = with_run_variables(s, RunContext.for_date(date(2026, 11, 20)))
    assert out.extra["UNIGRID_BUSINESS_DATE"] == "2026-11-20"
    assert out.extra["UNIGRID_RUN_ID"] == "20261120"
