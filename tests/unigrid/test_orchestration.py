"""Business date and failure policy of the Airflow task functions."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from unigrid import orchestration, stages
from unigrid.settings import load_settings
from unigrid.stages import StageFailed, StageResult


@pytest.mark.parametrize(("logical", "override", "expected"), [
    # 02:00 Shanghai on the 21st is 18:00 UTC on the 20th: processes the 20th
    (datetime(2026, 11, 20, 18, 0, tzinfo=timezone.utc), None, date(2026, 11, 20)),
    (datetime(2026, 1, 1, 18, 0, tzinfo=timezone.utc), None, date(2026, 1, 1)),
    (datetime(2026, 11, 20, 18, 0, tzinfo=timezone.utc), "2026-10-01", date(2026, 10, 1)),
    (None, "2026-10-01", date(2026, 10, 1)),
])
def test_business_date(logical, override, expected) -> None:
    assert orchestration.business_date_for(logical, override) == expected


def test_business_date_needs_something() -> None:
    with pytest.raises(ValueError):
        orchestration.business_date_for(None, None)


RUN = {"run_id": "20261120", "business_date": "2026-11-20", "full_rebuild": False,
       "sources": ["req", "opt"], "required": ["req"]}


@pytest.fixture
def failing_extract(monkeypatch):
    def fake(settings, ctx):
        return StageResult(stage="extract", status="partial", messages=["unreachable"])
    monkeypatch.setattr(stages, "STAGES", {"extract": fake})


@pytest.mark.parametrize(("source", "last_try", "raises"), [
    ("opt", False, True),   # not the last try: raise so Airflow retries
    ("opt", True, False),   # optional, last try: stale, run goes on
    ("req", True, True),    # required: always fails the task
    ("req", False, True),
])
def test_failure_policy(tmp_path: Path, failing_extract, source, last_try, raises) -> None:
    s = load_settings(env={}, cwd=tmp_path)
    if raises:
        with pytest.raises(StageFailed, match="unreachable"):
            orchestration.source_task("extract", RUN, source, last_try, settings=s)
    else:
        out = orchestration.source_task("extract", RUN, source, last_try, settings=s)
        assert out["stale"] is True and out["source"] == "opt"
