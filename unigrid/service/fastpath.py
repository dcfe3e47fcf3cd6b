"""``GET /persons/{id_number}`` on a plain ASGI path, outside FastAPI's dependency machinery.

The lookup is the API's hot path (downstream systems ask it thousands of times a second). FastAPI
solves dependencies, validates parameters and builds a ``Request`` per call, which costs as much
CPU as the lookup itself. :class:`PersonLookup` is an ASGI middleware in front of the FastAPI
application that serves the **successful** lookup of a caller whose token is in the 30 s cache,
with the same checks, the same access-log entry (fsynced before the response), the same masking
and the same bytes as the FastAPI route. Everything else - no or unknown token, a role that may
not look up persons, a missing or invalid purpose or key, an unknown person, a master without
the document table or no master at all - goes on to the FastAPI route unchanged, so every error
(401 / 403 / 404 / 422 / 503), its body and its access-log entry stay what that route produces,
and the route still documents the endpoint in ``/openapi.json``.

Lookups by ID number go through :class:`DocBatcher`: the lookups that arrive in one turn of the
event loop are answered by one ``master.person_doc`` query (``id_key IN (...)``), so DuckDB's
fixed cost per statement (~0.3 ms of CPU, more than a primary-key probe) is shared by the
concurrent requests.
"""

from __future__ import annotations

import asyncio
import json
import re
from functools import lru_cache
from typing import Any, Awaitable, Callable, MutableMapping
from urllib.parse import parse_qsl, unquote

from unigrid.service import queries as q
from unigrid.service.api import _open_findings, json_bytes
from unigrid.service.policy import allowed, mask_in_place, masked_kinds
from warehouse.masking import field_kind, mask_phone
from warehouse.queries import NoMasterYet

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PREFIX = "/persons/"
KEY_RE = re.compile(r"[0-9]{17}[0-9Xx]|[0-9]{15}|P[0-9A-F]{12}")
"""The route's key pattern (``api.ID_OR_PERSON``), matched whole."""
PURPOSE_MIN, PURPOSE_MAX = 2, 200
"""The route's limits on ``purpose`` (``api.PURPOSE``: 2-200 characters, not all blank)."""
NOT_BLANK = re.compile(r"\S")
MAX_BATCH = 256
"""Most ID numbers in one batched query."""

JSON_HEADERS = [(b"content-type", b"application/json")]

_NUMBER = re.compile(r"[:,\[](-?[0-9][0-9.eE+-]*)(?=[,}\]])")
"""A number token of compact JSON (after ``:``, ``,`` or ``[``; before ``,``, ``}`` or ``]``);
a string's text may match too, which only sends the document down the parsing path."""
PHONE_KEY_END = 'phone":'


def _numbers_kept(doc: str) -> bool:
    """True if Python renders every number of ``doc`` as written (``2350.00`` it would render
    ``2350.0``, ``-0`` as ``0``, ``1E5`` as ``100000.0``)."""
    for tok in _NUMBER.findall(doc):
        if "." in tok or "e" in tok or "E" in tok:
            try:
                if repr(float(tok)) != tok:
                    return False
            except ValueError:
                return False
        elif tok.startswith("-0"):
            return False
    return True


def _mask_phones(doc: str) -> str | None:
    """``doc`` with the value of every phone field masked (``warehouse.masking.mask_phone``),
    or None if a key ending in ``phone`` has a number or boolean value. An object or list value
    (the lineage's ``"phone":{"source":...}``) is left as it is: ``mask_record`` walks into it,
    and so does this scan, which looks at every key of the text. ``doc`` has no backslash, so
    every ``"`` delimits a string and ``phone":`` always ends a key."""
    pos = doc.find(PHONE_KEY_END)
    if pos < 0:
        return doc
    parts: list[str] = []
    last = 0
    while pos >= 0:
        key = doc[doc.rfind('"', 0, pos) + 1:pos + 5]
        value = pos + len(PHONE_KEY_END)
        if doc.startswith('"', value):
            end = doc.index('"', value + 1)
            if field_kind(key) == "phone":
                parts += (doc[last:value + 1], mask_phone(doc[value + 1:end]))
                last = end
        elif not doc.startswith(("null", "{", "["), value):
            return None  # a number or boolean: mask_record would mask its text
        pos = doc.find(PHONE_KEY_END, value)
    parts.append(doc[last:])
    return "".join(parts)


