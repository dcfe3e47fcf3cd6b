"""The JSON query API (``Authorization: Bearer <token>``). Roles per operation and masking come
from :mod:`unigrid.service.policy`; every person lookup is written to the access log."""

from __future__ import annotations

import json
import re
import tempfile
from datetime import date
from pathlib import Path as FsPath
from typing import Any, Literal

import pandas as pd
from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, Security
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from unigrid.service import queries as q
from unigrid.service.app import ServiceState, principal_info, svc
from unigrid.service.auth import Principal
from unigrid.service.overlay import apply_review
from unigrid.service.policy import allowed, mask_record
from unigrid.service.store import retry_locked

router = APIRouter()
bearer = HTTPBearer(auto_error=False, description="API token from `unigrid users token NAME`")

PURPOSE = Query(..., min_length=2, max_length=200, pattern=r"\S",
                description="Stated purpose of the lookup (written to the access log)")
ID_OR_PERSON = r"^([0-9]{17}[0-9Xx]|[0-9]{15}|P[0-9A-F]{12})$"
HOUSE_ID = r"^H[0-9A-F]{16}$"
FINDING_ID = r"^[A-Za-z0-9_-]{1,64}$"
PAIR_PURPOSE = "匹配审核"
FINDING_PURPOSE = "发现核查"
_LATIN = re.compile(r"^[A-Za-z\s']+$")


async def api_user(request: Request,
                   creds: HTTPAuthorizationCredentials | None = Security(bearer)) -> Principal:
    """The caller of an API request (401 without a valid Bearer token).

    Runs on the event loop: a token validated in the last 30 s is found in memory; otherwise
    the decisions database is asked in a worker thread."""
    if creds is None or creds.scheme.lower() != "bearer":
        raise HTTPException(401, "Bearer token required", headers={"WWW-Authenticate": "Bearer"})
    s = svc(request)
    p = s.cached_principal(creds.credentials, "api")
    if p is None:
        p = await run_in_threadpool(s.principal, creds.credentials, "api")
    if p is None:
        raise HTTPException(401, "invalid or expired token",
                            headers={"WWW-Authenticate": "Bearer"})
    return p


def need(operation: str):  # noqa: ANN201 - FastAPI dependency factory
    """Dependency: the caller, if its role may call ``operation`` (else 403)."""
    async def dep(p: Principal = Depends(api_user)) -> Principal:
        if not allowed(p.role, operation):
            raise HTTPException(403, f"role {p.role} may not call {operation}")
        return p
    return dep


class Me(BaseModel):
    """The authenticated caller."""

    username: str
    role: str
    department: str | None = None


class PersonPicture(BaseModel):
    """Everything the master knows about one person (masked per role)."""

    person_id: str
    n_records: int | None = None
    sources: list[str] | None = None
    run_id: str | None = None
    golden: dict[str, Any]
    lineage: dict[str, Any]
    records_by_department: dict[str, list[dict[str, Any]]]
    households: list[dict[str, Any]]
    houses: list[dict[str, Any]]
    findings: list[dict[str, Any]] = Field(description="open findings about the person")
    events: list[dict[str, Any]]
    other_person_ids: list[str] = Field(description="other persons with the same ID number")


class SearchHit(BaseModel):
    """One person found by name."""

    person_id: str
    id_number: str | None = None
    name: str | None = None
    sex: str | None = None
    birth_date: str | None = None
    is_deceased: bool | None = None
    matched_name: str | None = None
    match: str


class ReviewIn(BaseModel):
    """An auditor's status for a finding (a dismissal needs a reason)."""

    status: Literal["open", "confirmed", "dismissed"]
    reason: str | None = Field(None, max_length=500)


class DecisionIn(BaseModel):
    """A steward's verdict on a pair: same person, different persons, or unsure."""

    verdict: Literal["same", "different", "unsure"]
    reason: str | None = Field(None, max_length=500)


class UndoIn(BaseModel):
    """Why a decision is undone."""

    reason: str | None = Field(None, max_length=500)


class Written(BaseModel):
    """Id of an appended decision / review."""

    id: int
    message: str


