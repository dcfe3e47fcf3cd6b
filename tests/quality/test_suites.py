"""Suite generation from a contract: which expectations, on which columns, hard or soft."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from connectors.contract import load_contracts
from quality.suites import ID_STATUS_FLAGS, SuiteSpec, build_suite, suite_specs
from tests.quality.conftest import make_contract

TODAY = date(2026, 11, 20)
REPO = Path(__file__).resolve().parents[2]


def _by_rule(spec: SuiteSpec) -> dict[tuple[str, str | None], tuple[str, str, str]]:
    return {(s.rule, s.field): (s.expectation, s.column, s.severity) for s in spec.specs}


@pytest.mark.parametrize("rule,field,expectation,column,severity", [
    ("key_missing", None, "ExpectColumnValuesToNotBeNull", "_source_key", "hard"),
    ("duplicate_key", None, "ExpectColumnValuesToBeBetween", "_key_seq", "hard"),
    ("required_missing", "name", "ExpectColumnValuesToNotBeNull", "name__raw", "hard"),
    ("required_missing", "birth_date", "ExpectColumnValuesToNotBeNull", "birth_date__raw", "hard"),
    ("unparseable", "birth_date", "ExpectColumnValuesToNotBeNull", "birth_date", "hard"),
    ("death_date_unparseable", "death_date", "ExpectColumnValuesToNotBeNull", "death_date", "soft"),
    ("pension_monthly_amount_unparseable", "pension_monthly_amount",
     "ExpectColumnValuesToNotBeNull", "pension_monthly_amount", "soft"),
    ("household_size_unparseable", "household_size", "ExpectColumnValuesToNotBeNull",
     "household_size", "soft"),
    ("sex_unparseable", "sex", "ExpectColumnValuesToNotBeNull", "sex", "soft"),
    ("sex_not_in_set", "sex", "ExpectColumnValuesToBeInSet", "sex", "soft"),
    ("id", "id_number", "ExpectColumnValuesToBeValidResidentId", "id_number__raw", "soft"),
    ("id_legacy15", "id_number", "ExpectColumnValuesToNotBeInSet", "id_number__status", "soft"),
    ("id_region_unknown", "id_number", "ExpectColumnValuesToBeInSet", "id_number__region_known",
     "soft"),
    ("birth_date_implausible", "birth_date", "ExpectColumnValuesToBeBetween", "birth_date", "soft"),
    ("birth_date_mismatch_id", "birth_date", "ExpectColumnPairValuesToBeEqual", "birth_date", "soft"),
    ("sex_mismatch_id", "sex", "ExpectColumnPairValuesToBeEqual", "sex", "soft"),
    ("death_before_birth", "death_date", "ExpectColumnPairValuesAToBeGreaterThanB", "death_date",
     "soft"),
])
def test_implied_expectations(rule: str, field: str | None, expectation: str, column: str,
                              severity: str) -> None:
    spec = suite_specs(make_contract(), TODAY)
    assert _by_rule(spec)[(rule, field)] == (expectation, column, severity)


def test_parse_check_runs_only_where_text_present() -> None:
    spec = suite_specs(make_contract(), TODAY)
    parse = [s for s in spec.specs if s.rule.endswith("unparseable")]
    assert parse and all(s.row_condition_not_null == f"{s.field}__raw" for s in parse)
    # optional text fields get no parse check and no not-null check
    assert not [s for s in spec.specs if s.field == "household_no" and s.rule != "key_missing"]


def test_required_id_is_checked_on_the_cleaned_value() -> None:
    cols = [dict(c) for c in make_contract().model_dump()["columns"]]
    for c in cols:
        if c["field"] == "id_number":
            c["required"] = True
    spec = suite_specs(make_contract(columns=cols), TODAY)
    assert _by_rule(spec)[("required_missing", "id_number")] == (
        "ExpectColumnValuesToNotBeNull", "id_number", "hard")


@pytest.mark.parametrize("declared,expectation,rule,severity", [
    ({"field": "name", "rule": "regex", "pattern": "^..$", "severity": "hard"},
     "ExpectColumnValuesToMatchRegex", "regex", "hard"),
    ({"field": "household_size", "rule": "between", "min": 1, "max": 20},
     "ExpectColumnValuesToBeBetween", "household_size_between_failed", "soft"),
    ({"field": "household_no", "rule": "in_set", "values": ["a"], "severity": "soft"},
     "ExpectColumnValuesToBeInSet", "household_no_in_set_failed", "soft"),
    ({"field": "household_no", "rule": "unique", "severity": "soft"},
     "ExpectColumnValuesToBeUnique", "household_no_unique_failed", "soft"),
    ({"field": "death_date", "rule": "not_null", "severity": "hard"},
     "ExpectColumnValuesToNotBeNull", "not_null", "hard"),
    ({"field": "id_number", "rule": "id_number", "severity": "hard"},
     "ExpectColumnValuesToBeValidResidentId", "id_number", "hard"),
])
def test_declared_expectations(declared: dict, expectation: str, rule: str, severity: str) -> None:
    spec = suite_specs(make_contract(expectations=[declared]), TODAY)
    last = spec.specs[-1]
    assert (last.expectation, last.rule, last.severity) == (expectation, rule, severity)


def test_declared_soft_id_check_is_not_doubled() -> None:
    plain = suite_specs(make_contract(), TODAY)
    declared = suite_specs(make_contract(expectations=[
        {"field": "id_number", "rule": "id_number", "severity": "soft"}]), TODAY)
    assert len(plain.specs) == len(declared.specs)


def test_between_bounds_are_typed_for_dates() -> None:
    import pandas as pd
    spec = suite_specs(make_contract(expectations=[
        {"field": "death_date", "rule": "between", "min": "2000-01-01", "max": "2030-12-31"}]), TODAY)
    assert spec.specs[-1].kwargs["min_value"] == pd.Timestamp("2000-01-01")
    implausible = next(s for s in spec.specs if s.rule == "birth_date_implausible")
    assert implausible.kwargs["max_value"] == pd.Timestamp(TODAY)


def test_flag_names_are_stable_snake_case_and_documented() -> None:
    doc = (REPO / "docs" / "validation.md").read_text(encoding="utf-8")
    names: set[str] = set()
    for c in [make_contract(), *load_contracts(REPO / "connectors" / "contracts")]:
        names |= set(suite_specs(c, TODAY).flags())
    assert {f"id_{s}" for s in ID_STATUS_FLAGS} <= names
    for n in names:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", n), n
        generic = re.sub(r"^[a-z_]+?_(unparseable|in_set_failed|between_failed|regex_failed"
                         r"|unique_failed|not_null_failed)$", r"<field>_\1", n)
        generic = re.sub(r"^(mother|father)_id_", "<parent>_id_", generic)
        assert f"`{generic}`" in doc, f"flag {n} ({generic}) not in docs/validation.md"


def test_twin_expectations_are_evaluated_once() -> None:
    spec = suite_specs(make_contract(expectations=[
        {"field": "sex", "rule": "in_set", "values": ["男", "女"], "severity": "soft"}]), TODAY)
    first = spec.first_of_kind()
    twin = len(spec.specs) - 1
    assert first[twin] != twin
    assert spec.specs[first[twin]].rule == "sex_not_in_set"


def test_build_suite_has_one_gx_expectation_per_distinct_spec() -> None:
    spec = suite_specs(make_contract(), TODAY)
    suite = build_suite(spec)
    assert len(suite.expectations) == len(set(spec.first_of_kind()))
    metas = sorted(int(e.meta["spec"]) for e in suite.expectations)
    assert metas == sorted(set(spec.first_of_kind()))
    parse = next(e for e in suite.expectations
                 if spec.specs[int(e.meta["spec"])].rule == "unparseable")
    assert parse.row_condition is not None
