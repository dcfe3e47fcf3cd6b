"""An incremental run never goes back in time (the work database holds the latest state)."""

from __future__ import annotations

import duckdb
import pytest

from connectors.stage import extract_stage, latest_ok_run, run_order_error
from tests.connectors.conftest import (PEOPLE_HEADER, contract_dict, ctx, people_rows,
                                       write_contract, write_csv)


@pytest.mark.parametrize("latest, run_id, full, allowed", [
    (None, "20261120", False, True),          # first run
    ("20261120", "20261120", False, True),    # same date again (idempotent re-run)
    ("20261120", "20261121", False, True),    # forward
    ("20261121", "20261120", False, False),   # backwards, incremental: refused
    ("20261121", "20261120", True, True),     # backwards as a full rebuild: allowed
])
def test_run_order_error(latest, run_id, full, allowed) -> None:
    msg = run_order_error(latest, run_id, full)
    assert (msg is None) == allowed
    if msg:
        assert run_id in msg and latest in msg and "unigrid run --full" in msg


def _raw_rows(settings) -> int:
    con = duckdb.connect(str(settings.work_db), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM raw.people").fetchone()[0]
    finally:
        con.close()


def test_extract_refuses_an_older_date_and_lands_nothing(settings) -> None:
    write_contract(settings, contract_dict())
    write_csv(settings.source_root / "people.csv", people_rows(5), header=PEOPLE_HEADER)
    assert extract_stage(settings, ctx(21)).status == "ok"
    before = _raw_rows(settings)
    write_csv(settings.source_root / "people.csv", people_rows(8), header=PEOPLE_HEADER)

    older = extract_stage(settings, ctx(20))
    assert older.status == "failed"
    assert any("older than the latest run 20261121" in m for m in older.messages)
    assert _raw_rows(settings) == before

    assert extract_stage(settings, ctx(20, full=True)).status == "ok"
    con = duckdb.connect(str(settings.work_db), read_only=True)
    try:
        assert latest_ok_run(con) == "20261121"
    finally:
        con.close()