@router.get("/health", tags=["meta"])
def health(request: Request) -> dict[str, Any]:
    """Liveness and the published run (no authentication, no personal data)."""
    s = svc(request)
    try:
        with s.pool.cursor() as cur:
            return {"status": "ok", "run_id": q.latest_run_id(cur)}
    except q.duckdb.Error:
        return {"status": "degraded", "run_id": None}


@router.get("/me", tags=["meta"], response_model=Me)
def me(p: Principal = Depends(need("me"))) -> dict[str, Any]:
    """Who the token belongs to."""
    return principal_info(p)


def _open_findings(s: ServiceState, fs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = [apply_review(f, s.overlay.review(f["finding_id"])) for f in fs]
    return [f for f in out if f.get("status") == "open"]


def json_bytes(obj: Any) -> bytes:
    """Compact UTF-8 JSON, as FastAPI's ``JSONResponse`` renders it."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=None,
                      separators=(",", ":")).encode("utf-8")


def load_picture(s: ServiceState, key: str) -> tuple[str, dict[str, Any], list[str]] | None:
    """(person id, picture, other person ids) of an ID number or person id: the published
    document (one point query), or the per-part queries on a master published without it."""
    with s.pool.cursor() as cur:
        try:
            got = q.person_doc(cur, key)
        except q.duckdb.CatalogException:
            ids = q.find_person_ids(cur, key)
            pic = q.person_picture(cur, ids[0]) if ids else None
            return (ids[0], pic, ids[1:]) if pic is not None else None
    if got is None:
        return None
    return got[0], json.loads(got[1]), got[2]


@router.get("/persons/{id_number}", tags=["persons"], response_model=PersonPicture)
async def get_person(request: Request,
                     id_number: str = Path(..., pattern=ID_OR_PERSON,
                                           description="18/15-digit ID number, or a person id"),
                     purpose: str = PURPOSE,
                     p: Principal = Depends(need("person"))) -> Response:
    """The whole picture of a person: golden record, every source record by department,
    households and members, houses lived in, open findings, merges and splits."""
    # On the event loop: the document is one sub-millisecond point query (a thread hop costs
    # about as much); the access-log wait and the review overlay (which may open the decisions
    # database) do not block the loop.
    s = svc(request)
    got = load_picture(s, id_number)
    if got is None:
        await s.access.alog(p.username, p.role, "lookup_person_not_found", [None], purpose)
        raise HTTPException(404, "no person with this number")
    pid, pic, others = got
    if pic["findings"]:
        pic["findings"] = await run_in_threadpool(_open_findings, s, pic["findings"])
    pic["other_person_ids"] = others
    await s.access.alog(p.username, p.role, "view_person", [pid], purpose)
    return Response(json_bytes(mask_record(p.role, pic)), media_type="application/json")


def query_pinyin(name: str) -> tuple[str, str, str | None]:
    """(pinyin, folded pinyin, pinyin without spaces or None) of a search query."""
    from matching.standardise.names import (_fold_text, name_pinyin, normalise_name,
                                            pinyin_fuzzy)
    if _LATIN.match(name):
        py = " ".join(name.lower().replace("'", " ").split())
        return py, _fold_text(py), (py if " " not in py else None)
    norm = normalise_name(pd.Series([name], dtype="string"))
    py = name_pinyin(norm)
    pyf = pinyin_fuzzy(py)
    v, f = py.iloc[0], pyf.iloc[0]
    return ("" if pd.isna(v) else str(v)), ("" if pd.isna(f) else str(f)), None


@router.get("/persons", tags=["persons"], response_model=list[SearchHit])
def search_persons(request: Request,
                   name: str = Query(..., min_length=1, max_length=40, pattern=r"\S",
                                     description="Chinese name or pinyin (liu na); homophones "
                                     "and dialect variants match"),
                   birth_date: date | None = Query(None),
                   birth_year: int | None = Query(None, ge=1880, le=2100),
                   purpose: str = PURPOSE,
                   limit: int = Query(20, ge=1, le=100),
                   p: Principal = Depends(need("search"))) -> list[dict[str, Any]]:
    """Persons by name with a birth date or a birth year (one of them is required)."""
    if birth_date is None and birth_year is None:
        raise HTTPException(422, "give birth_date or birth_year")
    py, pyf, compact = query_pinyin(name)
    s = svc(request)
    hits: list[dict[str, Any]] = []
    if py.strip():
        with s.pool.cursor() as cur:
            hits = q.search_names(cur, py, pyf, compact, birth_date, birth_year, limit)
    s.access.log(p.username, p.role, "search_person",
                 [h["person_id"] for h in hits] or [None], purpose)
    return [mask_record(p.role, h) for h in hits]


@router.get("/houses/{house_id}", tags=["houses"])
def get_house(request: Request, house_id: str = Path(..., pattern=HOUSE_ID),
              purpose: str = PURPOSE,
              p: Principal = Depends(need("house"))) -> dict[str, Any]:
    """A house with its standard address, grid and residents (registered and actual)."""
    s = svc(request)
    with s.pool.cursor() as cur:
        house = q.house_with_residents(cur, house_id)
    if house is None:
        raise HTTPException(404, "no such house")
    s.access.log(p.username, p.role, "view_house",
                 sorted({r["person_id"] for r in house["residents"]}) or [None], purpose)
    return mask_record(p.role, house)


@router.get("/houses", tags=["houses"])
def find_houses(request: Request,
                address: str = Query(..., min_length=2, max_length=100, pattern=r"\S"),
                limit: int = Query(50, ge=1, le=500),
                p: Principal = Depends(need("house"))) -> list[dict[str, Any]]:
    """Houses whose standard address contains the text (no residents: use /houses/{id})."""
    with svc(request).pool.cursor() as cur:
        return q.find_houses(cur, address, limit)


@router.get("/stats/{level}", tags=["statistics"])
def stats(request: Request, level: Literal["grid", "community", "street", "district"],
          on: date | None = Query(None, description="reference date (default: today)"),
          p: Principal = Depends(need("stats"))) -> list[dict[str, Any]]:
    """Population, males, females and sex ratio per grid / community / street / district."""
    from warehouse.views import population

    with svc(request).pool.cursor() as cur:
        df = population(cur, level, on or date.today())
    return [{k: q.jsonable(None if pd.isna(v) else v) for k, v in r.items()}
            for r in df.to_dict("records")]


@router.get("/voter-roll", tags=["statistics"])
def voter_roll(request: Request, district: str = Query(..., min_length=1, max_length=40),
               election_date: date = Query(...), purpose: str = PURPOSE,
               limit: int = Query(1000, ge=1, le=10000), offset: int = Query(0, ge=0),
               p: Principal = Depends(need("voter_roll"))) -> dict[str, Any]:
    """A district's voter roll on an election date (18+, alive, registered there), paged."""
    from warehouse.views import voter_roll as roll

    s = svc(request)
    with s.pool.cursor() as cur:
        df = roll(cur, election_date, district)
    page = df.iloc[offset:offset + limit]
    s.access.log(p.username, p.role, "voter_roll", [None], purpose)
    items = [{k: q.jsonable(None if pd.isna(v) else v) for k, v in r.items()}
             for r in page.to_dict("records")]
    return {"total": int(len(df)), "offset": offset,
            "items": [mask_record(p.role, i) for i in items]}


def _findings(s: ServiceState, rule: str | None, district: str | None, status: str | None,
              finding_id: str | None = None) -> list[dict[str, Any]]:
    with s.pool.cursor() as cur:
        fs = q.findings(cur, rule, district, finding_id)
    fs = [apply_review(f, s.overlay.review(f["finding_id"])) for f in fs]
    return [f for f in fs if status is None or f.get("status") == status]


Status = Literal["open", "confirmed", "dismissed"]


@router.get("/findings", tags=["findings"])
def list_findings(request: Request, rule: str | None = Query(None, max_length=64),
                  district: str | None = Query(None, max_length=40),
                  status: Status | None = Query(None),
                  limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
                  p: Principal = Depends(need("findings"))) -> dict[str, Any]:
    """Findings by rule, district and status (reviews since the last publish applied)."""
    fs = _findings(svc(request), rule, district, status)
    items = [{k: v for k, v in f.items() if k != "evidence"} for f in fs[offset:offset + limit]]
    return {"total": len(fs), "offset": offset, "items": [mask_record(p.role, i) for i in items]}


@router.get("/findings/{finding_id}", tags=["findings"])
def get_finding(request: Request, finding_id: str = Path(..., pattern=FINDING_ID),
                p: Principal = Depends(need("findings"))) -> dict[str, Any]:
    """One finding with its evidence records."""
    s = svc(request)
    fs = _findings(s, None, None, None, finding_id)
    if not fs:
        raise HTTPException(404, "no such finding")
    s.access.log(p.username, p.role, "view_finding", [fs[0].get("person_id")], FINDING_PURPOSE)
    return mask_record(p.role, fs[0])


def review_finding(s: ServiceState, p: Principal, finding_id: str, status: str,
                   reason: str | None) -> int:
    """Append an auditor's review of a published finding (404 / 422 as HTTP errors)."""
    from quality.rules.review import ReviewError, record_review

    fs = _findings(s, None, None, None, finding_id)
    if not fs:
        raise HTTPException(404, "no such finding")
    try:
        rid = retry_locked(lambda: record_review(s.settings.decisions_db, finding_id, status,
                                                 p.username, reason, fs[0].get("evidence_hash")))
    except ReviewError as exc:
        raise HTTPException(422, str(exc)) from None
    s.overlay.invalidate()
    return rid


@router.post("/findings/{finding_id}/review", tags=["findings"], response_model=Written)
def post_review(request: Request, finding_id: str = Path(..., pattern=FINDING_ID),
                body: ReviewIn = Body(...),
                p: Principal = Depends(need("finding_review"))) -> dict[str, Any]:
    """Confirm, dismiss (with a reason) or reopen a finding."""
    rid = review_finding(svc(request), p, finding_id, body.status, body.reason)
    return {"id": rid, "message": f"{finding_id} -> {body.status}"}


FINDING_COLUMNS_ZH: dict[str, str] = {
    "finding_id": "发现编号", "rule": "规则", "district": "区县", "person_id": "人员编号",
    "name": "姓名", "id_number": "公民身份号码", "months": "月数", "amount_monthly": "月金额",
    "amount_total": "总金额", "status": "状态", "dismissed_reason": "排除理由",
    "status_by": "处理人", "status_at": "处理时间", "first_seen_run": "首次发现批次",
    "last_seen_run": "最近发现批次",
}


def findings_xlsx(s: ServiceState, p: Principal, rule: str | None, district: str | None,
                  status: str | None) -> bytes:
    """The filtered findings as an XLSX workbook (Chinese headers, masked per role)."""
    from warehouse.report.fastxlsx import write_table_xlsx

    fs = [mask_record(p.role, f) for f in _findings(s, rule, district, status)]
    df = pd.DataFrame(fs, columns=list(FINDING_COLUMNS_ZH)).rename(columns=FINDING_COLUMNS_ZH)
    df = df.astype(object).where(df.notna(), "")
    with tempfile.TemporaryDirectory() as tmp:
        path = write_table_xlsx(FsPath(tmp) / "findings.xlsx", df.astype(str), "发现")
        data = FsPath(path).read_bytes()
    s.access.log(p.username, p.role, "export_findings", [None], FINDING_PURPOSE)
    return data


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/findings.xlsx", tags=["findings"],
            responses={200: {"content": {XLSX: {}}, "description": "XLSX workbook"}})
