"""CLI: exit codes scripts can trust, help texts, the run summary file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from unigrid import cli, stages
from unigrid.stages import NotImplementedStage, StageResult

runner = CliRunner()


@pytest.mark.parametrize(("statuses", "code"), [
    (["ok", "ok"], 0),
    (["ok", "partial"], 4),
    (["ok", "not_implemented"], 3),
    (["partial", "failed"], 1),
    (["failed", "not_implemented"], 1),
])
def test_exit_code_table(statuses: list[str], code: int) -> None:
    results = [StageResult(stage=f"s{i}", status=s) for i, s in enumerate(statuses)]
    assert cli._exit_code(results) == code


@pytest.mark.parametrize("command", ["generate", "extract", "validate", "standardise", "match",
                                     "publish", "check", "report", "run"])
def test_every_stage_has_help(command: str) -> None:
    res = runner.invoke(cli.app, [command, "--help"])
    assert res.exit_code == 0
    assert "Usage" in res.output


def test_run_writes_summary_and_stops_honestly(tmp_path: Path, monkeypatch) -> None:
    def ok(settings, ctx):
        return StageResult(stage="extract", counts={"rows": 5})

    def unbuilt(settings, ctx):
        raise NotImplementedStage("later")

    monkeypatch.setattr(stages, "STAGES", {"extract": ok, "validate": unbuilt})
    monkeypatch.setattr(cli, "STAGES", stages.STAGES)
    monkeypatch.setenv("UNIGRID_HOME", str(tmp_path / "home"))
    res = runner.invoke(cli.app, ["run", "--date", "2026-11-20"])
    assert res.exit_code == 3, res.output
    summary = json.loads((tmp_path / "home" / "runs" / "20261120.json").read_text())
    assert [s["status"] for s in summary["stages"]] == ["ok", "not_implemented"]
    assert summary["stages"][0]["counts"] == {"rows": 5}
    assert "not_implemented" in res.output


def test_bad_date_is_a_usage_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("UNIGRID_HOME", str(tmp_path))
    res = runner.invoke(cli.app, ["extract", "--date", "2026-13-40"])
    assert res.exit_code == 2
    assert "not a date" in res.output
