"""Each rule on tiny fixture tables (positive and negative cases), ids, statuses, evaluation."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import duckdb
import pandas as pd
import pytest

from quality.rules import RULES, rule_infos
from quality.rules.evaluate import score_findings
from quality.rules.review import ReviewError, latest_reviews, record_review
from quality.rules.runner import FINDING_COLUMNS, keyed_subjects, rule_overrides, run_checks
from tests.rules.factory import CONTRACTS, build_work_db, pair, rec

BD = date(2026, 11, 20)
RUN = "20261120"
KEY = b"test-key"
ID_A = "420502199001011234"
ID_B = "420521196907276000"

DEATH = [rec("dcert", "D1", "P1", death_date="2025-03-10")]
CREMATED = [rec("crem", "C1", "P1", death_date="2025-03-10")]
CANCELLED = [rec("reg", "H1", "P1", registry_status="注销", cancel_reason="死亡",
                 cancel_date="2025-04-02", household_no="100")]

CASES = [
    # (case id, records, rule, expected person_ids)
    ("pension paid after death certificate", DEATH + [
        rec("pension", "S1", "P1", pension_last_paid_month="2026-11-01",
            pension_monthly_amount=3000)], "deceased_pensioner", {"P1"}),
    ("pension paid after cremation", CREMATED + [
        rec("pension", "S1", "P1", pension_last_paid_month="2025-05-01",
            pension_monthly_amount=3000)], "deceased_pensioner", {"P1"}),
    ("pension paid after registration cancelled for death", CANCELLED + [
        rec("pension", "S1", "P1", pension_last_paid_month="2025-06-01",
            pension_monthly_amount=3000)], "deceased_pensioner", {"P1"}),
    ("pension stopped in the death month", DEATH + [
        rec("pension", "S1", "P1", pension_last_paid_month="2025-03-01",
            pension_monthly_amount=3000)], "deceased_pensioner", set()),
    ("pension of a living person", [
        rec("pension", "S1", "P2", pension_last_paid_month="2026-11-01",
            pension_monthly_amount=3000)], "deceased_pensioner", set()),
    ("registration cancelled for moving away is no death", [
        rec("reg", "H1", "P1", registry_status="注销", cancel_reason="迁出",
            cancel_date="2025-04-02"),
        rec("pension", "S1", "P1", pension_last_paid_month="2026-11-01",
            pension_monthly_amount=3000)], "deceased_pensioner", set()),
    ("pension of a living relative wrongly merged with the dead (other ID number)", [
        rec("dcert", "D1", "P1", death_date="2025-12-29", id18=ID_A, name_pyf="wanyan",
            birth_date="1944-10-19"),
        rec("pension", "S1", "P1", id18=ID_B, name_pyf="wanyan",
            pension_last_paid_month="2026-11-01", pension_monthly_amount=3000)],
     "deceased_pensioner", set()),
    ("pension under the same ID number as the death certificate", [
        rec("dcert", "D1", "P1", death_date="2025-12-29", id18=ID_A),
        rec("pension", "S1", "P1", id18=ID_A, pension_last_paid_month="2026-11-01",
            pension_monthly_amount=3000)], "deceased_pensioner", {"P1"}),
    ("wanted person collected by a grid worker", [
        rec("wanted", "W1", "P5", case_no="A1"),
        rec("grid", "G1", "P5", collected_at="2026-05-01 10:00:00", address="桃花苑")],
     "wanted_person_seen", {"P5"}),
    ("record of another person wrongly merged with a wanted person", [
        rec("wanted", "W1", "P5", case_no="A1", id18=ID_A),
        rec("grid", "G1", "P5", id18=ID_B, name_pyf="x", birth_date="1990-01-01",
            collected_at="2026-05-01 10:00:00")], "wanted_person_seen", set()),
    ("wanted person only in public security records", [
        rec("wanted", "W1", "P5", case_no="A1"),
        rec("reg", "H5", "P5", registry_status="正常")], "wanted_person_seen", set()),
    ("grid record of a person not wanted", [
        rec("grid", "G1", "P6", collected_at="2026-05-01 10:00:00")], "wanted_person_seen", set()),
    ("subsidy paid after the head died", DEATH + [
        rec("subsidy", "DB1|1", "P1", subsidy_case_no="DB1", relation_to_head="户主",
            subsidy_last_paid_month="2026-11-01", subsidy_monthly_amount=500)],
     "deceased_subsidy", {"P1"}),
    ("subsidy stopped in the head's death month", DEATH + [
        rec("subsidy", "DB1|1", "P1", subsidy_case_no="DB1", relation_to_head="户主",
            subsidy_last_paid_month="2025-03-01", subsidy_monthly_amount=500)],
     "deceased_subsidy", set()),
    ("subsidy member (not head) died", DEATH + [
        rec("subsidy", "DB1|2", "P1", subsidy_case_no="DB1", relation_to_head="配偶",
            subsidy_last_paid_month="2026-11-01", subsidy_monthly_amount=500)],
     "deceased_subsidy", set()),
    ("two active registrations", [
        rec("reg", "H5", "P6", registry_status="正常", household_no="101"),
        rec("reg", "H6", "P6", registry_status="正常", household_no="102")],
     "duplicate_registration", {"P6"}),
    ("one active and one cancelled registration", [
        rec("reg", "H5", "P6", registry_status="正常", household_no="101"),
        rec("reg", "H6", "P6", registry_status="注销", cancel_reason="迁出", household_no="102")],
     "duplicate_registration", set()),
    ("second registration still active after the first was cancelled at death", [
        rec("reg", "H5", "P6", registry_status="注销", cancel_reason="死亡", household_no="101"),
        rec("reg", "H6", "P6", registry_status="正常", household_no="102")],
     "duplicate_registration", {"P6"}),
    ("two active registrations in one household (two members merged)", [
        rec("reg", "H5", "P6", registry_status="正常", household_no="101"),
        rec("reg", "H6", "P6", registry_status="正常", household_no="101")],
     "duplicate_registration", set()),
    ("two registrations the matcher sent to review: same name, birth date and sex", [
        rec("reg", "H5", "P6", registry_status="正常", household_no="101", name_pyf="wangfang",
            birth_date="1968-09-19", sex="女", id18=ID_A),
        rec("reg", "H6", "P7", registry_status="正常", household_no="102", name_pyf="wangfang",
            birth_date="1968-09-19", sex="女", id18="42050519680919612X"),
        pair("H5", "H6")], "duplicate_registration", {"P6"}),
    ("a review pair of two people born on different days", [
        rec("reg", "H5", "P6", registry_status="正常", household_no="101", name_pyf="wangfang",
            birth_date="1968-09-19", sex="女"),
        rec("reg", "H6", "P7", registry_status="正常", household_no="102", name_pyf="wangfang",
            birth_date="1970-01-02", sex="女"),
        pair("H5", "H6")], "duplicate_registration", set()),
    ("one ID number under two names merged across households is a 重号, not a 重户", [
        rec("reg", "H5", "P6", registry_status="正常", household_no="101", name_pyf="wangfang",
            id18=ID_A),
        rec("reg", "H6", "P6", registry_status="正常", household_no="102", name_pyf="lisi",
            id18=ID_A)], "duplicate_registration", set()),
    ("two persons, one registration each", [
        rec("reg", "H5", "P6", registry_status="正常", household_no="101"),
        rec("reg", "H6", "P7", registry_status="正常", household_no="101")],
     "duplicate_registration", set()),
    ("death certificate, registration still active", DEATH + [
        rec("reg", "H1", "P1", registry_status="正常")], "death_not_cancelled", {"P1"}),
    ("second registration: other ID number, same name and birth date", [
        rec("dcert", "D1", "P1", death_date="2025-03-10", id18=ID_A, name_pyf="wanyan",
            birth_date="1944-10-19"),
        rec("reg", "H1", "P1", registry_status="正常", id18=ID_B, name_pyf="wanyan",
            birth_date="1944-10-19")], "death_not_cancelled", {"P1"}),
    ("registration of another person wrongly merged with the dead", [
        rec("dcert", "D1", "P1", death_date="2025-03-10", id18=ID_A, name_pyf="wanyan",
            birth_date="1944-10-19"),
        rec("reg", "H1", "P1", registry_status="正常", id18=ID_B, name_pyf="wanyan",
            birth_date="1969-07-27")], "death_not_cancelled", set()),
    ("death too recent to expect cancellation", [
        rec("dcert", "D1", "P1", death_date="2026-11-01"),
        rec("reg", "H1", "P1", registry_status="正常")], "death_not_cancelled", set()),
    ("death certificate, registration cancelled", DEATH + CANCELLED, "death_not_cancelled",
     set()),
    ("birth certificate, no registration after 90 days", [
        rec("bcert", "B1", "P7", birth_date="2026-01-01", family_household_no="103")],
     "birth_not_registered", {"P7"}),
    ("birth certificate of a registered child", [
        rec("bcert", "B1", "P7", birth_date="2026-01-01", family_household_no="103"),
        rec("reg", "H7", "P7", registry_status="正常", birth_date="2026-01-01",
            household_no="103")], "birth_not_registered", set()),
    ("unlinked certificate, child registered in the parents' household", [
        rec("bcert", "B1", "P7", birth_date="2026-01-01", family_household_no="103"),
        rec("reg", "H8", "P8", registry_status="正常", birth_date="2026-01-01",
            household_no="103")], "birth_not_registered", set()),
    ("newborn younger than 90 days", [
        rec("bcert", "B1", "P7", birth_date="2026-10-01", family_household_no="103")],
     "birth_not_registered", set()),
    ("one ID number on two persons", [
        rec("reg", "H1", "P1", id18=ID_A, name_pyf="zhangwei", registry_status="正常"),
        rec("grid", "G1", "P9", id18=ID_A, name_pyf="lisi")], "id_conflict", {"P1"}),
    ("one ID number, one person, two spellings of one name", [
        rec("reg", "H1", "P1", id18=ID_A, name_pyf="zhangwei", registry_status="正常"),
        rec("grid", "G1", "P1", id18=ID_A, name_pyf="zhangwei")], "id_conflict", set()),
    ("one ID number, records merged but names differ", [
        rec("reg", "H1", "P1", id18=ID_A, name_pyf="zhangwei", registry_status="正常"),
        rec("pension", "S1", "P1", id18=ID_A, name_pyf="wangfang")], "id_conflict", {"P1"}),
]


def findings(con: duckdb.DuckDBPyConnection, rule: str | None = None) -> pd.DataFrame:
    q = 'SELECT * FROM "check".finding' + (" WHERE rule = ?" if rule else "")
    return con.execute(q, [rule] if rule else []).df()


@pytest.mark.parametrize("case,records,rule,expected", CASES, ids=[c[0] for c in CASES])
def test_rule_cases(case: str, records: list[dict], rule: str, expected: set[str]) -> None:
    con = duckdb.connect()
    build_work_db(con, records)
    run_checks(con, RUN, BD, CONTRACTS, KEY)
    got = findings(con, rule)
    assert set(got["person_id"]) == expected
    assert (got["status"] == "open").all()


def test_every_rule_has_a_positive_and_a_negative_case() -> None:
    for r in RULES:
        exp = [c[3] for c in CASES if c[2] == r.id]
        assert any(exp) and any(not e for e in exp), r.id


def test_overpaid_months_and_amount() -> None:
    con = duckdb.connect()
    build_work_db(con, DEATH + [rec("pension", "S1", "P1", pension_last_paid_month="2026-11-01",
                                    pension_monthly_amount=3000)])
    run_checks(con, RUN, BD, CONTRACTS, KEY)
    f = findings(con, "deceased_pensioner").iloc[0]
    assert f["months"] == 20  # 2025-03 -> 2026-11
    assert float(f["amount_total"]) == 60000.0 and float(f["amount_monthly"]) == 3000.0
    ev = json.loads(f["evidence"])
    assert {(r["source"], r["source_key"]) for r in ev["records"]} == {("dcert", "D1"),
                                                                      ("pension", "S1")}
    assert ev["detail"]["death_date"] == "2025-03-10"


def test_wanted_person_last_place_and_date() -> None:
    con = duckdb.connect()
    build_work_db(con, [
        rec("wanted", "W1", "P5", case_no="A1"),
        rec("grid", "G1", "P5", collected_at="2026-05-01 10:00:00", address="旧地址"),
        rec("grid", "G2", "P5", collected_at="2026-09-01 10:00:00", address="新地址",
            grid_code="420502001001")])
    run_checks(con, RUN, BD, CONTRACTS, KEY)
    ev = json.loads(findings(con, "wanted_person_seen").iloc[0]["evidence"])
    assert ev["detail"]["last_seen_address"] == "新地址"
    assert ev["detail"]["last_seen_at"] == "2026-09-01 10:00"
    assert ev["event_date"] == "2026-09-01"


def test_rule_parameter_override_changes_the_result() -> None:
    con = duckdb.connect()
    build_work_db(con, [rec("dcert", "D1", "P1", death_date="2026-09-01"),
                        rec("reg", "H1", "P1", registry_status="正常")])
    run_checks(con, RUN, BD, CONTRACTS, KEY)
    assert len(findings(con, "death_not_cancelled")) == 1  # 80 days > 30
    run_checks(con, RUN, BD, CONTRACTS, KEY, overrides={"death_not_cancelled": {"days": 90}})
    assert len(findings(con, "death_not_cancelled")) == 0


@pytest.mark.parametrize("extra,expected", [
    ({}, {}),
    ({"UNIGRID_RULE_DEATH_NOT_CANCELLED_DAYS": "60"}, {"death_not_cancelled": {"days": 60}}),
    ({"UNIGRID_RULE_BIRTH_NOT_REGISTERED_DAYS": "120", "UNIGRID_OTHER": "x"},
     {"birth_not_registered": {"days": 120}}),
])
def test_rule_overrides_from_environment(extra: dict, expected: dict) -> None:
    assert rule_overrides(extra) == expected


ALL = (DEATH + [
    rec("pension", "S1", "P1", pension_last_paid_month="2026-11-01", pension_monthly_amount=3000),
    rec("reg", "H1", "P1", registry_status="正常", id18=ID_A, name_pyf="zhangwei"),
    rec("grid", "G1", "P9", id18=ID_A, name_pyf="lisi", collected_at="2026-01-01 10:00:00"),
    rec("reg", "H5", "P6", registry_status="正常", household_no="101"),
    rec("reg", "H6", "P6", registry_status="正常", household_no="102")])


def test_finding_ids_are_stable_across_runs_and_hide_id_numbers() -> None:
    con = duckdb.connect()
    build_work_db(con, ALL, run_id="20261120")
    run_checks(con, "20261120", BD, CONTRACTS, KEY)
    first = findings(con).set_index("finding_id")
    build_work_db(con, list(reversed(ALL)), run_id="20261121")
    run_checks(con, "20261121", date(2026, 11, 21), CONTRACTS, KEY)
    second = findings(con).set_index("finding_id")
    assert set(first.index) == set(second.index) and len(first) == 4
    assert (second["first_seen_run"] == "20261120").all()
    assert (second["last_seen_run"] == "20261121").all()
    assert list(second.columns) == list(FINDING_COLUMNS[1:])
    text = findings(con).to_csv()
    assert ID_A not in text and ID_A[:6] + "19" not in text.replace(ID_A[:6] + "19900101", "")
    assert keyed_subjects([ID_A], KEY)[0][:16] in text  # subject_key = id: + HMAC prefix


def test_rerunning_a_run_is_idempotent() -> None:
    con = duckdb.connect()
    build_work_db(con, ALL)
    run_checks(con, RUN, BD, CONTRACTS, KEY)
    a = findings(con)
    run_checks(con, RUN, BD, CONTRACTS, KEY)
    b = findings(con)
    pd.testing.assert_frame_equal(a, b)
    assert con.execute('SELECT count(*) FROM "check".finding_seen').fetchall()[0][0] == len(a)


def test_finding_not_seen_again_keeps_its_last_seen_run() -> None:
    con = duckdb.connect()
    build_work_db(con, ALL, run_id="20261120")
    run_checks(con, "20261120", BD, CONTRACTS, KEY)
    build_work_db(con, [r for r in ALL if r["key"] != "H6"], run_id="20261121")
    run_checks(con, "20261121", date(2026, 11, 21), CONTRACTS, KEY)
    dup = findings(con, "duplicate_registration").iloc[0]
    assert dup["last_seen_run"] == "20261120"
    assert (findings(con, "deceased_pensioner")["last_seen_run"] == "20261121").all()


def _review_frame(finding_id: str, status: str, evidence_hash: str, reason: str = "同名不同人"
                  ) -> pd.DataFrame:
    return pd.DataFrame({"finding_id": [finding_id], "status": [status], "reason": [reason],
                         "user": ["auditor01"],
                         "at": [pd.Timestamp("2026-11-20 10:00", tz="UTC")],
                         "evidence_hash": [evidence_hash]})


@pytest.mark.parametrize("changed,expected", [(False, "dismissed"), (True, "open")])
def test_dismissed_stays_dismissed_unless_evidence_changes(changed: bool, expected: str) -> None:
    con = duckdb.connect()
    build_work_db(con, ALL, run_id="20261120")
    run_checks(con, "20261120", BD, CONTRACTS, KEY)
    f = findings(con, "deceased_pensioner").iloc[0]
    reviews = _review_frame(f["finding_id"], "dismissed", f["evidence_hash"])
    recs = [dict(r) for r in ALL]
    if changed:  # the ledger row changed (another month paid)
        for r in recs:
            if r["key"] == "S1":
                r["row_hash"] = "h-changed"
    build_work_db(con, recs, run_id="20261121")
    run_checks(con, "20261121", date(2026, 11, 21), CONTRACTS, KEY, reviews=reviews)
    g = findings(con, "deceased_pensioner").iloc[0]
    assert g["finding_id"] == f["finding_id"]
    assert g["status"] == expected
    assert (g["dismissed_reason"] == "同名不同人") == (expected == "dismissed")
    assert (g["evidence_hash"] != f["evidence_hash"]) == changed


def test_confirmed_stays_confirmed() -> None:
    con = duckdb.connect()
    build_work_db(con, ALL)
    run_checks(con, RUN, BD, CONTRACTS, KEY)
    f = findings(con, "id_conflict").iloc[0]
    run_checks(con, RUN, BD, CONTRACTS, KEY,
               reviews=_review_frame(f["finding_id"], "confirmed", "other-hash"))
    g = findings(con, "id_conflict").iloc[0]
    assert g["status"] == "confirmed" and g["status_by"] == "auditor01"


def test_reviews_are_appended_and_latest_wins(tmp_path) -> None:
    db = tmp_path / "decisions.duckdb"
    assert latest_reviews(db).empty
    t0 = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
    record_review(db, "F1", "dismissed", "a1", "同名", "h1", at=t0)
    record_review(db, "F1", "open", "a2", at=t0.replace(hour=10))
    record_review(db, "F2", "confirmed", "a1", at=t0)
    rv = latest_reviews(db).set_index("finding_id")
    assert rv.loc["F1", "status"] == "open" and rv.loc["F1", "user"] == "a2"
    assert rv.loc["F2", "status"] == "confirmed"


@pytest.mark.parametrize("status,reason,user", [("dismissed", None, "a1"), ("gone", "x", "a1"),
                                                ("confirmed", None, " ")])
def test_invalid_reviews_are_refused(tmp_path, status: str, reason: str | None, user: str) -> None:
    with pytest.raises(ReviewError):
        record_review(tmp_path / "d.duckdb", "F1", status, user, reason)


def test_score_findings_against_truth() -> None:
    ev = lambda *keys: json.dumps({"records": [{"source": s, "source_key": k} for s, k in keys]})  # noqa: E731
    f = pd.DataFrame({"finding_id": ["F1", "F2", "F3"],
                      "rule": ["deceased_pensioner"] * 2 + ["id_conflict"],
                      "evidence": [ev(("pension", "1"), ("dcert", "9")), ev(("pension", "2")),
                                   ev(("grid", "5"))]})
    truth = pd.DataFrame({"anomaly": ["deceased_pensioner"] * 2 + ["id_conflict"] * 2,
                          "person_id": ["T1", "T3", "T5", "T6"],
                          "source": ["pension", "pension", "grid", "grid"],
                          "source_key": ["1", "3", "5", "6"]})
    s = score_findings(f, truth).set_index("rule")
    assert s.loc["deceased_pensioner", ["planted", "found", "true_pos"]].tolist() == [2, 2, 1]
    assert s.loc["deceased_pensioner", "precision"] == 0.5
    assert s.loc["id_conflict", "recall"] == 0.5 and s.loc["id_conflict", "precision"] == 1.0
    assert s.loc["wanted_person_seen", "recall"] == 1.0  # nothing planted, nothing found


def test_rule_declarations_are_complete() -> None:
    ids = [r.id for r in RULES]
    assert ids == ["deceased_pensioner", "wanted_person_seen", "deceased_subsidy",
                   "duplicate_registration", "death_not_cancelled", "birth_not_registered",
                   "id_conflict"]
    for info in rule_infos():
        assert info["title_zh"] and info["description_zh"] and info["department_zh"]
        assert info["severity"] in ("high", "medium", "low") and info["columns_zh"]


def test_check_stage_needs_the_match_stage(tmp_path) -> None:
    from unigrid.settings import Settings
    from unigrid.stages import RunContext, StageFailed
    from quality.rules.runner import check_stage

    s = Settings(home=tmp_path, work_db=tmp_path / "work.duckdb",
                 decisions_db=tmp_path / "decisions.duckdb")
    with pytest.raises(StageFailed, match="match stage"):
        check_stage(s, RunContext.for_date(BD))


def test_finding_key_is_created_once_and_private(tmp_path) -> None:
    import stat

    from unigrid.settings import Settings
    from quality.rules.runner import finding_key

    s = Settings(home=tmp_path)
    k1, k2 = finding_key(s), finding_key(s)
    assert k1 == k2 and len(k1) == 64
    mode = (tmp_path / "keys" / "finding.key").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    from dataclasses import replace
    assert finding_key(replace(s, extra={"UNIGRID_FINDING_KEY": "abc"})) == b"abc"