def export_findings(request: Request, rule: str | None = Query(None, max_length=64),
                    district: str | None = Query(None, max_length=40),
                    status: Status | None = Query(None),
                    p: Principal = Depends(need("findings"))) -> Response:
    """The findings matching the filters as an XLSX file."""
    data = findings_xlsx(svc(request), p, rule, district, status)
    return Response(data, media_type=XLSX,
                    headers={"Content-Disposition": 'attachment; filename="findings.xlsx"'})


# --- review queue -------------------------------------------------------------------------

def steward_department(p: Principal, department: str | None) -> str | None:
    """The department filter a caller may use: a steward only its own (403 otherwise)."""
    if p.role == "steward":
        if department and department != p.department:
            raise HTTPException(403, "a steward sees only its own department's pairs")
        return p.department
    return department


def queue_items(s: ServiceState, p: Principal, department: str | None, reason: str | None,
                include_decided: bool = False) -> list[dict[str, Any]]:
    """The published queue minus pairs decided same / different since (overlay)."""
    dept = steward_department(p, department)
    with s.pool.cursor() as cur:
        items = q.review_queue(cur, dept, reason)
    out = []
    for it in items:
        d = s.overlay.decision(it["left_source"], it["left_key"], it["right_source"],
                               it["right_key"])
        if d is not None:
            it["decided"] = d["verdict"]
            it["decision_id"] = d["decision_id"]
            if d["verdict"] in ("same", "different") and not include_decided:
                continue
        out.append(it)
    return out


