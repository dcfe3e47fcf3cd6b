"""Server-rendered pages in Simplified Chinese: login, review queue and pair view for stewards,
findings for auditors, the access log for admins.

Login sets a session cookie (random secret, stored hashed; HttpOnly, SameSite=Strict, Secure
when the service runs behind TLS); every POST form carries a CSRF token derived from the
session. The login form, before any session exists, carries a double-submit token: a random
value in a SameSite=Strict cookie and the same value in the form, compared on POST. The pages call the same functions as the API, so roles and masking are the same.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path as FsPath
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from unigrid.service import api
from unigrid.service.app import svc
from unigrid.service.auth import (DEPARTMENTS, AuthError, Principal, check_login, csrf_token,
                                  issue_token, revoke_token, set_password)
from unigrid.service.policy import allowed, mask_record

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(FsPath(__file__).parent / "templates"))

COOKIE = "ug_session"
LOGIN_CSRF_COOKIE = "ug_login_csrf"
"""The login form's double-submit cookie; ``__Host-`` prefixed behind TLS (no sibling host can
set it then)."""
LOGIN_CSRF_ERROR = "登录表单已失效或来源不明（CSRF 校验失败），请刷新页面后重新登录"

REASONS_ZH = {"review_band": "匹配分数处于待审区间", "one_id_two_people": "同一身份证号疑似两人",
              "one_person_two_ids": "同一人疑似两个身份证号",
              "contradicting_decisions": "人工决定相互矛盾"}
VERDICTS_ZH = {"same": "是同一人", "different": "不是同一人", "unsure": "不确定", "undo": "撤销"}
STATUS_ZH = {"open": "待处理", "confirmed": "已确认", "dismissed": "已排除"}
ROLES_ZH = {"admin": "管理员", "steward": "数据专员", "auditor": "审计员", "service": "下游系统"}
FIELDS_ZH = {
    "id_number": "公民身份号码", "name": "姓名", "sex": "性别", "birth_date": "出生日期",
    "ethnicity": "民族", "address": "地址", "phone": "电话", "household_no": "户号",
    "relation_to_head": "与户主关系", "registry_status": "户籍状态", "cancel_date": "注销日期",
    "cancel_reason": "注销原因", "death_date": "死亡日期",
    "pension_last_paid_month": "养老金最后发放月", "pension_monthly_amount": "养老金月额",
    "subsidy_monthly_amount": "低保月额", "household_size": "家庭人数", "case_no": "案件编号",
    "case_date": "立案日期", "mother_name": "母亲姓名", "mother_id_number": "母亲身份证号",
    "father_name": "父亲姓名", "father_id_number": "父亲身份证号", "grid_code": "网格编码",
    "resident_type": "人员类型", "collected_at": "采集时间", "registered_at": "登记日期",
    "birth_month": "出生年月", "cremation_date": "火化日期", "issued_at": "签发日期",
}
WEIGHTS_ZH = {"name": "姓名", "birth_date": "出生日期", "sex": "性别", "id": "身份证号",
              "id_number": "身份证号", "address": "地址", "phone": "电话",
              "house_key": "住址", "household_no": "户号", "district_code": "区县代码"}


def _rules_zh() -> dict[str, str]:
    from quality.rules import rule_infos
    return {r["id"]: r["title_zh"] for r in rule_infos()}


def _session(request: Request) -> tuple[Principal, str] | None:
    secret = request.cookies.get(COOKIE)
    if not secret:
        return None
    p = svc(request).principal(secret, "session")
    return (p, secret) if p else None




def _user(request: Request, operation: str | None = None) -> tuple[Principal, str]:
    got = _session(request)
    if got is None:
        raise HTTPException(303, headers={"Location": "/login"})
    if got[0].must_change and request.url.path != "/password":
        raise HTTPException(303, headers={"Location": "/password"})
    if operation and not allowed(got[0].role, operation):
        raise HTTPException(403, "您的角色无权访问此页面")
    return got


def _check_csrf(secret: str, token: str) -> None:
    if not hmac.compare_digest(csrf_token(secret), token or ""):
        raise HTTPException(403, "CSRF 校验失败，请刷新页面后重试")


def _render(request: Request, name: str, ctx: dict[str, Any], status: int = 200,
            who: tuple[Principal, str] | None = None) -> HTMLResponse:
    base = {"user": who[0] if who else None, "csrf": csrf_token(who[1]) if who else "",
            "roles_zh": ROLES_ZH, "departments": DEPARTMENTS,
            "msg": request.query_params.get("msg"),
            "allowed": allowed}
    resp = templates.TemplateResponse(request, name, {**base, **ctx}, status_code=status)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Content-Security-Policy"] = ("default-src 'self'; style-src 'self'; "
                                               "script-src 'self'; form-action 'self'")
    return resp


def _login_csrf_cookie(request: Request) -> str:
    """The login double-submit cookie's name (``__Host-`` prefixed when cookies are Secure)."""
    return ("__Host-" if svc(request).cookie_secure else "") + LOGIN_CSRF_COOKIE


