"""API: every endpoint, every role boundary (403 or masked), the decide / undo flow, findings
review, the access log, and that personal data stays out of application logs."""

from __future__ import annotations

import io
import logging

import pytest

from tests.service.conftest import ROLE_USER, Env
from unigrid.service.policy import ENDPOINT_ROLES

ID0 = "420502195001010001"
P0 = "P000000000001"
FID = "F00000000000000A1"

# (operation, method, path, json body) - one request per protected operation
REQUESTS: list[tuple[str, str, str, dict | None]] = [
    ("me", "GET", "/me", None),
    ("person", "GET", f"/persons/{ID0}?purpose=核查", None),
    ("search", "GET", "/persons?name=刘娜&birth_year=1950&purpose=核查", None),
    ("house", "GET", "/houses?address=桃花苑", None),
    ("stats", "GET", "/stats/district?on=2026-11-20", None),
    ("voter_roll", "GET", "/voter-roll?district=西陵区&election_date=2026-12-01&purpose=选举",
     None),
    ("findings", "GET", "/findings", None),
    ("findings", "GET", f"/findings/{FID}", None),
    ("findings", "GET", "/findings.xlsx", None),
    ("finding_review", "POST", f"/findings/{FID}/review", {"status": "open"}),
    ("review_queue", "GET", "/review/pairs", None),
    ("review_queue", "GET", "/review/pairs/1", None),
    ("review_decide", "POST", "/review/pairs/1/decision", {"verdict": "unsure"}),
    ("review_decide", "GET", "/review/decisions", None),
    ("access_log", "GET", "/access-log", None),
]

EXPECTED: dict[str, dict[str, int]] = {
    #                admin auditor service steward
    "me":             {"admin": 200, "auditor": 200, "service": 200, "steward": 200},
    "person":         {"admin": 200, "auditor": 200, "service": 200, "steward": 200},
    "search":         {"admin": 200, "auditor": 200, "service": 200, "steward": 200},
    "house":          {"admin": 200, "auditor": 200, "service": 200, "steward": 200},
    "stats":          {"admin": 200, "auditor": 200, "service": 200, "steward": 200},
    "voter_roll":     {"admin": 200, "auditor": 403, "service": 200, "steward": 403},
    "findings":       {"admin": 200, "auditor": 200, "service": 403, "steward": 403},
    "finding_review": {"admin": 200, "auditor": 200, "service": 403, "steward": 403},
    "review_queue":   {"admin": 200, "auditor": 403, "service": 403, "steward": 200},
    "review_decide":  {"admin": 200, "auditor": 403, "service": 403, "steward": 200},
    "access_log":     {"admin": 200, "auditor": 403, "service": 403, "steward": 403},
}
"""The role matrix, written out by hand (docs/service.md shows the same)."""


def test_matrix_table_equals_policy() -> None:
    assert set(EXPECTED) == set(ENDPOINT_ROLES)
    for op, by_role in EXPECTED.items():
        assert {r for r, code in by_role.items() if code == 200} == set(ENDPOINT_ROLES[op]), op


@pytest.mark.parametrize("role", ["admin", "auditor", "service", "steward"])
@pytest.mark.parametrize("op,method,path,body", REQUESTS,
                         ids=[f"{r[1]} {r[2].split('?')[0]}" for r in REQUESTS])
def test_role_boundaries(shared_env: Env, role: str, op: str, method: str, path: str,
                         body: dict | None) -> None:
    r = shared_env.client.request(method, path, json=body,
                                  headers=shared_env.h(ROLE_USER[role]))
    assert r.status_code == EXPECTED[op][role], r.text


@pytest.mark.parametrize("op,method,path,body", REQUESTS,
                         ids=[f"{r[1]} {r[2].split('?')[0]}" for r in REQUESTS])
