"""Pages (server-rendered, Simplified Chinese) through the test client: login, cookie flags,
CSRF, the review and audit forms, role checks, no CDN assets."""

from __future__ import annotations

import re

import pytest

from tests.service.conftest import PASSWORD, Env


def login(env: Env, user: str, password: str = PASSWORD) -> str:
    """Log in; return the CSRF token of the session."""
    r = env.client.post("/login", data={"username": user, "password": password},
                        follow_redirects=False)
    assert r.status_code == 303, r.text
    page = env.client.get("/review/my-decisions" if "steward" in user or "admin" in user
                          else "/audit")
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)


def test_login_sets_a_strict_httponly_cookie(env: Env) -> None:
    r = env.client.post("/login", data={"username": "steward_ps", "password": PASSWORD},
                        follow_redirects=False)
    cookie = r.headers["set-cookie"]
    assert "ug_session=ug_" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert r.headers["location"] == "/"


@pytest.mark.parametrize("user,password,code,text", [
    ("steward_ps", "wrong password", 401, "用户名或密码错误"),
    ("nobody", PASSWORD, 401, "用户名或密码错误"),
    ("svc1", PASSWORD, 403, "API 令牌"),
])
def test_login_refused(env: Env, user: str, password: str, code: int, text: str) -> None:
    r = env.client.post("/login", data={"username": user, "password": password})
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
    r = env.client.post("/login", data={"username": "newbie", "password": pw},
                        follow_redirects=False)
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
        r = env.client.post("/login", data={"username": "auditor1", "password": "guess"})
        assert r.status_code == 401
    r = env.client.post("/login", data={"username": "auditor1", "password": PASSWORD})
    assert r.status_code == 429 and "次数过多" in r.text
    # another name is not affected
    r = env.client.post("/login", data={"username": "admin1", "password": PASSWORD},
                        follow_redirects=False)
    assert r.status_code == 303
