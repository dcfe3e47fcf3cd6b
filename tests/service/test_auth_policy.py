"""Users, passwords, tokens (stored hashed, no defaults), masking helpers, the master pool."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pytest

from tests.service.factory import RUN_ID, make_master
from unigrid.service import auth
from unigrid.service.policy import mask_record, mask_value
from unigrid.service.store import MasterPool


def test_no_default_users_and_unknown_token(tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    assert auth.list_users(db) == []
    assert auth.principal_for_token(db, "ug_anything") is None
    assert auth.check_login(db, "admin", "admin") is None


def test_password_and_token_are_stored_hashed(tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    pw = auth.add_user(db, "alice", "auditor")
    tok = auth.issue_token(db, "alice")
    con = duckdb.connect(str(db), read_only=True)
    try:
        stored = " ".join(str(v) for t in ('auth."user"', "auth.token")
                          for r in con.execute(f"SELECT * FROM {t}").fetchall() for v in r)
    finally:
        con.close()
    assert pw not in stored and tok not in stored
    assert "scrypt$" in stored and auth.token_hash(tok) in stored
    p = auth.check_login(db, "alice", pw)
    assert p == auth.Principal("alice", "auditor", None, True)
    assert auth.check_login(db, "alice", pw + "x") is None
    got = auth.principal_for_token(db, tok)
    assert got is not None and got[0].username == "alice"
    assert auth.principal_for_token(db, tok, kind="session") is None


@pytest.mark.parametrize("role,dept,ok,stored", [
    ("steward", "人社局", True, "human_resources_social_security"),
    ("steward", "public_security", True, "public_security"),
    ("steward", None, False, None),
    ("auditor", "人社局", True, None),
    ("root", None, False, None),
])
def test_add_user_roles_and_departments(tmp_path: Path, role: str, dept: str | None, ok: bool,
                                        stored: str | None) -> None:
    db = tmp_path / "d.duckdb"
    if not ok:
        with pytest.raises(auth.AuthError):
            auth.add_user(db, "u", role, dept)
        return
    auth.add_user(db, "u", role, dept)
    assert auth.list_users(db)[0][:3] == ("u", role, stored)
    with pytest.raises(auth.AuthError):
        auth.add_user(db, "u", role, dept)


def test_disable_and_expiry_revoke_access(tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    auth.add_user(db, "bob", "service")
    live = auth.issue_token(db, "bob", days=1)
    expired = auth.issue_token(db, "bob", days=-1)
    assert auth.principal_for_token(db, live) is not None
    assert auth.principal_for_token(db, expired) is None
    auth.revoke_token(db, live)
    assert auth.principal_for_token(db, live) is None
    again = auth.issue_token(db, "bob")
    auth.disable_user(db, "bob")
    assert auth.principal_for_token(db, again) is None
    with pytest.raises(auth.AuthError):
        auth.issue_token(db, "bob")


def test_password_rules(tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    auth.add_user(db, "c", "admin")
    with pytest.raises(auth.AuthError):
        auth.set_password(db, "c", "short")
    auth.set_password(db, "c", "long enough pw")
    assert auth.check_login(db, "c", "long enough pw") == auth.Principal("c", "admin", None,
                                                                          False)
    new = auth.reset_password(db, "c")
    assert auth.check_login(db, "c", new).must_change


@pytest.mark.parametrize("role,field,value,expected", [
    ("steward", "id_number", "420502900101123", "420502*****1123"),
    ("steward", "head_name", "买买提·艾力", "买*提·艾*"),
    ("steward", "matched_name", "张伟", "张*"),
    ("steward", "source_key", "hrss:420502199001011234|2026", "hrss:420502********1234|2026"),
    ("auditor", "source_key", "hrss:420502199001011234|2026", "hrss:420502199001011234|2026"),
    ("auditor", "next_of_kin_phone", "13800001234", "138****1234"),
    ("steward", "birth_date", "1990-01-01", "1990-01-01"),
    ("steward", "name", None, None),
])
def test_mask_value_uses_the_one_rule_per_kind(role: str, field: str, value: str | None,
                                               expected: str | None) -> None:
    """The rules themselves are tested in tests/warehouse/test_masking.py."""
    assert mask_value(role, field, value) == expected


@pytest.mark.parametrize("role,expected", [
    ("admin", {"id_number": "420502199001011234", "name": "张小明", "phone": "13800001234"}),
    ("auditor", {"id_number": "420502199001011234", "name": "张小明", "phone": "138****1234"}),
    ("service", {"id_number": "420502199001011234", "name": "张小明", "phone": "138****1234"}),
    ("steward", {"id_number": "420502********1234", "name": "张*明", "phone": "138****1234"}),
    ("nobody", {"id_number": "420502********1234", "name": "张*明", "phone": "138****1234"}),
])
def test_mask_record_nested(role: str, expected: dict) -> None:
    rec = {"a": [{"fields": {"id_number": "420502199001011234", "name": "张小明",
                             "phone": "13800001234", "sex": "男"}}]}
    out = mask_record(role, rec)["a"][0]["fields"]
    assert {k: out[k] for k in expected} == expected and out["sex"] == "男"
    assert rec["a"][0]["fields"]["name"] == "张小明"  # input untouched
    assert mask_value(role, "mother_id_number", "420502199001011234") == expected["id_number"]


def test_pool_follows_publish_and_never_blocks_it(tmp_path: Path) -> None:
    from warehouse.publish import publish

    s = make_master(tmp_path)
    pool = MasterPool(s.master_db)
    started, release = threading.Event(), threading.Event()
    seen: list[str] = []

    def long_reader() -> None:
        with pool.cursor() as cur:
            started.set()
            release.wait(30)
            seen.append(cur.execute("SELECT max(run_id) FROM audit.run").fetchone()[0])

    t = threading.Thread(target=long_reader)
    t.start()
    started.wait(10)
    publish(s, "20261121")  # completes while a reader holds the old snapshot
    with pool.cursor() as cur:
        assert cur.execute("SELECT max(run_id) FROM audit.run").fetchone()[0] == "20261121"
    release.set()
    t.join(10)
    assert seen == [RUN_ID]  # the long reader kept its consistent snapshot
    pool.close()


def _log_rows(db: Path) -> list[tuple]:
    from warehouse.access_log import read_access_log
    return read_access_log(db)


def test_access_journal_moves_to_the_database(tmp_path: Path) -> None:
    from unigrid.service.store import AccessLogWriter

    db = tmp_path / "d.duckdb"
    w = AccessLogWriter(db, interval=3600, rotate_bytes=200)
    w.log("u1", "service", "view_person", ["P1", "P2"], "核查")
    assert _log_rows(db) == []  # journaled, not yet moved
    assert w.path.read_bytes().count(b"\n") == 2
    first = w.path
    assert w.flush() == 2
    assert w.path != first and not first.exists()  # rotated after a full move
    w.log("u2", "admin", "search_person", [None], "查询")
    w.close()
    rows = _log_rows(db)
    assert [(r[2], r[4], r[5], r[6]) for r in rows] == [
        ("u2", "search_person", None, "查询"), ("u1", "view_person", "P2", "核查"),
        ("u1", "view_person", "P1", "核查")]
    assert not list(tmp_path.glob("*.jsonl"))


def test_journal_of_a_dead_process_is_recovered_once(tmp_path: Path) -> None:
    from unigrid.service.store import AccessLogWriter

    db = tmp_path / "d.duckdb"
    orphan = tmp_path / "d.duckdb.access-1-1.jsonl"
    line = ('{"at": "2026-11-21T01:00:00+00:00", "user": "u", "role": "service", '
            '"action": "view_person", "person_id": "P9", "purpose": "核查"}\n')
    orphan.write_text(line * 1, encoding="utf-8")
    w = AccessLogWriter(db, interval=3600)
    assert not orphan.exists()
    orphan.write_text(line, encoding="utf-8")  # the same entry again: not inserted twice
    assert w.recover() == 1
    w.close()
    assert [(r[2], r[5]) for r in _log_rows(db)] == [("u", "P9")]


def test_docs_show_the_policy_matrix() -> None:
    from unigrid.service.policy import matrix_markdown

    doc = (Path(__file__).resolve().parents[2] / "docs" / "service.md").read_text(
        encoding="utf-8")
    assert matrix_markdown() in doc


_LINE = ('{"at": "2026-11-21T01:00:00+00:00", "user": "u", "role": "service", '
         '"action": "view_person", "person_id": %s, "purpose": "核查"}\n')


@pytest.mark.parametrize("text,start,rows,moved", [
    ("", 0, [], 0),
    (_LINE % '"P1"', 0, [("P1", "核查")], len((_LINE % '"P1"').encode())),
    (_LINE % "null" + _LINE % '"P2"', 0, [(None, "核查"), ("P2", "核查")],
     len((_LINE % "null" + _LINE % '"P2"').encode())),
    # a line still being written is left for the next move
    (_LINE % '"P1"' + '{"at": "2026', 0, [("P1", "核查")], len((_LINE % '"P1"').encode())),
    # from an offset: only what follows it
    (_LINE % '"P1"' + _LINE % '"P2"', len((_LINE % '"P1"').encode()), [("P2", "核查")],
     len((_LINE % '"P1"' + _LINE % '"P2"').encode())),
    # a field the reader does not know is ignored
    (_LINE.replace('"purpose"', '"extra": 1, "purpose"') % '"P3"', 0, [("P3", "核查")],
     len((_LINE.replace('"purpose"', '"extra": 1, "purpose"') % '"P3"').encode())),
])
def test_journal_lines_are_read_whole_from_an_offset(tmp_path: Path, text, start, rows,
                                                     moved) -> None:
    from unigrid.service.store import AccessLogWriter

    path = tmp_path / "j.jsonl"
    path.write_bytes(text.encode())
    table, end = AccessLogWriter._read_lines(path, start)
    got = list(zip(table.column("person_id").to_pylist(), table.column("purpose").to_pylist()))
    assert got == rows and end == max(moved, start)
    assert table.column_names == ["at", "user", "role", "action", "person_id", "purpose"]