def plain_body(role: str, doc: str, run_id: str, others: list[str]) -> bytes | None:
    """The response body built on the stored document text, without parsing it: the bytes
    ``json_bytes(mask_record(role, {**json.loads(doc), "run_id": run_id,
    "other_person_ids": others}))`` gives, or None when the text needs that path: a role that
    sees less than ID numbers and names (stewards), open findings to lay reviews over, a
    backslash (escapes), a number Python would render differently, a top-level key the route
    sets, or a phone field whose value is a number or boolean. Phone fields are masked in the
    text by the same rule; every key ending in ``phone`` is looked at. Equal to the parsing path
    on every published document (tested)."""
    kinds = masked_kinds(role)
    if not kinds <= {"phone"} or "\\" in doc or not doc.endswith("}"):
        return None
    if doc.count('"findings":') != 1 or '"findings":[]' not in doc:
        return None
    if '"run_id":' in doc or '"other_person_ids":' in doc or "NaN" in doc or "Infinity" in doc:
        return None
    if not _numbers_kept(doc):
        return None
    if "phone" in kinds:
        masked = _mask_phones(doc)
        if masked is None:
            return None
        doc = masked
    return b"".join((doc[:-1].encode(), b',"run_id":', json_bytes(run_id),
                     b',"other_person_ids":', json_bytes(others), b"}"))


class DocBatcher:
    """Person documents by ID number, one query per batch of concurrent lookups.

    A lookup queues its key and awaits a future. When no query of this event loop is running,
    the first key schedules one for the next turn of the loop, by which time every request
    that arrived in this turn has queued its key. With ``threaded`` the query runs in a
    thread of its own (DuckDB releases the GIL): the event loop keeps parsing and answering
    requests meanwhile, and the keys that arrive during a query form the next batch (bigger
    batches: DuckDB's fixed cost per statement is shared by more lookups). Without it the
    query runs on the event loop. One batch per event loop at a time."""

    def __init__(self, pool: Any, threaded: bool = True) -> None:
        self.pool = pool
        self.threaded = threaded
        self._pending: dict[asyncio.AbstractEventLoop, dict[str, list[asyncio.Future]]] = {}
        self._busy: set[asyncio.AbstractEventLoop] = set()
        self._executor: Any = None

    async def get(self, id_number: str) -> q.DocRow | None:
        """The stored document row of an (upper-case) ID number, None if unknown. Raises what
        the query raises (``duckdb.CatalogException`` without the table, ``NoMasterYet``)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = {}
            if loop not in self._busy:
                loop.call_soon(self._start, loop)
        pending.setdefault(id_number, []).append(fut)
        return await fut

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Take the pending keys and query them (in the thread, or here)."""
        pending = self._pending.pop(loop, None)
        if not pending:
            return
        if not self.threaded:
            self._answer(pending, self._query(list(pending)))
            return
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="person-doc")
        self._busy.add(loop)
        job = loop.run_in_executor(self._executor, self._query, list(pending))

        def done(j: asyncio.Future) -> None:
            self._busy.discard(loop)
            try:
                rows = j.result()
            except BaseException as exc:  # noqa: BLE001 - the thread itself failed
                rows = {k: exc for k in pending}
            self._answer(pending, rows)
            if self._pending.get(loop):  # keys queued while the query ran: the next batch
                self._start(loop)

        job.add_done_callback(done)

    def _query(self, keys: list[str]) -> dict[str, Any]:
        """Rows by key, or the exception of a failed part by key."""
        out: dict[str, Any] = {}
        for i in range(0, len(keys), MAX_BATCH):
            part = keys[i:i + MAX_BATCH]
            try:
                with self.pool.cursor() as cur:
                    out.update(q.person_docs(cur, part))
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting request
                out.update({k: exc for k in part})
        return out

    @staticmethod
    def _answer(pending: dict[str, list[asyncio.Future]], rows: dict[str, Any]) -> None:
        for k, futs in pending.items():
            row = rows.get(k)
            for f in futs:
                if f.done():
                    continue
                if isinstance(row, BaseException):
                    f.set_exception(row)
                else:
                    f.set_result(row)

    def close(self) -> None:
        """Stop the query thread."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)


@lru_cache(maxsize=1024)
def _purpose(query_string: bytes) -> str | None:
    """The one valid ``purpose`` of a query string, else None (the route answers 422).
    Cached: a downstream system sends the same few purposes again and again."""
    if b"purpose=" not in query_string:
        return None
    qs = query_string.decode("latin-1")  # as Starlette's QueryParams
    if qs.startswith("purpose=") and "&" not in qs:  # the usual query: parse_qsl's result
        p = unquote(qs[len("purpose="):].replace("+", " "))
    else:
        got = [v for k, v in parse_qsl(qs, keep_blank_values=True) if k == "purpose"]
        if len(got) != 1:
            return None
        p = got[0]
    return p if PURPOSE_MIN <= len(p) <= PURPOSE_MAX and NOT_BLANK.search(p) else None


def _bearer(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The Bearer credentials of the first ``Authorization`` header (as ``HTTPBearer``)."""
    for k, v in headers:
        if k == b"authorization":
            scheme, _, cred = v.decode("latin-1").partition(" ")
            cred = cred.strip()
            return cred if scheme.lower() == "bearer" and cred else None
    return None


