"""Pages (server-rendered, Simplified Chinese) through the test client: login, cookie flags,
CSRF, the review and audit forms, role checks, no CDN assets."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.service.conftest import PASSWORD, Env


def login_token(env: Env) -> str:
    """Open the login form; return its double-submit token (the client keeps the cookie)."""
    form = env.client.get("/login")
    return re.search(r'name="csrf" value="([A-Za-z0-9_-]+)"', form.text).group(1)


def post_login(env: Env, data: dict[str, str], **kw: object) -> httpx.Response:
    """POST the login form as a browser does: token from the form, cookie from the client."""
    return env.client.post("/login", data={**data, "csrf": login_token(env)}, **kw)


def login(env: Env, user: str, password: str = PASSWORD) -> str:
    """Log in; return the CSRF token of the session."""
    r = post_login(env, {"username": user, "password": password}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = env.client.get("/review/my-decisions" if "steward" in user or "admin" in user
                          else "/audit")
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)


def test_login_sets_a_strict_httponly_cookie(env: Env) -> None:
    r = post_login(env, {"username": "steward_ps", "password": PASSWORD}, follow_redirects=False)
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("ug_session="))
    assert "ug_session=ug_" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert r.headers["location"] == "/"
    assert "ug_login_csrf" not in env.client.cookies  # the login form's token is spent


def test_login_form_sets_a_strict_httponly_token_cookie(env: Env) -> None:
    r = env.client.get("/login")
    cookie = r.headers["set-cookie"]
    token = re.search(r'name="csrf" value="([A-Za-z0-9_-]+)"', r.text).group(1)
    assert cookie.startswith(f"ug_login_csrf={token};") and len(token) >= 40
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert login_token(env) != token  # a fresh token per form


def test_login_token_cookie_is_host_prefixed_and_secure_behind_tls(env: Env) -> None:
    from fastapi.testclient import TestClient

    from unigrid.service.app import create_app
    with TestClient(create_app(env.settings, cookie_secure=True),
                    base_url="https://testserver") as c:
        r = c.get("/login")
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("__Host-ug_login_csrf=") and "Secure" in cookie
        assert "Path=/" in cookie and "Domain" not in cookie
        token = re.search(r'name="csrf" value="([A-Za-z0-9_-]+)"', r.text).group(1)
        data = {"username": "auditor1", "password": PASSWORD}
        c.cookies.set("ug_login_csrf", token)  # the unprefixed name does not count behind TLS
        c.cookies.delete("__Host-ug_login_csrf")
        assert c.post("/login", data={**data, "csrf": token}).status_code == 403
        token = re.search(r'name="csrf" value="([A-Za-z0-9_-]+)"', c.get("/login").text).group(1)
        r = c.post("/login", data={**data, "csrf": token}, follow_redirects=False)
        assert r.status_code == 303 and "ug_session" in c.cookies


@pytest.mark.parametrize("case", ["missing", "wrong", "stale", "no_cookie"])
def test_login_without_the_right_csrf_token_is_refused(env: Env, case: str) -> None:
    from unigrid.service.pages import LOGIN_CSRF_ERROR
    token = login_token(env)
    data = {"username": "steward_ps", "password": PASSWORD}
    if case == "wrong":
        data["csrf"] = token[:-1] + ("A" if token[-1] != "A" else "B")
    elif case == "stale":  # a token from an earlier form (or another browser's form)
        login_token(env)
        data["csrf"] = token
    elif case == "no_cookie":
        env.client.cookies.delete("ug_login_csrf")
        data["csrf"] = token
    r = env.client.post("/login", data=data, follow_redirects=False)
    assert r.status_code == 403 and LOGIN_CSRF_ERROR in r.text
    assert "ug_session" not in env.client.cookies
    assert env.client.get("/audit", follow_redirects=False).headers["location"] == "/login"
    # the refused form comes back with a fresh token that works
    fresh = re.search(r'name="csrf" value="([A-Za-z0-9_-]+)"', r.text).group(1)
    r = env.client.post("/login", data={**data, "csrf": fresh}, follow_redirects=False)
    assert r.status_code == 303 and "ug_session" in env.client.cookies


@pytest.mark.parametrize("user,password,code,text", [
    ("steward_ps", "wrong password", 401, "用户名或密码错误"),
    ("nobody", PASSWORD, 401, "用户名或密码错误"),
    ("svc1", PASSWORD, 403, "API 令牌"),
])
def test_login_refused(env: Env, user: str, password: str, code: int, text: str) -> None:
    r = post_login(env, {"username": user, "password": password})
    assert r.status_code == code and text in r.text


def test_pages_need_login(shared_env: Env) -> None:
    for path in ("/", "/review", "/audit", "/review/pair/1", "/admin/access-log"):
        r = shared_env.client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login", path


def test_steward_decides_in_the_page_and_pair_leaves(env: Env) -> None:
    csrf = login(env, "steward_ps")
    q = env.client.get("/review")
    assert "待审核配对" in q.text and 'data-queue-no="1"' in q.text
    pair = env.client.get("/review/pair/1")
    assert "是同一人" in pair.text and "不是同一人" in pair.text and "不确定" in pair.text
    assert "各项匹配权重" in pair.text and "出生日期" in pair.text
    # no CSRF token: refused, nothing written
    r = env.client.post("/review/pair/1/decide", data={"verdict": "different", "note": "x"})
    assert r.status_code == 403
    assert 'data-queue-no="1"' in env.client.get("/review").text
    r = env.client.post("/review/pair/1/decide",
                        data={"verdict": "different", "note": "地址不同", "csrf": csrf})
    assert r.status_code == 200 and "不是同一人" in r.text
    assert 'data-queue-no="1"' not in r.text and 'data-queue-no="2"' in r.text
    mine = env.client.get("/review/my-decisions")
    did = re.search(r'data-decision-id="(\d+)"', mine.text).group(1)
    r = env.client.post(f"/review/my-decisions/{did}/undo", data={"note": "误操作", "csrf": csrf})
    assert "已撤销" in r.text
    assert 'data-queue-no="1"' in env.client.get("/review").text


def test_auditor_dismisses_with_reason_in_the_page(env: Env) -> None:
    csrf = login(env, "auditor1")
    lst = env.client.get("/audit", params={"status": "open"})
    assert "死亡人员仍领取养老金" in lst.text and "F00000000000000A1" in lst.text
    r = env.client.post("/audit/finding/F00000000000000A1/review",
                        data={"status": "dismissed", "reason": "", "csrf": csrf})
    assert r.status_code == 422
    r = env.client.post("/audit/finding/F00000000000000A1/review",
                        data={"status": "dismissed", "reason": "已核实为同名", "csrf": csrf})
    assert r.status_code == 200 and "已排除" in r.text and "已核实为同名" in r.text
    assert "F00000000000000A1" not in env.client.get("/audit", params={"status": "open"}).text
    x = env.client.get("/audit/export.xlsx", params={"status": "dismissed"})
    assert x.status_code == 200 and x.content[:2] == b"PK"


@pytest.mark.parametrize("user,path,code", [
    ("auditor1", "/review", 403),
    ("steward_ps", "/audit", 403),
    ("steward_ps", "/admin/access-log", 403),
    ("steward_health", "/review/pair/1", 403),
    ("admin1", "/admin/access-log", 200),
])
def test_page_roles(env: Env, user: str, path: str, code: int) -> None:
    login(env, user)
    assert env.client.get(path).status_code == code


def test_pages_mask_per_role_and_use_no_cdn(env: Env) -> None:
    login(env, "auditor1")
    page = env.client.get("/audit/finding/F00000000000000A1")
    assert "刘娜" in page.text  # auditors see names
    for path in ("/audit", "/audit/finding/F00000000000000A1", "/login"):
        html = env.client.get(path).text
        assert not re.search(r'(src|href)="(https?:)?//', html), path
    assert env.client.get("/static/style.css").status_code == 200


def test_first_login_must_change_password(env: Env) -> None:
    from unigrid.service.auth import add_user
    pw = add_user(env.settings.decisions_db, "newbie", "auditor")
    r = post_login(env, {"username": "newbie", "password": pw}, follow_redirects=False)
    assert r.headers["location"] == "/password"
    assert env.client.get("/audit", follow_redirects=False).headers["location"] == "/password"
    form = env.client.get("/password").text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', form).group(1)
    r = env.client.post("/password", data={"new1": "a new secret 1", "new2": "a new secret 1",
                                           "csrf": csrf})
    assert r.status_code == 200 and "核查发现" in r.text


def test_logout_revokes_the_session(env: Env) -> None:
    csrf = login(env, "auditor1")
    cookie = env.client.cookies.get("ug_session")
    env.client.post("/logout", data={"csrf": csrf})
    env.client.cookies.set("ug_session", cookie)
    r = env.client.get("/audit", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_repeated_failed_logins_block_the_name(env: Env) -> None:
    for _ in range(5):
        r = post_login(env, {"username": "auditor1", "password": "guess"})
        assert r.status_code == 401
    r = post_login(env, {"username": "auditor1", "password": PASSWORD})
    assert r.status_code == 429 and "次数过多" in r.text
    # another name is not affected
    r = post_login(env, {"username": "admin1", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