def _login_page(request: Request, error: str | None, status: int = 200) -> HTMLResponse:
    """The login form with a fresh double-submit token, in the form and in a cookie."""
    token = secrets.token_urlsafe(32)
    resp = _render(request, "login.html", {"error": error, "login_csrf": token}, status=status)
    resp.set_cookie(_login_csrf_cookie(request), token, httponly=True, samesite="strict",
                    secure=svc(request).cookie_secure, max_age=3600, path="/")
    return resp


def login_csrf_ok(cookie: str | None, form: str | None) -> bool:
    """True if the login form's token equals its cookie's (both present, constant-time)."""
    return bool(cookie) and bool(form) and hmac.compare_digest(cookie.encode(), form.encode())


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return _login_page(request, None)


@router.post("/login")
def login(request: Request, username: str = Form(..., max_length=64),
          password: str = Form(..., max_length=200),
          csrf: str = Form("", max_length=100)) -> Response:
    s = svc(request)
    if not login_csrf_ok(request.cookies.get(_login_csrf_cookie(request)), csrf):
        return _login_page(request, LOGIN_CSRF_ERROR, status=403)
    name = username.strip()
    if s.login_blocked(name):
        return _login_page(request, "登录失败次数过多，请 15 分钟后再试", status=429)
    p = check_login(s.settings.decisions_db, name, password)
    if p is None:
        s.login_failed(name)
        return _login_page(request, "用户名或密码错误", status=401)
    s.login_ok(name)
    if p.role == "service":
        return _login_page(request, "下游系统账号请使用 API 令牌", status=403)
    secret = issue_token(s.settings.decisions_db, p.username, kind="session", days=8 / 24)
    resp = RedirectResponse("/password" if p.must_change else "/", status_code=303)
    resp.delete_cookie(_login_csrf_cookie(request), path="/", secure=s.cookie_secure,
                       httponly=True, samesite="strict")
    resp.set_cookie(COOKIE, secret, httponly=True, samesite="strict", secure=s.cookie_secure,
                    max_age=8 * 3600, path="/")
    return resp


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    got = _session(request)
    if got:
        _check_csrf(got[1], csrf)
        revoke_token(svc(request).settings.decisions_db, got[1])
        svc(request).forget(got[1])
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


@router.get("/password", response_class=HTMLResponse)
def password_form(request: Request) -> HTMLResponse:
    who = _user(request)
    return _render(request, "password.html", {"error": None}, who=who)


@router.post("/password")
def change_password(request: Request, csrf: str = Form(""), new1: str = Form(..., max_length=200),
                    new2: str = Form(..., max_length=200)) -> Response:
    who = _user(request)
    _check_csrf(who[1], csrf)
    if new1 != new2:
        return _render(request, "password.html", {"error": "两次输入的密码不一致"}, 422, who)
    try:
        set_password(svc(request).settings.decisions_db, who[0].username, new1)
    except AuthError:
        return _render(request, "password.html", {"error": "密码至少 10 个字符"}, 422, who)
    svc(request).forget(who[1])
    return RedirectResponse("/?" + urlencode({"msg": "密码已修改"}), status_code=303)


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    p, _ = _user(request)
    if p.role in ("steward",):
        return RedirectResponse("/review", status_code=303)
    if p.role == "auditor":
        return RedirectResponse("/audit", status_code=303)
    return RedirectResponse("/review", status_code=303)


# --- review -------------------------------------------------------------------------------

@router.get("/review", response_class=HTMLResponse)
def review_queue(request: Request, department: str | None = None,
                 reason: str | None = None) -> HTMLResponse:
    who = _user(request, "review_queue")
    p = who[0]
    items = api.queue_items(svc(request), p, department or None, reason or None)
    items = [mask_record(p.role, i) for i in items[:500]]
    return _render(request, "review_queue.html",
                   {"items": items, "total": len(items), "department": department or "",
                    "reason": reason or "", "reasons_zh": REASONS_ZH, "verdicts_zh": VERDICTS_ZH},
                   who=who)


@router.get("/review/pair/{queue_no}", response_class=HTMLResponse)
def review_pair(request: Request, queue_no: int) -> HTMLResponse:
    who = _user(request, "review_queue")
    s = svc(request)
    detail = api.pair_detail(s, who[0], queue_no)
    pr = detail["pair"]
    s.access.log(who[0].username, who[0].role, "view_pair",
                 sorted({x for x in (pr.get("left_person_id"), pr.get("right_person_id")) if x})
                 or [None], api.PAIR_PURPOSE)
    detail = api._pair_for_role(who[0], detail)
    return _render(request, "review_pair.html",
                   {"d": detail, "fields_zh": FIELDS_ZH, "weights_zh": WEIGHTS_ZH,
                    "reasons_zh": REASONS_ZH, "verdicts_zh": VERDICTS_ZH}, who=who)