def pair_detail(s: ServiceState, p: Principal, queue_no: int) -> dict[str, Any]:
    """One queued pair: both records side by side, per-field comparison, match weights."""
    with s.pool.cursor() as cur:
        got = q.review_queue(cur, queue_no=queue_no)
        if not got:
            raise HTTPException(404, "no such pair")
        pair = got[0]
        if p.role == "steward" and p.department not in (pair["left_department"],
                                                          pair["right_department"]):
            raise HTTPException(403, "this pair has no record of your department")
        recs = q.source_records(cur, [(pair["left_source"], pair["left_key"]),
                                      (pair["right_source"], pair["right_key"])])
    left = recs.get((pair["left_source"], pair["left_key"]), {})
    right = recs.get((pair["right_source"], pair["right_key"]), {})
    lf, rf = left.get("fields") or {}, right.get("fields") or {}
    names = list(dict.fromkeys([*lf.keys(), *rf.keys()]))
    comparison = [{"field": n, "left": lf.get(n), "right": rf.get(n),
                   "same": (None if lf.get(n) is None or rf.get(n) is None
                            else str(lf.get(n)) == str(rf.get(n)))} for n in names]
    weights = [{"comparison": k[3:] if k.startswith("mw_") else k, "weight": v}
               for k, v in (pair.get("explanation") or {}).items()]
    d = s.overlay.decision(pair["left_source"], pair["left_key"], pair["right_source"],
                           pair["right_key"])
    pair["decided"] = d["verdict"] if d else pair.get("decided")
    return {"pair": pair, "left": left, "right": right, "comparison": comparison,
            "weights": weights, "decision": d}


