"""``unigrid users`` (the lead registers it as a sub-app): accounts and tokens from the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from unigrid.cli_serve import users_app
from unigrid.service import auth

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("UNIGRID_HOME", str(tmp_path))
    monkeypatch.delenv("UNIGRID_DECISIONS_DB", raising=False)
    monkeypatch.delenv("UNIGRID_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_users_add_prints_a_working_one_time_secret(home: Path) -> None:
    db = home / "decisions.duckdb"
    r = runner.invoke(users_app, ["add", "wang", "--role", "auditor"])
    assert r.exit_code == 0, r.output
    password = r.output.strip().splitlines()[-1]
    assert auth.check_login(db, "wang", password).must_change
    r = runner.invoke(users_app, ["add", "portal", "--role", "service"])
    token = r.output.strip().splitlines()[-1]
    assert token.startswith("ug_") and auth.principal_for_token(db, token)[0].role == "service"
    r = runner.invoke(users_app, ["add", "li", "--role", "steward", "--department", "人社局"])
    assert r.exit_code == 0
    listing = runner.invoke(users_app, ["list"]).output
    assert "人社局" in listing and password not in listing


@pytest.mark.parametrize("args", [
    ["add", "x", "--role", "root"],
    ["add", "x", "--role", "steward"],
    ["token", "nobody"],
    ["disable", "nobody"],
])
def test_users_bad_input_exits_2(home: Path, args: list[str]) -> None:
    r = runner.invoke(users_app, args)
    assert r.exit_code == 2


def test_disable_revokes(home: Path) -> None:
    db = home / "decisions.duckdb"
    runner.invoke(users_app, ["add", "a", "--role", "admin"])
    token = runner.invoke(users_app, ["token", "a", "--days", "1"]).output.strip().splitlines()[-1]
    assert auth.principal_for_token(db, token) is not None
    assert runner.invoke(users_app, ["disable", "a"]).exit_code == 0
    assert auth.principal_for_token(db, token) is None