class PersonLookup:
    """ASGI middleware serving successful ``GET /persons/{id_number}`` lookups directly (see
    the module docstring); everything else goes to ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._batchers: dict[int, DocBatcher] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] == "GET"
                and scope["path"].startswith(PREFIX) and not scope.get("root_path")):
            body = await self.serve(scope)
            if body is not None:
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-length", str(len(body)).encode()),
                                        *JSON_HEADERS]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _batcher(self, pool: Any) -> DocBatcher:
        import os

        b = self._batchers.get(id(pool))
        if b is None or b.pool is not pool:
            b = self._batchers[id(pool)] = DocBatcher(
                pool, threaded=os.environ.get("UNIGRID_LOOKUP_THREAD", "1") != "0")
        return b

    async def serve(self, scope: Scope) -> bytes | None:
        """The response body of a successful lookup, or None to leave the request to the
        FastAPI route (nothing logged, nothing sent)."""
        from starlette.concurrency import run_in_threadpool

        key = scope["path"][len(PREFIX):]
        if not KEY_RE.fullmatch(key):
            return None
        purpose = _purpose(scope["query_string"])
        secret = _bearer(scope["headers"]) if purpose is not None else None
        if secret is None:
            return None
        s = scope["app"].state.svc
        p = s.cached_principal(secret, "api")
        if p is None or not allowed(p.role, "person"):
            return None
        try:
            if key[0] == "P":
                with s.pool.cursor() as cur:
                    got = q.person_doc(cur, key)  # the run id already in the document
                if got is None:
                    return None
                pid, doc, run_id, others = got[0], got[1], None, got[2]
            else:
                row = await self._batcher(s.pool).get(key.upper())
                if row is None:
                    return None
                pid, doc, run_id, others = row
        except (q.duckdb.CatalogException, NoMasterYet):
            return None
        if run_id is not None:
            body = plain_body(p.role, doc, run_id, others)
            if body is not None:
                await s.access.alog(p.username, p.role, "view_person", [pid], purpose)
                return body
        pic = json.loads(doc)
        if run_id is not None:
            pic["run_id"] = run_id  # last key, as the route's SQL appends it
        if pic["findings"]:
            pic["findings"] = await run_in_threadpool(_open_findings, s, pic["findings"])
        pic["other_person_ids"] = others
        await s.access.alog(p.username, p.role, "view_person", [pid], purpose)
        return json_bytes(mask_in_place(p.role, pic))
