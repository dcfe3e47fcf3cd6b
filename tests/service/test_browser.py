"""Browser tests in headless Chromium (Playwright, Debian's /usr/bin/chromium) against a real
uvicorn server on a loopback port, on a master built by the real pipeline stages from a small
generated city.

- A steward logs in, opens a queued pair, decides 不是同一人 and sees it leave the queue; the next
  match + publish keeps the two records apart (different person ids).
- An auditor dismisses a finding with a reason; after the next check + publish it is still
  dismissed (and shown so).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Iterator

import pytest

from unigrid.settings import DEFAULT_CONTRACTS_DIR, Settings, load_settings
from unigrid.stages import RunContext, run_stage

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
PASSWORD = "browser test password"
CTX = RunContext.for_date(date(2026, 11, 20))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_stages(settings: Settings, *names: str) -> None:
    """Run pipeline stages in order; fail the test on any failed stage."""
    for name in names:
        r = run_stage(name, settings, CTX)
        assert r.status in ("ok", "partial"), (name, r.messages)


@dataclass
class Live:
    """A served city."""

    settings: Settings
    url: str


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    import uvicorn

    from unigrid.service.app import create_app
    from unigrid.synthetic import generate_city

    home = tmp_path_factory.mktemp("city")
    s = replace(load_settings(env={}, cwd=home), contracts_dir=DEFAULT_CONTRACTS_DIR,
                source_root=home / "city" / "exports",
                truth_dir=home / "city" / "truth").ensure_dirs()
    generate_city(persons=800, seed=5, out=home / "city", force=True)
    run_stages(s, "extract", "validate", "standardise", "match", "check", "publish")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(s), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield Live(s, f"http://127.0.0.1:{port}")
    server.should_exit = True
    t.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def make_user(s: Settings, name: str, role: str, dept: str | None = None) -> None:
    from unigrid.service.auth import add_user, set_password
    add_user(s.decisions_db, name, role, dept)
    set_password(s.decisions_db, name, PASSWORD)


def login(page, url: str, user: str) -> None:  # noqa: ANN001
    page.goto(f"{url}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def person_of(s: Settings, source: str, key: str) -> str:
    from warehouse.queries import open_master
    with open_master(s) as con:
        return con.execute("SELECT person_id FROM master.person_link WHERE source = ? AND "
                           "source_key = ?", [source, key]).fetchone()[0]


def test_steward_decides_not_same_and_next_run_keeps_them_apart(live: Live, browser) -> None:  # noqa: ANN001
    from warehouse.queries import open_master

    with open_master(live.settings) as con:
        pair = con.execute("""SELECT queue_no, left_source, left_key, right_source, right_key,
                                     left_department, linked_now FROM master.review_queue
                              ORDER BY linked_now DESC, queue_no LIMIT 1""").fetchone()
    assert pair is not None, "the generated city gave no review queue"
    qno, ls, lk, rs, rk, dept, linked = pair
    make_user(live.settings, "steward_b", "steward", dept)
    page = browser.new_page()
    login(page, live.url, "steward_b")
    page.wait_for_url(f"{live.url}/review")
    assert page.locator(f"tr[data-queue-no='{qno}']").count() == 1
    page.click(f"tr[data-queue-no='{qno}'] a")
    page.wait_for_url(f"{live.url}/review/pair/{qno}")
    assert page.locator("#comparison").is_visible() and page.locator("#weights").is_visible()
    page.fill("textarea[name=note]", "出生日期和住址均不同，不是同一人")
    page.click("button[value=different]")
    page.wait_for_url(f"{live.url}/review?*")
    assert "不是同一人" in page.locator(".msg").inner_text()
    assert page.locator(f"tr[data-queue-no='{qno}']").count() == 0
    page.close()

    before_l, before_r = person_of(live.settings, ls, lk), person_of(live.settings, rs, rk)
    assert (before_l == before_r) == bool(linked)
    run_stages(live.settings, "match", "publish")
    after_l, after_r = person_of(live.settings, ls, lk), person_of(live.settings, rs, rk)
    assert after_l != after_r
    with open_master(live.settings) as con:
        still = con.execute("SELECT count(*) FROM master.review_queue WHERE left_source = ? AND "
                            "left_key = ? AND right_source = ? AND right_key = ?",
                            [ls, lk, rs, rk]).fetchone()[0]
    assert still == 0


def test_auditor_dismisses_finding_and_it_stays_dismissed(live: Live, browser) -> None:  # noqa: ANN001
    from warehouse.queries import open_master

    with open_master(live.settings) as con:
        fid = con.execute("SELECT finding_id FROM audit.finding WHERE status = 'open' "
                          "ORDER BY rule, finding_id LIMIT 1").fetchone()
    assert fid is not None, "the generated city gave no open finding"
    fid = fid[0]
    make_user(live.settings, "auditor_b", "auditor")
    page = browser.new_page()
    login(page, live.url, "auditor_b")
    page.wait_for_url(f"{live.url}/audit")
    page.select_option("select[name=status]", "open")
    page.click("form.filters button[type=submit]")
    page.click(f"tr[data-finding-id='{fid}'] a")
    page.wait_for_url(f"{live.url}/audit/finding/{fid}")
    page.fill("textarea[name=reason]", "经核实，养老金已于上月停发")
    page.click("button[value=dismissed]")
    page.wait_for_url(f"{live.url}/audit/finding/{fid}?*")
    assert page.locator("#status").inner_text() == "已排除"
    assert page.locator("#dismissed-reason").inner_text() == "经核实，养老金已于上月停发"

    run_stages(live.settings, "check", "publish")
    with open_master(live.settings) as con:
        status, reason = con.execute("SELECT status, dismissed_reason FROM audit.finding "
                                     "WHERE finding_id = ?", [fid]).fetchone()
    assert (status, reason) == ("dismissed", "经核实，养老金已于上月停发")
    page.goto(f"{live.url}/audit/finding/{fid}")
    assert page.locator("#status").inner_text() == "已排除"
    page.goto(f"{live.url}/audit?status=open")
    assert page.locator(f"tr[data-finding-id='{fid}']").count() == 0
    page.close()
