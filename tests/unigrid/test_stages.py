"""Stage order and honest 'not implemented' handling."""

from datetime import date
from pathlib import Path

import pytest

from unigrid import stages
from unigrid.settings import load_settings
from unigrid.stages import NotImplementedStage, RunContext, StageResult, run_all


def test_stage_order_is_the_documented_flow() -> None:
    assert list(stages.STAGES) == ["extract", "validate", "standardise", "match", "check",
                                   "publish", "report"]


@pytest.mark.parametrize(("d", "run_id"), [(date(2026, 11, 21), "20261121"),
                                            (date(2025, 1, 2), "20250102")])
def test_run_id_is_the_business_date(d: date, run_id: str) -> None:
    assert RunContext.for_date(d).run_id == run_id


def test_run_all_stops_at_first_unimplemented_stage(tmp_path: Path, monkeypatch) -> None:
    calls: list[str] = []

    def ok(name):
        def fn(settings, ctx):
            calls.append(name)
            return StageResult(stage=name, counts={"n": 1})
        return fn

    def missing(settings, ctx):
        calls.append("validate")
        raise NotImplementedStage("validate is later")

    fake = {"extract": ok("extract"), "validate": missing, "standardise": ok("standardise")}
    monkeypatch.setattr(stages, "STAGES", fake)
    results = run_all(load_settings(env={}, cwd=tmp_path), RunContext.for_date(date(2026, 1, 1)))
    assert [r.stage for r in results] == ["extract", "validate"]
    assert [r.status for r in results] == ["ok", "not_implemented"]
    assert calls == ["extract", "validate"]
    assert results[1].messages == ["validate is later"]


def test_run_all_stops_after_until(tmp_path: Path, monkeypatch) -> None:
    fake = {n: (lambda n: lambda s, c: StageResult(stage=n))(n) for n in ["a", "b", "c"]}
    monkeypatch.setattr(stages, "STAGES", fake)
    results = run_all(load_settings(env={}, cwd=tmp_path), RunContext.for_date(date(2026, 1, 1)),
                      until="b")
    assert [r.stage for r in results] == ["a", "b"]


def test_a_crashing_stage_becomes_a_failed_result(tmp_path: Path, monkeypatch) -> None:
    def boom(settings, ctx):
        raise KeyError("column missing")

    monkeypatch.setattr(stages, "STAGES", {"extract": boom})
    s = load_settings(env={}, cwd=tmp_path)
    r = stages.run_stage("extract", s, RunContext.for_date(date(2026, 1, 2)))
    assert r.status == "failed"
    assert r.messages[0] == "KeyError: 'column missing'"
    trace = tmp_path / "var" / "logs" / "20260102-extract.traceback.txt"
    assert trace.exists() and "KeyError" in trace.read_text()
