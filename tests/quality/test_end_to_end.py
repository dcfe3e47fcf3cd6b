"""A generated city: extract + validate, two nights; reconciliation holds for every source and
every record the truth knows is staged or quarantined."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from unigrid.settings import DEFAULT_CONTRACTS_DIR, load_settings
from unigrid.stages import RunContext


@pytest.mark.slow
def test_generated_city_extracts_and_validates(tmp_path: Path) -> None:
    from connectors.stage import extract_stage
    from quality.stage import validate_stage
    from unigrid.synthetic import generate_city
    from warehouse.connection import work_db

    settings = replace(load_settings(env={}, cwd=tmp_path), contracts_dir=DEFAULT_CONTRACTS_DIR,
                       source_root=tmp_path / "city" / "exports")
    for day, run_date in ((1, date(2026, 11, 20)), (2, date(2026, 11, 21))):
        generate_city(persons=2000, seed=11, out=tmp_path / "city", day=day, force=True)
        ctx = RunContext.for_date(run_date)
        assert extract_stage(settings, ctx).status == "ok"
        result = validate_stage(settings, ctx)
        assert result.status == "ok", result.messages
        per = result.counts["sources"]
        assert len(per) == 8
        for name, c in per.items():
            assert c["reconcile_ok"] and c["read"] == c["staged"] + c["quarantined"], name
        assert result.counts["rows_staged"] > 0.95 * result.counts["rows_read"]
        truth = pd.read_parquet(tmp_path / "city" / "truth" / "records.parquet")
        with work_db(settings.work_db) as con:
            rec = con.execute("SELECT source, rows_read, rows_staged + rows_quarantined, ok "
                              "FROM meta.reconcile WHERE run_id = ?", [ctx.run_id]).fetchall()
            assert len(rec) == 8 and all(r[1] == r[2] and r[3] for r in rec)
            for source, keys in truth.groupby("source")["source_key"]:
                staged = {r[0] for r in con.execute(
                    f'SELECT _source_key FROM staged."{source}"').fetchall()}
                quarantined = {r[0] for r in con.execute(
                    "SELECT source_key FROM quarantine.row WHERE source = ?", [source]).fetchall()}
                assert set(keys) <= staged | quarantined, source
        html = Path(result.counts["report"]).read_text(encoding="utf-8")
        assert "http://" not in html and "https://" not in html
