"""Auditor CLI: voter roll and views exports, findings review, unmask needs user and purpose."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from tests.warehouse.factory import execute, make_work_db
from unigrid import cli
from unigrid.settings import load_settings
from warehouse.access_log import read_access_log
from warehouse.publish import publish

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("UNIGRID_HOME", str(tmp_path))
    s = load_settings()
    make_work_db(s.work_db, persons=60, run_id="20261120")
    execute(s.work_db, 'CREATE SCHEMA IF NOT EXISTS "check"',
            'CREATE TABLE "check".finding (finding_id VARCHAR, rule VARCHAR, person_id VARCHAR, '
            "status VARCHAR, evidence_hash VARCHAR, first_seen_run VARCHAR, last_seen_run VARCHAR)",
            "INSERT INTO \"check\".finding VALUES ('F00000000000000AA', 'deceased_pensioner', "
            "'P000000000001', 'open', 'h1', '20261120', '20261120')")
    publish(s, "20261120")
    return tmp_path


def test_roll_writes_xlsx_masked_and_logs(home: Path) -> None:
    out = home / "roll.xlsx"
    res = runner.invoke(cli.app, ["roll", "--date", "2027-01-01", "--district", "西陵区",
                                  "--out", str(out)])
    assert res.exit_code == 0, res.output
    wb = openpyxl.load_workbook(out, read_only=True)
    ws = wb[wb.sheetnames[0]]
    rows = list(ws.iter_rows(values_only=True))
    assert "姓名" in rows[0] and len(rows) > 1
    id_col = rows[0].index("公民身份号码")
    import re
    full = re.compile(r"^\d{17}[\dX]$")
    assert not [r for r in rows[1:] if r[id_col] and full.match(str(r[id_col]))]
    log = read_access_log(load_settings().decisions_db)
    assert log[0][4] == "export_voter_roll"


def test_unmask_needs_user_and_purpose(home: Path) -> None:
    res = runner.invoke(cli.app, ["roll", "--date", "2027-01-01", "--district", "西陵区",
                                  "--out", str(home / "r.xlsx"), "--unmask"])
    assert res.exit_code == 2
    assert not (home / "r.xlsx").exists()


def test_views_xlsx_has_every_level(home: Path) -> None:
    out = home / "views.xlsx"
    res = runner.invoke(cli.app, ["views", "--date", "2027-01-01", "--out", str(out)])
    assert res.exit_code == 0, res.output
    names = openpyxl.load_workbook(out, read_only=True).sheetnames
    for zh in ("区县", "街道", "社区", "网格"):
        assert f"{zh}人口" in names and f"{zh}年龄结构" in names


@pytest.mark.parametrize(("args", "code"), [
    (["dismiss", "F00000000000000AA", "--user", "a1", "--reason", "已核实"], 0),
    (["dismiss", "F00000000000000AA", "--user", "a1", "--reason", " "], 2),  # blank reason
    (["confirm", "F00000000000000AA", "--user", "a1"], 0),
    (["confirm", "NOPE", "--user", "a1"], 1),
])
def test_findings_review(home: Path, args: list[str], code: int) -> None:
    res = runner.invoke(cli.app, ["findings", *args])
    assert res.exit_code == code, res.output


def test_dismissal_is_recorded_with_the_evidence_hash(home: Path) -> None:
    from quality.rules.review import latest_reviews
    runner.invoke(cli.app, ["findings", "dismiss", "F00000000000000AA", "--user", "a1",
                            "--reason", "已核实为同名"])
    rev = latest_reviews(load_settings().decisions_db)
    assert rev.iloc[0][["finding_id", "status", "reason", "evidence_hash"]].tolist() == [
        "F00000000000000AA", "dismissed", "已核实为同名", "h1"]


@pytest.mark.parametrize(("args", "listed"), [
    ([], True),
    (["--status", "open"], True),
    (["--status", "dismissed"], False),
    (["--rule", "deceased_pensioner"], True),
    (["--rule", "id_conflict"], False),
])
def test_findings_list_filters(home: Path, args: list[str], listed: bool) -> None:
    res = runner.invoke(cli.app, ["findings", "list", *args])  # default 80-column console
    assert res.exit_code == 0, res.output
    assert ("F00000000000000AA" in res.output) is listed