def _pair_for_role(p: Principal, detail: dict[str, Any]) -> dict[str, Any]:
    """A steward judging a pair sees its two records in full; the rest as the role sees it."""
    full = ("id", "name", "phone") if p.role == "steward" else ()
    return mask_record(p.role, detail, full=full)


@router.get("/review/pairs", tags=["review"])
def list_pairs(request: Request, department: str | None = Query(None, max_length=64),
               reason: str | None = Query(None, max_length=64),
               limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
               p: Principal = Depends(need("review_queue"))) -> dict[str, Any]:
    """Uncertain pairs and identity conflicts awaiting a decision (a steward: its department)."""
    items = queue_items(svc(request), p, department, reason)
    page = items[offset:offset + limit]
    return {"total": len(items), "offset": offset,
            "items": [mask_record(p.role, {k: v for k, v in i.items() if k != "explanation"})
                      for i in page]}


@router.get("/review/pairs/{queue_no}", tags=["review"])
def get_pair(request: Request, queue_no: int = Path(..., ge=1, le=2 ** 62),
             p: Principal = Depends(need("review_queue"))) -> dict[str, Any]:
    """A pair side by side: both records, per-field comparison and the match weights."""
    s = svc(request)
    detail = pair_detail(s, p, queue_no)
    pr = detail["pair"]
    s.access.log(p.username, p.role, "view_pair",
                 sorted({x for x in (pr.get("left_person_id"), pr.get("right_person_id")) if x})
                 or [None], PAIR_PURPOSE)
    return _pair_for_role(p, detail)


