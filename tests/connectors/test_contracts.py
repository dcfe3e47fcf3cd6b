"""The shipped contracts (one per generated export) and contract loading errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from connectors.contract import ContractError, expand, load_contract, load_contracts
from connectors.readers import location_text, source_url
from unigrid.settings import DEFAULT_CONTRACTS_DIR, load_settings

SHIPPED = {
    # name: (kind, department_zh, format, encoding or sheet, key, watermark, required)
    "ps_household_registry": ("household_registry", "公安局", "csv", "gbk", ["人员编号"], "更新时间", True),
    "ps_wanted_list": ("wanted_list", "公安局", "sql", None, ["ztry_bh"], "gxsj", False),
    "ca_cremation": ("cremation", "民政局", "xlsx", "火化登记", ["火化证号"], None, False),
    "ca_subsistence": ("subsistence_allowance", "民政局", "xlsx", "低保名册", ["低保证号", "序号"], None, False),
    "hrss_pension_ledger": ("pension_payments", "人社局", "csv", "gb18030", ["社保编号"], None, True),
    "health_birth_cert": ("birth_certificate", "卫健委", "jsonl", "utf-8", ["cert_no"], None, False),
    "health_death_cert": ("death_certificate", "卫健委", "jsonl", "utf-8", ["cert_no"], None, False),
    "grid_collection": ("grid_collection", "网格中心", "csv", "utf-8-sig", ["采集编号"], None, False),
}


def test_a_contract_ships_for_each_generated_export() -> None:
    contracts = {c.name: c for c in load_contracts(DEFAULT_CONTRACTS_DIR)}
    assert set(contracts) == set(SHIPPED)
    for name, (kind, dept, fmt, enc, key, wm, required) in SHIPPED.items():
        c = contracts[name]
        got_enc = c.format.sheet if fmt == "xlsx" else (None if fmt == "sql" else c.format.encoding)
        assert (c.kind, c.department_zh, c.format.type, got_enc, c.key, c.watermark, c.required) == \
            (kind, dept, fmt, enc, key, wm, required), name
        assert c.path_ is not None and c.path_.stem == name
        assert c.column_for("name") is not None and (c.column_for("name").required or name == "health_birth_cert")


@pytest.mark.parametrize(("name", "column", "codes"), [
    ("hrss_pension_ledger", "性别", {"1": "男", "2": "女"}),
    ("ps_wanted_list", "xb", {"1": "男", "2": "女"}),
])
def test_code_maps(name: str, column: str, codes: dict[str, str]) -> None:
    c = load_contract(DEFAULT_CONTRACTS_DIR / f"{name}.yaml")
    assert next(m for m in c.columns if m.column == column).codes == codes


@pytest.mark.parametrize(("name", "field", "formats"), [
    ("ps_wanted_list", "birth_date", ["%Y%m%d"]),
    ("hrss_pension_ledger", "pension_last_paid_month", ["%Y%m"]),
    ("hrss_pension_ledger", "birth_month", ["%Y%m"]),
    ("ca_subsistence", "subsidy_last_paid_month", ["%Y-%m"]),
    ("ca_cremation", "death_date", ["%Y年%m月%d日", "%Y/%m/%d", "%Y%m%d", "%Y-%m-%d"]),
    ("grid_collection", "collected_at", ["%Y-%m-%d %H:%M"]),
    ("health_birth_cert", "issued_at", ["%Y-%m-%dT%H:%M:%S"]),
])
def test_date_formats_per_column(name: str, field: str, formats: list[str]) -> None:
    c = load_contract(DEFAULT_CONTRACTS_DIR / f"{name}.yaml")
    assert c.column_for(field).formats == formats


@pytest.mark.parametrize(("name", "field"), [
    ("ps_wanted_list", "id_number"), ("ps_wanted_list", "case_no"),
    ("hrss_pension_ledger", "pension_last_paid_month"), ("ca_cremation", "death_date"),
    ("health_death_cert", "death_date"), ("health_birth_cert", "birth_date"),
    ("grid_collection", "grid_code"),
])
def test_required_fields(name: str, field: str) -> None:
    assert load_contract(DEFAULT_CONTRACTS_DIR / f"{name}.yaml").column_for(field).required


@pytest.mark.parametrize("name", ["ps_household_registry", "hrss_pension_ledger", "ca_subsistence"])
def test_an_id_the_department_should_always_have_is_flagged_when_blank_not_dropped(name: str) -> None:
    c = load_contract(DEFAULT_CONTRACTS_DIR / f"{name}.yaml")
    assert not c.column_for("id_number").required  # the exports do have a few blanks
    assert any(e.field == "id_number" and e.rule == "not_null" and e.severity == "soft"
               for e in c.expectations)


def test_wanted_list_url_defaults_to_the_sqlite_file_and_follows_the_setting(tmp_path: Path) -> None:
    c = load_contract(DEFAULT_CONTRACTS_DIR / "ps_wanted_list.yaml")
    s = replace(load_settings(env={}, cwd=tmp_path), source_root=tmp_path / "exports")
    assert source_url(c, s) == f"sqlite:///{tmp_path}/exports/ps_wanted.sqlite"
    s2 = load_settings(env={"UNIGRID_WANTED_DB_URL": "mysql+pymysql://u:secret@db/x"}, cwd=tmp_path)
    assert source_url(c, s2) == "mysql+pymysql://u:secret@db/x"
    assert location_text(c, s2) == "mysql+pymysql://u:***@db/x ps_wanted_list"


@pytest.mark.parametrize(("text", "env", "out"), [
    ("${A:-x/{root}/y}", {}, "x/R/y"),
    ("${A:-x/{root}/y}", {"A": "a"}, "a"),
    ("{root}/${B}", {"B": "b"}, "R/b"),
    ("${C:-}", {}, ""),
])
def test_expand_allows_placeholders_inside_defaults(text: str, env: dict, out: str) -> None:
    assert expand(text, env, root="R") == out


def test_contract_errors_point_at_the_line(tmp_path: Path) -> None:
    text = (DEFAULT_CONTRACTS_DIR / "hrss_pension_ledger.yaml").read_text(encoding="utf-8")
    bad = text.replace("field: pension_monthly_amount", "field: pension_amount")
    p = tmp_path / "x.yaml"
    p.write_text(bad, encoding="utf-8")
    line = next(i for i, ln in enumerate(bad.splitlines(), 1) if "pension_amount" in ln)
    with pytest.raises(ContractError, match=rf"x.yaml:{line}: columns.5.field: .*unknown canonical field 'pension_amount'"):
        load_contract(p)
