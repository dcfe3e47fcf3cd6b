"""The fast path of ``GET /persons/{id_number}`` (``unigrid.service.fastpath``): the same
status, bytes and headers as the FastAPI route for every person, role and error case, each
lookup logged once, concurrent lookups batched into one query, and the text-level body equal to
the parsing path on every published document."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb
import httpx
import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import ROLE_USER, make_users
from tests.service.factory import make_master
from tests.service.test_person_doc import amended  # noqa: F401 - fixture: the awkward cases
from unigrid.service import fastpath
from unigrid.service import queries as q
from unigrid.service.api import json_bytes
from unigrid.service.app import create_app
from unigrid.service.policy import ROLES, mask_in_place, mask_record
from unigrid.settings import Settings
from warehouse.connection import connect_attached

PURPOSE = {"purpose": "核查"}
UNKNOWN = "420502199901019999"


@dataclass
class Pair:
    """One master served twice: with the fast path and by the FastAPI route alone."""

    settings: Settings
    fast: TestClient
    slow: TestClient
    tokens: dict[str, str]

    def h(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[ROLE_USER[role]]}"}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    s = make_master(tmp_path_factory.mktemp("fast") / "home")
    tokens = make_users(s)
    with TestClient(create_app(s)) as fast, TestClient(create_app(s, fast_lookup=False)) as slow:
        yield Pair(s, fast, slow, tokens)


def _keys(pair: Pair) -> list[str]:
    with pair.fast.app.state.svc.pool.cursor() as cur:
        ids = [r[0] for r in cur.execute("SELECT id_key FROM master.person_doc "
                                         "ORDER BY id_key").fetchall()]
        pids = [r[0] for r in cur.execute("SELECT person_id FROM master.person "
                                          "ORDER BY person_id").fetchall()]
    return ids + [i.lower() for i in ids if i.endswith("X")] + pids


def _same(pair: Pair, url: str, params: dict | None, headers: dict) -> httpx.Response:
    a = pair.fast.get(url, params=params, headers=headers)
    b = pair.slow.get(url, params=params, headers=headers)
    assert (a.status_code, a.content) == (b.status_code, b.content), url
    assert a.headers.get("content-type") == b.headers.get("content-type")
    assert a.headers.get("content-length") == b.headers.get("content-length")
    return a


@pytest.mark.parametrize("role", ROLES)
def test_every_person_same_bytes_as_the_route(pair: Pair, role: str) -> None:
    keys = _keys(pair)
    assert len(keys) > 20
    pair.fast.get(f"/persons/{keys[0]}", params=PURPOSE, headers=pair.h(role))  # token cached
    for k in keys:
        assert _same(pair, f"/persons/{k}", PURPOSE, pair.h(role)).status_code == 200


ERRORS = [
    # (case, path, query, headers: "role" / "none" / a literal Authorization value, status)
    ("unknown person", f"/persons/{UNKNOWN}", PURPOSE, "service", 404),
    ("no purpose", "/persons/{ID}", None, "service", 422),
    ("blank purpose", "/persons/{ID}", {"purpose": "   "}, "service", 422),
    ("short purpose", "/persons/{ID}", {"purpose": "x"}, "service", 422),
    ("long purpose", "/persons/{ID}", {"purpose": "x" * 201}, "service", 422),
    ("bad key", "/persons/12345", PURPOSE, "service", 422),
    ("bad person id", "/persons/P0000000000XYZ", PURPOSE, "service", 422),
    ("key with newline", "/persons/{ID}%0A", PURPOSE, "service", 422),
    ("no token", "/persons/{ID}", PURPOSE, "none", 401),
    ("unknown token", "/persons/{ID}", PURPOSE, "Bearer nope", 401),
    ("basic scheme", "/persons/{ID}", PURPOSE, "Basic {TOKEN}", 401),
    ("scheme only", "/persons/{ID}", PURPOSE, "Bearer", 401),
]


@pytest.mark.parametrize("case, path, query, auth, status", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_are_the_routes(pair: Pair, case: str, path: str, query: dict | None, auth: str,
                               status: int) -> None:
    idn = _keys(pair)[0]
    token = pair.tokens[ROLE_USER["service"]]
    pair.fast.get(f"/persons/{idn}", params=PURPOSE, headers=pair.h("service"))  # token cached
    headers = ({} if auth == "none" else pair.h("service") if auth == "service"
               else {"Authorization": auth.replace("{TOKEN}", token)})
    r = _same(pair, path.replace("{ID}", idn), query, headers)
    assert r.status_code == status, case


def test_each_lookup_is_logged_once(tmp_path: Path) -> None:
    s = make_master(tmp_path / "home")
    tokens = make_users(s)
    svc = {"Authorization": f"Bearer {tokens['svc1']}"}
    with TestClient(create_app(s)) as c:
        with c.app.state.svc.pool.cursor() as cur:
            ids = [r[0] for r in cur.execute("SELECT id_key FROM master.person_doc "
                                             "WHERE id_key NOT LIKE 'P%' LIMIT 5").fetchall()]
        for i in ids:  # the first through the route (token not cached), the rest fast
            assert c.get(f"/persons/{i}", params=PURPOSE, headers=svc).status_code == 200
        assert c.get(f"/persons/{UNKNOWN}", params=PURPOSE, headers=svc).status_code == 404
        assert c.get(f"/persons/{ids[0]}", headers=svc).status_code == 422
        log = c.get("/access-log", headers={"Authorization": f"Bearer {tokens['admin1']}"})
    mine = [e for e in log.json() if e["user"] == "svc1"]
    assert sorted(e["action"] for e in mine) == ["lookup_person_not_found"] + ["view_person"] * 5
    assert all(e["purpose"] == "核查" for e in mine)
    assert not any(i in json.dumps(log.json(), ensure_ascii=False) for i in ids)


@pytest.mark.parametrize("n", [1, 7, 60])
def test_concurrent_lookups_share_one_query(pair: Pair, monkeypatch: pytest.MonkeyPatch,
                                            n: int) -> None:
    ids = [k for k in _keys(pair) if not k.startswith("P")]
    want = {k: pair.slow.get(f"/persons/{k}", params=PURPOSE, headers=pair.h("service")).content
            for k in ids}
    batches: list[int] = []
    real = q.person_docs

    def spy(cur: duckdb.DuckDBPyConnection, keys: list[str]) -> dict:
        batches.append(len(keys))
        return real(cur, keys)

    monkeypatch.setattr(q, "person_docs", spy)
    app = create_app(pair.settings)
    wanted = [ids[i % len(ids)] for i in range(n)] + [UNKNOWN]

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            await c.get(f"/persons/{ids[0]}", params=PURPOSE, headers=pair.h("service"))
            batches.clear()
            return await asyncio.gather(*(c.get(f"/persons/{k}", params=PURPOSE,
                                                headers=pair.h("service")) for k in wanted))

    try:
        got = asyncio.run(main())
    finally:
        app.state.svc.access.close()
        app.state.svc.pool.close()
    assert [r.status_code for r in got] == [200] * n + [404]
    assert all(r.content == want[k] for r, k in zip(got[:n], wanted))
    assert sum(batches) >= len(set(wanted))
    if n > 1:
        assert max(batches) > 1  # several lookups answered by one statement


def _reference(role: str, doc: str, run_id: str, others: list[str]) -> bytes:
    return json_bytes(mask_record(role, {**json.loads(doc), "run_id": run_id,
                                         "other_person_ids": others}))


def test_plain_body_equals_the_parsing_path_on_every_document(amended: Path) -> None:  # noqa: F811
    con = connect_attached(amended, read_only=True)
    try:
        rows = con.execute("SELECT doc, run_id, other_person_ids FROM master.person_doc"
                           ).fetchall()
    finally:
        con.close()
    plain = 0
    for doc, run_id, others in rows:
        for role in ROLES:
            want = _reference(role, doc, run_id, list(others or []))
            pic = {**json.loads(doc), "run_id": run_id, "other_person_ids": list(others or [])}
            assert json_bytes(mask_in_place(role, pic)) == want
            got = fastpath.plain_body(role, doc, run_id, list(others or []))
            if got is not None:
                plain += 1
                assert got == want
    assert plain >= len(rows)  # most documents take the text path for three roles


BASE = ('{"person_id":"P1","golden":{"name":"张三丰","id_number":"420502199001011234",'
        '"phone":"13812341234"},"records_by_department":{"hrss":[{"source_key":'
        '"hrss:420502199001011234","score":0.99,"fields":{FIELDS}}]},"findings":[],'
        '"events":[]}')
TEXT_CASES = [
    # (case, fields JSON, takes the text path for the service role)
    ("plain", '{"note":"a,b"}', True),
    ("decimal with trailing zero", '{"amount":2350.00}', False),
    ("float as python writes it", '{"amount":2350.5,"rate":0.99}', True),
    ("minus zero", '{"n":-0}', False),
    ("exponent", '{"n":1E5}', False),
    ("escaped quote", '{"note":"a\\"b"}', False),
    ("not a phone field", '{"telephone":"13812341234"}', True),
    ("phone suffix, non-ASCII key", '{"家庭_phone":"13812341234"}', True),
    ("phone as a number", '{"mobile_phone":13812341234}', False),
    ("phone null", '{"next_of_kin_phone":null}', True),
    ("phone an object (lineage)", '{"phone":{"source":"s","source_key":"k:420502199001011234"}}',
     True),
    ("phone a list", '{"phone":["13812341234"],"x_phone":[{"phone":"13812341234"}]}', True),
    ("phone a boolean", '{"phone":true}', False),
    ("phone-like text in a value", '{"note":"x,phone:1"}', True),
    ("the route's own key", '{"other_person_ids":[]}', False),
]


@pytest.mark.parametrize("case, fields, text_path", TEXT_CASES, ids=[c[0] for c in TEXT_CASES])
def test_plain_body_cases(case: str, fields: str, text_path: bool) -> None:
    doc = BASE.replace("{FIELDS}", fields)
    json.loads(doc)  # valid JSON
    for role in ROLES:
        got = fastpath.plain_body(role, doc, "r1", ["P2"])
        if got is not None:
            assert got == _reference(role, doc, "r1", ["P2"]), (case, role)
        if role == "service":
            assert (got is not None) == text_path, case
        if role == "steward":
            assert got is None  # masks IDs and names: always the parsing path
    findings = doc.replace('"findings":[]', '"findings":[{"finding_id":"F1","status":"open"}]')
    assert fastpath.plain_body("service", findings, "r1", []) is None


QUERIES = [b"purpose=%E6%A0%B8%E6%9F%A5", b"purpose=a+b", b"purpose=", b"purpose=x",
           b"purpose=ab&purpose=cd", b"x=1&purpose=ab", b"purpose=ab&x=1", b"purpose=%ZZab",
           b"purpose=%E6%A0", b"purpose=+++", b"purpos%65=ab", b"purpose=" + b"y" * 200,
           b"purpose=" + b"y" * 201, b"purpose"]


@pytest.mark.parametrize("qs", QUERIES)
def test_purpose_as_the_route_reads_it(qs: bytes) -> None:
    """The purpose the fast path takes is the route's (Starlette's parse_qsl, the last value,
    2-200 characters not all blank); None (left to the route) where they could differ."""
    from urllib.parse import parse_qsl

    got = fastpath._purpose(qs)
    values = [v for k, v in parse_qsl(qs.decode("latin-1"), keep_blank_values=True)
              if k == "purpose"]
    valid = bool(values) and 2 <= len(values[-1]) <= 200 and values[-1].strip() != ""
    if got is not None:
        assert valid and got == values[-1]
    if valid and len(values) == 1 and qs.startswith(b"purpose="):
        assert got == values[-1]