def decide(s: ServiceState, p: Principal, queue_no: int, verdict: str,
           reason: str | None) -> int:
    """Append a steward's verdict on a queued pair; return the decision id."""
    from matching.decisions import DecisionError, RecordRef, record_decision

    pair = pair_detail(s, p, queue_no)["pair"]
    try:
        did = retry_locked(lambda: record_decision(
            s.settings.decisions_db, RecordRef(pair["left_source"], pair["left_key"]),
            RecordRef(pair["right_source"], pair["right_key"]), verdict, p.username,
            (reason or "").strip() or None))
    except DecisionError as exc:
        raise HTTPException(422, str(exc)) from None
    s.overlay.invalidate()
    return did


@router.post("/review/pairs/{queue_no}/decision", tags=["review"], response_model=Written)
def post_decision(request: Request, queue_no: int = Path(..., ge=1, le=2 ** 62),
                  body: DecisionIn = Body(...),
                  p: Principal = Depends(need("review_decide"))) -> dict[str, Any]:
    """是同一人 (same) / 不是同一人 (different) / 不确定 (unsure), with a note. The next run
    respects it; a same / different pair leaves the queue at once."""
    did = decide(svc(request), p, queue_no, body.verdict, body.reason)
    return {"id": did, "message": f"pair {queue_no}: {body.verdict}"}


def my_decisions(s: ServiceState, p: Principal, limit: int) -> list[dict[str, Any]]:
    """Recent decisions, newest first (a steward: its own), with whether each is undone."""
    from matching.decisions import all_decisions

    df = retry_locked(lambda: all_decisions(s.settings.decisions_db))
    if df.empty:
        return []
    undone = set(df.loc[df.verdict == "undo", "supersedes"].dropna().astype(int))
    df = df[df.verdict != "undo"]
    if p.role == "steward":
        df = df[df.user == p.username]
    df = df.sort_values("decision_id", ascending=False).head(limit)
    out = []
    for r in df.to_dict("records"):
        r = {k: q.jsonable(None if pd.isna(v) else v) for k, v in r.items()}
        r["undone"] = int(r["decision_id"]) in undone
        out.append(r)
    return out


@router.get("/review/decisions", tags=["review"])
def list_decisions(request: Request, limit: int = Query(100, ge=1, le=1000),
                   p: Principal = Depends(need("review_decide"))) -> list[dict[str, Any]]:
    """Recent decisions (a steward: its own), for undo."""
    return [mask_record(p.role, d) for d in my_decisions(svc(request), p, limit)]


def undo(s: ServiceState, p: Principal, decision_id: int, reason: str | None) -> int:
    """Undo a decision (a steward: only its own); return the undo's id."""
    from matching.decisions import DecisionError, all_decisions, undo_decision

    df = retry_locked(lambda: all_decisions(s.settings.decisions_db))
    row = df[df.decision_id == decision_id]
    if row.empty:
        raise HTTPException(404, "no such decision")
    if p.role == "steward" and row.iloc[0]["user"] != p.username:
        raise HTTPException(403, "a steward may undo only its own decisions")
    try:
        uid = retry_locked(lambda: undo_decision(s.settings.decisions_db, decision_id,
                                                 p.username, reason))
    except DecisionError as exc:
        raise HTTPException(409, str(exc)) from None
    s.overlay.invalidate()
    return uid


@router.post("/review/decisions/{decision_id}/undo", tags=["review"], response_model=Written)
def post_undo(request: Request, decision_id: int = Path(..., ge=1, le=2 ** 62),
              body: UndoIn = Body(...),
              p: Principal = Depends(need("review_decide"))) -> dict[str, Any]:
    """Undo a decision (appends an undo row; the pair returns to the queue)."""
    uid = undo(svc(request), p, decision_id, body.reason)
    return {"id": uid, "message": f"decision {decision_id} undone"}


@router.get("/access-log", tags=["audit"])
def access_log(request: Request, limit: int = Query(200, ge=1, le=5000),
               p: Principal = Depends(need("access_log"))) -> list[dict[str, Any]]:
    """Who looked at which person, when and why (newest first)."""
    from warehouse.access_log import read_access_log

    svc(request).access.flush()
    rows = retry_locked(lambda: read_access_log(svc(request).settings.decisions_db, limit))
    cols = ("access_id", "at", "user", "role", "action", "person_id", "purpose")
    return [{c: q.jsonable(v) for c, v in zip(cols, r)} for r in rows]
