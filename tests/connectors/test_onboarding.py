"""Onboarding by a contract file alone: a second district's pension export with its own column
names, another encoding (GBK) and other date formats lands with no code change."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import unigrid.cli_sources as cli
from connectors.contract import load_contract
from connectors.landing import missing_columns_message
from connectors.stage import extract_stage
from unigrid.settings import DEFAULT_CONTRACTS_DIR
from warehouse.connection import work_db

from .conftest import ctx

CONTRACT = """\
# District B's pension ledger: same kind as hrss_pension_ledger, its own shape.
name: hrss_pension_ledger_district_b
system: 区社保经办系统
department: human_resources_social_security
department_zh: 人社局
kind: pension_payments
required: false
snapshot: full
location:
  path: district_b/养老金台账_*.csv
format:
  type: csv
  encoding: gbk
  delimiter: ";"
key: [个人编号]
columns:
  - {column: 参保人姓名, field: name, required: true}
  - {column: 性别代码, field: sex, codes: {M: 男, F: 女}}
  - {column: 出生年月, field: birth_month, formats: ["%Y/%m"]}
  - {column: 公民身份证号, field: id_number, required: true}
  - {column: 居住地址, field: address}
  - {column: 养老金月额, field: pension_monthly_amount, required: true}
  - {column: 首次发放年月, field: pension_start_month, formats: ["%Y年%m月"]}
  - {column: 末次发放年月, field: pension_last_paid_month, required: true, formats: ["%Y年%m月"]}
  - {column: 状态, field: payment_status}
expectations:
  - {field: payment_status, rule: in_set, values: [正常, 停发], severity: soft}
"""

HEADER = ["个人编号", "参保人姓名", "性别代码", "出生年月", "公民身份证号", "居住地址", "养老金月额",
          "首次发放年月", "末次发放年月", "状态"]
ROWS = [
    ["B0001", "赵德胜", "M", "1956/08", "420502195608121234", "西陵区桃花苑3-2-501", "3102.80",
     "2016年09月", "2026年10月", "正常"],
    ["B0002", "钱淑芬", "F", "1960/01", "42050219600101002X", "西陵区桃花苑3-2-502", "2636.03",
     "2015年02月", "2026年10月", "正常"],
    ["B0003", "孙秀英", "F", "1931/10", "420502311012002", "猇亭区望洲公馆1-1-1001", "1999.00",
     "1992年01月", "2026年03月", "停发"],
]


@pytest.fixture
def district_b(settings):
    folder = settings.source_root / "district_b"
    folder.mkdir()
    text = "\n".join(";".join(r) for r in [HEADER] + ROWS) + "\n"
    (folder / "养老金台账_202611.csv").write_bytes(text.encode("gbk"))
    path = Path(settings.contracts_dir) / "hrss_pension_ledger_district_b.yaml"
    path.write_text(CONTRACT, encoding="utf-8")
    return path


def test_the_shipped_pension_contract_does_not_fit_this_export(settings, district_b) -> None:
    shipped = load_contract(DEFAULT_CONTRACTS_DIR / "hrss_pension_ledger.yaml")
    msg = missing_columns_message(shipped, HEADER, "养老金台账_202611.csv")
    assert msg is not None and msg.startswith("养老金台账_202611.csv: missing column(s) 社保编号, 姓名")


def test_check_then_land_a_new_export_by_contract_alone(settings, district_b, monkeypatch) -> None:
    monkeypatch.setattr(cli, "console", Console(width=400, color_system=None))
    monkeypatch.setattr(cli, "_settings", lambda city: settings)
    r = CliRunner().invoke(cli.sources_app, ["check", str(district_b)])
    assert r.exit_code == 0, r.output
    assert "contract fits the data" in r.output
    for column in ("出生年月", "首次发放年月", "末次发放年月", "性别代码", "养老金月额"):
        line = next(ln for ln in r.output.splitlines() if ln.startswith(f"│ {column}"))
        assert "3/3" in line, line  # every value parses with the declared formats and codes

    result = extract_stage(settings, ctx(1))
    assert result.status == "ok", result.messages
    per = result.counts["per_source"]["hrss_pension_ledger_district_b"]
    assert (per["status"], per["rows_landed"], per["rows_new"]) == ("ok", 3, 3)
    with work_db(settings.work_db) as con:
        got = con.execute('SELECT _source_key, "参保人姓名", "公民身份证号", "末次发放年月", _file '
                          'FROM raw.hrss_pension_ledger_district_b ORDER BY _row_no').fetchall()
    assert [g[:4] for g in got] == [(r[0], r[1], r[4], r[8]) for r in ROWS]
    assert got[0][4].endswith("district_b/养老金台账_202611.csv")


def test_the_new_source_parses_into_canonical_fields(settings, district_b) -> None:
    """What validation will make of it: the contract's formats and codes give typed values."""
    import pandas as pd

    import quality.parse as quality_parse

    c = load_contract(district_b)
    frame = pd.DataFrame(ROWS, columns=HEADER)
    parsed = {}
    for cm in c.columns:
        t = quality_parse.clean_text(frame[cm.column])
        if cm.value_type != "sex":
            t = quality_parse.apply_codes(t, cm.codes)
        parsed[cm.field] = quality_parse.parse_field(t, cm)
    assert list(parsed["sex"]) == ["男", "女", "女"]
    assert [str(v)[:7] for v in parsed["pension_last_paid_month"]] == ["2026-10", "2026-10", "2026-03"]
    assert [str(v)[:7] for v in parsed["birth_month"]] == ["1956-08", "1960-01", "1931-10"]
    assert list(parsed["pension_monthly_amount"]) == [3102.80, 2636.03, 1999.00]