@router.post("/review/pair/{queue_no}/decide")
def review_decide(request: Request, queue_no: int, csrf: str = Form(""),
                  verdict: str = Form(...), note: str = Form("", max_length=500)) -> Response:
    who = _user(request, "review_decide")
    _check_csrf(who[1], csrf)
    if verdict not in ("same", "different", "unsure"):
        raise HTTPException(422, "未知的决定")
    api.decide(svc(request), who[0], queue_no, verdict, note)
    msg = f"第 {queue_no} 对已记录：{VERDICTS_ZH[verdict]}"
    return RedirectResponse("/review?" + urlencode({"msg": msg}), status_code=303)


@router.get("/review/my-decisions", response_class=HTMLResponse)
def review_decisions(request: Request) -> HTMLResponse:
    who = _user(request, "review_decide")
    rows = [mask_record(who[0].role, d) for d in api.my_decisions(svc(request), who[0], 200)]
    return _render(request, "review_decisions.html",
                   {"rows": rows, "verdicts_zh": VERDICTS_ZH}, who=who)


@router.post("/review/my-decisions/{decision_id}/undo")
def review_undo(request: Request, decision_id: int, csrf: str = Form(""),
                note: str = Form("", max_length=500)) -> Response:
    who = _user(request, "review_decide")
    _check_csrf(who[1], csrf)
    api.undo(svc(request), who[0], decision_id, note or None)
    return RedirectResponse("/review/my-decisions?" + urlencode({"msg": f"决定 {decision_id} 已撤销"}),
                            status_code=303)


# --- audit --------------------------------------------------------------------------------

@router.get("/audit", response_class=HTMLResponse)
def audit_list(request: Request, rule: str | None = None, district: str | None = None,
               status: str | None = None) -> HTMLResponse:
    who = _user(request, "findings")
    st = status if status in STATUS_ZH else None
    fs = api._findings(svc(request), rule or None, district or None, st)
    items = [mask_record(who[0].role, {k: v for k, v in f.items() if k != "evidence"})
             for f in fs[:1000]]
    q = urlencode({k: v for k, v in (("rule", rule), ("district", district), ("status", st))
                   if v})
    return _render(request, "audit_list.html",
                   {"items": items, "total": len(fs), "rule": rule or "",
                    "district": district or "", "status": st or "", "rules_zh": _rules_zh(),
                    "status_zh": STATUS_ZH, "export_query": q}, who=who)


@router.get("/audit/export.xlsx")
def audit_export(request: Request, rule: str | None = None, district: str | None = None,
                 status: str | None = None) -> Response:
    who = _user(request, "findings")
    st = status if status in STATUS_ZH else None
    data = api.findings_xlsx(svc(request), who[0], rule or None, district or None, st)
    return Response(data, media_type=api.XLSX,
                    headers={"Content-Disposition": 'attachment; filename="findings.xlsx"'})


@router.get("/audit/finding/{finding_id}", response_class=HTMLResponse)
def audit_finding(request: Request, finding_id: str) -> HTMLResponse:
    who = _user(request, "findings")
    s = svc(request)
    fs = api._findings(s, None, None, None, finding_id)
    if not fs:
        raise HTTPException(404, "没有这条发现")
    s.access.log(who[0].username, who[0].role, "view_finding", [fs[0].get("person_id")],
                 api.FINDING_PURPOSE)
    f = mask_record(who[0].role, fs[0])
    return _render(request, "audit_finding.html",
                   {"f": f, "rules_zh": _rules_zh(), "status_zh": STATUS_ZH,
                    "fields_zh": FIELDS_ZH}, who=who)


@router.post("/audit/finding/{finding_id}/review")
def audit_review(request: Request, finding_id: str, csrf: str = Form(""),
                 status: str = Form(...), reason: str = Form("", max_length=500)) -> Response:
    who = _user(request, "finding_review")
    _check_csrf(who[1], csrf)
    if status not in STATUS_ZH:
        raise HTTPException(422, "未知的状态")
    if status == "dismissed" and not reason.strip():
        raise HTTPException(422, "排除需要填写理由")
    api.review_finding(svc(request), who[0], finding_id, status, reason.strip() or None)
    return RedirectResponse(f"/audit/finding/{finding_id}?" + urlencode(
        {"msg": f"已设为：{STATUS_ZH[status]}"}), status_code=303)


@router.get("/admin/access-log", response_class=HTMLResponse)
def access_log_page(request: Request) -> HTMLResponse:
    who = _user(request, "access_log")
    from unigrid.service.store import retry_locked
    from warehouse.access_log import read_access_log
    svc(request).access.flush()
    rows = retry_locked(lambda: read_access_log(svc(request).settings.decisions_db, 500))
    return _render(request, "access_log.html", {"rows": rows}, who=who)
