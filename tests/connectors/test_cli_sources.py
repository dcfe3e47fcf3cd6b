"""``unigrid sources list`` and ``unigrid sources check``."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

import unigrid.cli_sources as cli
from unigrid.settings import DEFAULT_CONTRACTS_DIR

from .conftest import PEOPLE_HEADER, contract_dict, write_csv

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch) -> None:
    monkeypatch.setattr(cli, "console", Console(width=400, color_system=None, soft_wrap=True))


def _contract_file(tmp_path: Path, **over) -> Path:
    p = tmp_path / "people.yaml"
    p.write_text(yaml.safe_dump(contract_dict(**over), allow_unicode=True), encoding="utf-8")
    return p


def test_list_shows_every_shipped_contract(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(cli.sources_app, ["list", "--contracts", str(DEFAULT_CONTRACTS_DIR)])
    assert r.exit_code == 0, r.output
    for name, dept, where in [
            ("ps_household_registry", "公安局", "ps_household_registry.csv"),
            ("ps_wanted_list", "公安局", "ps_wanted.sqlite ps_wanted_list"),
            ("hrss_pension_ledger", "人社局", "csv gb18030"),
            ("ca_cremation", "民政局", "xlsx sheet 火化登记"),
            ("health_birth_cert", "卫健委", "jsonl utf-8"),
            ("grid_collection", "网格中心", "csv utf-8-sig")]:
        line = next(ln for ln in r.output.splitlines() if name in ln)
        assert dept in line and where in line


def test_check_previews_the_mapping_with_masked_values(tmp_path: Path) -> None:
    rows = [["P1", "张三丰", "420502199001011234", "1990-01-01", ""],
            ["P2", "李四", "420502199202021234", "不详", "x"]]
    data = write_csv(tmp_path / "p.csv", rows, "utf-8", PEOPLE_HEADER + ["备注"])
    r = runner.invoke(cli.sources_app, ["check", str(_contract_file(tmp_path)), "--data", str(data)])
    assert r.exit_code == 0, r.output
    out = r.output
    assert "contract fits the data" in out
    assert "420502********1234" in out and "420502199001011234" not in out
    assert "张*丰" in out and "张三丰" not in out
    line = next(ln for ln in out.splitlines() if "出生日期" in ln and "birth_date" in ln)
    assert "%Y-%m-%d" in line and "1/2" in line  # one of the two dates parses
    assert "unmapped columns (landed in raw, not parsed): 备注" in out


def test_check_reports_missing_columns_with_a_hint(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "p.csv", [["P1", "甲", "1", "1990-01-01"]], "utf-8",
                     ["编号", "姓名", "公民身份号码", "出生日期"])
    r = runner.invoke(cli.sources_app, ["check", str(_contract_file(tmp_path)), "--data", str(data)])
    assert r.exit_code == 1
    assert "missing column(s) 身份证号; unexpected column(s): 公民身份号码; nearest: 身份证号 -> 公民身份号码?" in r.output


def test_check_invalid_contract_names_file_and_line(tmp_path: Path) -> None:
    p = _contract_file(tmp_path)
    text = p.read_text(encoding="utf-8").replace("kind: household_registry", "kind: houses")
    p.write_text(text, encoding="utf-8")
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("kind:"))
    r = runner.invoke(cli.sources_app, ["check", str(p)])
    assert r.exit_code == 1
    assert "contract invalid" in r.output and f"people.yaml:{line}: kind:" in r.output.replace("\n", "")


def test_check_unreadable_data_says_why(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_bytes("编号,姓名\n".encode("gbk"))
    r = runner.invoke(cli.sources_app, ["check", str(_contract_file(tmp_path)),
                                        "--data", str(tmp_path / "p.csv")])
    assert r.exit_code == 1
    assert "do not decode as utf-8" in r.output
