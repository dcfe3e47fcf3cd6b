"""The fast request path: awaited access-log entries, reused master cursors, the doc route."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.service.factory import RUN_ID, make_master
from unigrid.service.store import AccessLogWriter, MasterPool
from warehouse.connection import connect_attached


def _journal(w: AccessLogWriter) -> list[dict]:
    return [json.loads(x) for x in w.path.read_bytes().splitlines() if x.strip()]


@pytest.mark.parametrize("n_tasks, per_task", [(1, 1), (50, 1), (200, 3)])
def test_awaited_entries_are_on_disk_when_alog_returns(tmp_path: Path, n_tasks: int,
                                                       per_task: int) -> None:
    w = AccessLogWriter(tmp_path / "d.duckdb", interval=3600)
    seen: list[int] = []

    async def one(i: int) -> None:
        await w.alog(f"u{i}", "service", "view_person", [f"P{i}-{k}" for k in range(per_task)],
                     "核查")
        # when alog returns, this task's entries are in the journal file (fsynced)
        mine = [e for e in _journal(w) if e["user"] == f"u{i}"]
        seen.append(len(mine))

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(n_tasks)))

    asyncio.run(main())
    w.log("sync", "admin", "search_person", [None], "查询")  # threads and coroutines mix
    assert seen == [per_task] * n_tasks
    assert len(_journal(w)) == n_tasks * per_task + 1
    w.close()


def test_alog_refuses_an_access_without_purpose(tmp_path: Path) -> None:
    w = AccessLogWriter(tmp_path / "d.duckdb", interval=3600)
    with pytest.raises(ValueError):
        asyncio.run(w.alog("u", "service", "view_person", ["P1"], "  "))
    w.close()


def test_cursors_are_reused_and_follow_a_replaced_file(tmp_path: Path) -> None:
    s = make_master(tmp_path / "home")
    pool = MasterPool(s.master_db)
    with pool.cursor() as a:
        first = a
        assert a.execute("SELECT count(*) FROM master.person_doc").fetchone()[0] > 0
    with pool.cursor() as b:
        assert b is first  # back from the free list
        with pool.cursor() as c:  # a concurrent request gets another one
            assert c is not b
    # publish-style swap: a changed copy replaces the live file
    copy = s.master_db.with_name("next.duckdb")
    shutil.copy(s.master_db, copy)
    con = connect_attached(copy)
    con.execute("DELETE FROM master.person_doc WHERE person_id <> 'P000000000001'")
    con.execute("CHECKPOINT")
    con.close()
    os.replace(copy, s.master_db)
    with pool.cursor() as d:
        assert d is not first
        assert d.execute("SELECT count(*) FROM master.person_doc").fetchone()[0] == 1
    pool.close()


def test_person_route_serves_a_master_without_the_document_table(env) -> None:
    pool = env.client.app.state.svc.pool
    with pool.cursor() as cur:
        idn = cur.execute("SELECT id_number FROM master.person "
                          "WHERE person_id = 'P000000000001'").fetchone()[0]
    want = env.client.get(f"/persons/{idn}", params={"purpose": "核查"},
                          headers=env.h("admin1")).json()
    pool.close()
    old = env.settings.master_db.with_name("old.duckdb")  # a master published before 0004
    shutil.copy(env.settings.master_db, old)
    con = connect_attached(old)
    con.execute("DROP TABLE master.person_doc")
    con.execute("CHECKPOINT")
    con.close()
    os.replace(old, env.settings.master_db)
    got = env.client.get(f"/persons/{idn}", params={"purpose": "核查"},
                         headers=env.h("admin1"))
    assert got.status_code == 200
    assert got.json() == want
    assert want["person_id"] == "P000000000001" and want["run_id"] == RUN_ID