@pytest.mark.parametrize("auth", [None, "Bearer ug_not-a-real-token", "Basic YWRtaW46eA=="])
def test_no_or_bad_token_is_401(shared_env: Env, op: str, method: str, path: str,
                                body: dict | None, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth else {}
    r = shared_env.client.request(method, path, json=body, headers=headers)
    assert r.status_code in (401, 403) and r.status_code != 200
    if auth is None or auth.startswith("Bearer"):
        assert r.status_code == 401


def test_health_needs_no_token_and_shows_no_personal_data(shared_env: Env) -> None:
    r = shared_env.client.get("/health")
    assert r.json() == {"status": "ok", "run_id": "20261120"}


@pytest.mark.parametrize("role,id_shown,name_shown,phone_shown", [
    ("admin", ID0, "刘娜", "13800000001"),
    ("auditor", ID0, "刘娜", "138****0001"),
    ("service", ID0, "刘娜", "138****0001"),
    ("steward", "420502********0001", "刘*", "138****0001"),
])
def test_person_masking_per_role(shared_env: Env, role: str, id_shown: str, name_shown: str,
                                 phone_shown: str) -> None:
    r = shared_env.client.get(f"/persons/{ID0}", params={"purpose": "养老金核查"},
                              headers=shared_env.h(ROLE_USER[role]))
    assert r.status_code == 200
    body = r.json()
    g = body["golden"]
    assert (g["id_number"], g["name"], g["phone"]) == (id_shown, name_shown, phone_shown)
    reg = body["records_by_department"]["public_security"][0]["fields"]
    assert (reg["id_number"], reg["name"], reg["phone"]) == (id_shown, name_shown, phone_shown)
    members = {m["person_id"]: m["name"] for h in body["households"] for m in h["members"]}
    assert members[P0] == name_shown
    if role == "steward":
        assert ID0 not in r.text and "刘娜" not in r.text and "13800000001" not in r.text


def test_person_picture_has_every_part(shared_env: Env) -> None:
    body = shared_env.client.get(f"/persons/{ID0}", params={"purpose": "x核查"},
                                 headers=shared_env.h("admin1")).json()
    assert body["person_id"] == P0
    assert set(body["records_by_department"]) == {"public_security", "grid_centre",
                                                  "human_resources_social_security"}
    pension = body["records_by_department"]["human_resources_social_security"][0]
    assert pension["source"] == "hrss_pension_ledger"
    assert pension["fields"]["pension_monthly_amount"] == 2350.0
    assert len(body["households"]) == 1 and len(body["households"][0]["members"]) == 4
    assert {h["relation"] for h in body["houses"]} == {"registered", "actual"}
    assert [f["finding_id"] for f in body["findings"]] == [FID]
    assert body["lineage"]["name"]["source"] == "ps_household_registry"
    # by person id too
    again = shared_env.client.get(f"/persons/{P0}", params={"purpose": "x核查"},
                                  headers=shared_env.h("admin1")).json()
    assert again["golden"] == body["golden"]


@pytest.mark.parametrize("path,code", [
    ("/persons/420502199901019999", 404),
    ("/persons/12345", 422),
    ("/persons/P0000000000XYZ", 422),
])
def test_person_not_found_or_malformed(shared_env: Env, path: str, code: int) -> None:
    r = shared_env.client.get(path, params={"purpose": "核查"}, headers=shared_env.h("admin1"))
    assert r.status_code == code


@pytest.mark.parametrize("params", [{}, {"purpose": ""}, {"purpose": "   "}])
def test_person_lookup_needs_a_purpose(shared_env: Env, params: dict) -> None:
    r = shared_env.client.get(f"/persons/{ID0}", params=params, headers=shared_env.h("admin1"))
    assert r.status_code == 422


@pytest.mark.parametrize("name,year,expected_first,expected", [
    ("刘娜", 1950, "P000000000001", {"P000000000001", "P000000000002"}),
    ("刘拉", 1950, "P000000000002", {"P000000000001", "P000000000002"}),
    ("liu na", 1950, "P000000000001", {"P000000000001", "P000000000002"}),
    ("liuna", 1950, "P000000000001", {"P000000000001"}),
    ("刘娜", 1990, None, set()),
])
def test_search_by_name_pinyin_and_homophones(shared_env: Env, name: str, year: int,
                                              expected_first: str | None,
                                              expected: set[str]) -> None:
    r = shared_env.client.get("/persons", params={"name": name, "birth_year": year,
                                                  "purpose": "核查"},
                              headers=shared_env.h("admin1"))
    assert r.status_code == 200
    hits = r.json()
    assert {h["person_id"] for h in hits} == expected
    if expected_first:
        assert hits[0]["person_id"] == expected_first


def test_search_by_birth_date_and_requires_one(shared_env: Env) -> None:
    h = shared_env.h("auditor1")
    r = shared_env.client.get("/persons", params={"name": "刘娜", "birth_date": "1950-01-01",
                                                  "purpose": "核查"}, headers=h)
    assert [x["person_id"] for x in r.json()] == [P0]
    r = shared_env.client.get("/persons", params={"name": "刘娜", "purpose": "核查"}, headers=h)
    assert r.status_code == 422


def test_search_masked_for_steward(shared_env: Env) -> None:
    r = shared_env.client.get("/persons", params={"name": "刘娜", "birth_year": 1950,
                                                  "purpose": "核查"},
                              headers=shared_env.h("steward_ps"))
    assert "刘娜" not in r.text and ID0 not in r.text
    assert r.json()[0]["id_number"] == "420502********0001"


def test_houses_with_residents_and_stats(shared_env: Env) -> None:
    h = shared_env.h("svc1")
    houses = shared_env.client.get("/houses", params={"address": "桃花苑0"}, headers=h).json()
    assert houses and all("桃花苑0" in x["standard_address"] for x in houses)
    hid = [x for x in houses if x["n_registered"]][0]["house_id"]
    house = shared_env.client.get(f"/houses/{hid}", params={"purpose": "入户核查"},
                                  headers=h).json()
    assert house["house_id"] == hid and house["residents"]
    stats = shared_env.client.get("/stats/district", params={"on": "2026-11-20"},
                                  headers=h).json()
    assert sum(s["population"] for s in stats) > 0
    assert {s["district"] for s in stats} <= {"西陵区", "伍家岗区", "未知"}
    assert shared_env.client.get("/stats/village", headers=h).status_code == 422


def test_voter_roll_paged(shared_env: Env) -> None:
    r = shared_env.client.get("/voter-roll", params={"district": "伍家岗区",
                                                     "election_date": "2026-12-01",
                                                     "purpose": "换届选举", "limit": 3},
                              headers=shared_env.h("svc1"))
    body = r.json()
    assert body["total"] > 3 and len(body["items"]) == 3
    assert all(i["district"] == "伍家岗区" for i in body["items"])


def test_access_log_records_every_lookup_with_purpose(env: Env) -> None:
    env.client.get(f"/persons/{ID0}", params={"purpose": "养老金核查"}, headers=env.h("svc1"))
    env.client.get("/persons/420502199901019999", params={"purpose": "查无此人"},
                   headers=env.h("svc1"))
    log = env.client.get("/access-log", headers=env.h("admin1")).json()
    assert log[0]["action"] == "lookup_person_not_found" and log[0]["person_id"] is None
    assert (log[1]["user"], log[1]["role"], log[1]["action"], log[1]["person_id"],
            log[1]["purpose"]) == ("svc1", "service", "view_person", P0, "养老金核查")
    assert ID0 not in str(log)


def test_no_personal_data_in_application_logs(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    env.client.get(f"/persons/{ID0}", params={"purpose": "核查"}, headers=env.h("admin1"))
    env.client.get("/persons", params={"name": "刘娜", "birth_year": 1950, "purpose": "核查"},
                   headers=env.h("admin1"))
    env.client.get("/persons/420502199901019999", params={"purpose": "核查"},
                   headers=env.h("admin1"))
    # the test client's own request log (httpx) is not the service's
    text = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    assert caplog.records, "nothing captured: the check would be vacuous"
    assert ID0 not in text and "刘娜" not in text and "420502199901019999" not in text


def _queue_nos(env: Env, user: str) -> list[int]:
    r = env.client.get("/review/pairs", headers=env.h(user))
    assert r.status_code == 200
    return [i["queue_no"] for i in r.json()["items"]]


def test_steward_sees_only_its_department(env: Env) -> None:
    assert _queue_nos(env, "steward_ps") == [1, 2]
    assert _queue_nos(env, "steward_health") == []
    assert env.client.get("/review/pairs", params={"department": "health"},
                          headers=env.h("steward_ps")).status_code == 403
    assert env.client.get("/review/pairs/1", headers=env.h("steward_health")).status_code == 403
    assert env.client.post("/review/pairs/1/decision", json={"verdict": "same"},
                           headers=env.h("steward_health")).status_code == 403
    admin = env.client.get("/review/pairs", params={"department": "grid_centre"},
                           headers=env.h("admin1")).json()
    assert [i["queue_no"] for i in admin["items"]] == [1]


def test_pair_view_side_by_side_with_weights(env: Env) -> None:
    d = env.client.get("/review/pairs/1", headers=env.h("steward_ps")).json()
    assert d["pair"]["left_key"] == "HJ0000000002"
    assert {w["comparison"]: w["weight"] for w in d["weights"]} == {
        "name": -2.5, "birth_date": 4.1, "house_key": 1.5}
    fields = {c["field"]: c for c in d["comparison"]}
    assert fields["name"]["left"] == "测试2" and fields["name"]["right"] is None
    assert "grid_code" in fields
    # the steward sees the pair unmasked (to judge it); the view is logged
    assert d["left"]["fields"]["id_number"].startswith("420502") and "*" not in \
        d["left"]["fields"]["id_number"]
    log = env.client.get("/access-log", headers=env.h("admin1")).json()
    assert {(x["action"], x["person_id"]) for x in log[:2]} == {
        ("view_pair", "P000000000003"), ("view_pair", "P000000000004")}


def test_decide_leaves_queue_and_undo_returns_it(env: Env) -> None:
    r = env.client.post("/review/pairs/1/decision",
                        json={"verdict": "different", "reason": "出生日期不同"},
                        headers=env.h("steward_ps"))
    assert r.status_code == 200
    did = r.json()["id"]
    assert _queue_nos(env, "steward_ps") == [2]
    decisions = env.client.get("/review/decisions", headers=env.h("steward_ps")).json()
    assert decisions[0]["decision_id"] == did and decisions[0]["verdict"] == "different"
    assert decisions[0]["user"] == "steward_ps" and decisions[0]["reason"] == "出生日期不同"
    # another steward cannot undo it; the owner can
    env.client.get("/me", headers=env.h("steward_health"))
    assert env.client.post(f"/review/decisions/{did}/undo", json={"reason": "x"},
                           headers=env.h("steward_health")).status_code == 403
    r = env.client.post(f"/review/decisions/{did}/undo", json={"reason": "看错了"},
                        headers=env.h("steward_ps"))
    assert r.status_code == 200
    assert _queue_nos(env, "steward_ps") == [1, 2]
    assert env.client.post(f"/review/decisions/{did}/undo", json={},
                           headers=env.h("steward_ps")).status_code == 409
    from matching.decisions import effective_decisions
    assert effective_decisions(env.settings.decisions_db).empty


def test_unsure_stays_in_queue_marked(env: Env) -> None:
    env.client.post("/review/pairs/2/decision", json={"verdict": "unsure"},
                    headers=env.h("steward_ps"))
    items = env.client.get("/review/pairs", headers=env.h("steward_ps")).json()["items"]
    assert {i["queue_no"]: i["decided"] for i in items} == {1: None, 2: "unsure"}


@pytest.mark.parametrize("body,code", [
    ({"verdict": "maybe"}, 422), ({}, 422), ({"verdict": "same", "reason": "x" * 501}, 422)])
def test_bad_decisions_rejected(shared_env: Env, body: dict, code: int) -> None:
    r = shared_env.client.post("/review/pairs/1/decision", json=body,
                               headers=shared_env.h("steward_ps"))
    assert r.status_code == code


def test_findings_filter_dismiss_and_stays_dismissed(env: Env) -> None:
    h = env.h("auditor1")
    lst = env.client.get("/findings", params={"rule": "deceased_pensioner", "status": "open"},
                         headers=h).json()
    assert [f["finding_id"] for f in lst["items"]] == [FID]
    assert env.client.get("/findings", params={"district": "伍家岗区"},
                          headers=h).json()["total"] == 1
    assert env.client.get("/findings", params={"district": "西陵区"},
                          headers=h).json()["total"] == 0
    assert env.client.post(f"/findings/{FID}/review", json={"status": "dismissed"},
                           headers=h).status_code == 422
    r = env.client.post(f"/findings/{FID}/review",
                        json={"status": "dismissed", "reason": "已核实为同名"}, headers=h)
    assert r.status_code == 200
    f = env.client.get(f"/findings/{FID}", headers=h).json()
    assert (f["status"], f["dismissed_reason"], f["status_by"]) == (
        "dismissed", "已核实为同名", "auditor1")
    assert f["evidence"]["last_paid"] == "2026-10"
    assert env.client.get("/findings", params={"status": "open"}, headers=h).json()["total"] == 0
    # the person picture lists open findings only
    pic = env.client.get(f"/persons/{ID0}", params={"purpose": "核查"}, headers=h).json()
    assert pic["findings"] == []


def test_findings_xlsx_export(shared_env: Env) -> None:
    import openpyxl

    r = shared_env.client.get("/findings.xlsx", headers=shared_env.h("auditor1"))
    assert r.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    rows = list(wb.active.iter_rows(values_only=True))
    assert rows[0][:3] == ("发现编号", "规则", "区县")
    assert rows[1][0] == FID


def test_unknown_finding_and_pair_404(shared_env: Env) -> None:
    h = shared_env.h("admin1")
    assert shared_env.client.get("/findings/FNOPE", headers=h).status_code == 404
    assert shared_env.client.post("/findings/FNOPE/review", json={"status": "open"},
                                  headers=h).status_code == 404
    assert shared_env.client.get("/review/pairs/999", headers=h).status_code == 404
    assert shared_env.client.post("/review/decisions/999/undo", json={},
                                  headers=h).status_code == 404
