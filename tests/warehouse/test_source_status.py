"""audit.source_status: which sources are stale, and since which run."""

from __future__ import annotations

import pytest

from tests.warehouse.factory import execute
from unigrid.settings import Settings
from warehouse.publish import publish
from warehouse.queries import open_master

RUNS = [
    # (run, source, status)
    ("20261118", "reg", "ok"), ("20261118", "crem", "ok"), ("20261118", "grid", "failed"),
    ("20261119", "reg", "ok"), ("20261119", "crem", "failed"), ("20261119", "grid", "failed"),
    ("20261120", "reg", "ok"), ("20261120", "crem", "failed"), ("20261120", "grid", "failed"),
]


@pytest.fixture
def published(settings: Settings) -> Settings:
    values = ", ".join(
        f"('{r}', '{s}', '{st}', {0 if st != 'ok' else 10}, "
        f"{'NULL' if st == 'ok' else repr(s + ': unreadable')}, "
        f"TIMESTAMPTZ '2026-11-{r[-2:]} 02:00:00+08')" for r, s, st in RUNS)
    execute(settings.work_db,
            "CREATE SCHEMA IF NOT EXISTS meta",
            "CREATE OR REPLACE TABLE meta.source_run (run_id VARCHAR, source VARCHAR, "
            "status VARCHAR, rows_read BIGINT, error VARCHAR, finished_at TIMESTAMPTZ)",
            f"INSERT INTO meta.source_run VALUES {values}")
    publish(settings, "20261120")
    return settings


@pytest.mark.parametrize(("source", "status", "stale", "last_ok", "since"), [
    ("reg", "ok", False, "20261120", None),
    ("crem", "failed", True, "20261118", "20261119"),   # stale since the first failure after ok
    ("grid", "failed", True, None, "20261118"),         # never succeeded
])
def test_source_status(published: Settings, source, status, stale, last_ok, since) -> None:
    with open_master(published) as con:
        row = con.execute("SELECT status, stale, last_ok_run, stale_since_run, run_id "
                          "FROM audit.source_status WHERE source = ?", [source]).fetchone()
    assert row == (status, stale, last_ok, since, "20261120")
