"""SQL the service runs on the published master (through a pooled read-only cursor).

Every function takes a cursor from :class:`unigrid.service.store.MasterPool` and returns plain
JSON-ready Python values (dates as ISO text, decimals as floats). No masking here: that is
:mod:`unigrid.service.policy`'s job, on the way out.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb

from warehouse.schema import GOLDEN_FIELDS

PERSON_ID_RE = re.compile(r"^P[0-9A-F]{12}$")
ID_NUMBER_RE = re.compile(r"^([0-9]{17}[0-9Xx]|[0-9]{15})$")


def jsonable(v: Any) -> Any:
    """A DuckDB value as JSON-ready Python (dates ISO, decimals float)."""
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    return v


def rows(cur: duckdb.DuckDBPyConnection, sql: str, params: list | dict | None = None,
         json_cols: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Run ``sql`` and return dict rows; ``json_cols`` are parsed from JSON text."""
    res = cur.execute(sql, params or [])
    names = [d[0] for d in res.description]
    out = []
    for r in res.fetchall():
        d = {k: jsonable(v) for k, v in zip(names, r)}
        for c in json_cols:
            if isinstance(d.get(c), str):
                try:
                    d[c] = json.loads(d[c])
                except ValueError:
                    pass
        out.append(d)
    return out


def find_person_ids(cur: duckdb.DuckDBPyConnection, key: str) -> list[str]:
    """Person ids for an ID number (golden record; several if shared) or a person id (merges
    followed)."""
    if PERSON_ID_RE.match(key):
        from warehouse.queries import resolve_person_id
        pid = resolve_person_id(cur, key)
        return [pid] if pid else []
    return [r[0] for r in cur.execute(
        "SELECT person_id FROM master.person WHERE id_number = ? ORDER BY person_id",
        [key.upper()]).fetchall()]


DOC = """left(doc, -1) || ',"run_id":' || CAST(to_json(run_id) AS VARCHAR) || '}'"""
"""The stored document with the publishing run's id added (kept out of the stored text so an
unchanged person's document stays unchanged from one publish to the next)."""


def person_doc(cur: duckdb.DuckDBPyConnection, key: str) -> tuple[str, str, list[str]] | None:
    """(person id, JSON document, other person ids) of an ID number or a person id from
    ``master.person_doc`` (one point query by ID number; merges followed for a person id), or
    None if unknown. Raises ``duckdb.CatalogException`` on a master published before the table
    existed (callers fall back to :func:`person_picture`)."""
    if PERSON_ID_RE.match(key):
        from warehouse.queries import resolve_person_id
        pid = resolve_person_id(cur, key)
        if pid is None:
            return None
        got = cur.execute(f"SELECT {DOC} FROM master.person_doc WHERE id_key = ?",
                          [pid]).fetchone()
        if got is None:  # stored under the person's ID number
            idn = cur.execute("SELECT id_number FROM master.person WHERE person_id = ?",
                              [pid]).fetchone()
            got = cur.execute(f"SELECT {DOC} FROM master.person_doc WHERE id_key = ? "
                              "AND person_id = ?", [idn[0] if idn else None, pid]).fetchone()
        return (pid, got[0], []) if got else None
    got = cur.execute(f"SELECT person_id, {DOC}, other_person_ids FROM master.person_doc "
                      "WHERE id_key = ?", [key.upper()]).fetchone()
    return (got[0], got[1], list(got[2] or [])) if got else None


DocRow = tuple[str, str, str, list[str]]
"""(person id, stored document JSON without the run id, publishing run id, other person ids)."""


def person_docs(cur: duckdb.DuckDBPyConnection, id_numbers: list[str]) -> dict[str, DocRow]:
    """The stored documents of several ID numbers (upper case) in one query, by ID number;
    unknown numbers are absent. One statement for a batch of concurrent lookups: DuckDB's fixed
    cost per statement (parse, plan, ~0.3 ms) is paid once, each key is one primary-key index
    probe. The caller adds ``run_id`` to the document (as :data:`DOC` does in SQL). Raises
    ``duckdb.CatalogException`` on a master published without the table."""
    if not id_numbers:
        return {}
    if len(id_numbers) == 1:
        where, params = "id_key = ?", id_numbers
    else:
        where, params = "id_key IN (" + ", ".join("?" * len(id_numbers)) + ")", id_numbers
    got = cur.execute("SELECT id_key, person_id, doc, run_id, other_person_ids "
                      f"FROM master.person_doc WHERE {where}", params).fetchall()
    return {r[0]: (r[1], r[2], r[3], list(r[4] or [])) for r in got}


def person_picture(cur: duckdb.DuckDBPyConnection, person_id: str) -> dict[str, Any] | None:
    """Golden record, source records by department, households, houses, findings of a person."""
    got = rows(cur, "SELECT * FROM master.person WHERE person_id = ?", [person_id])
    if not got:
        return None
    p = got[0]
    golden = {name: p.get(name) for name, *_ in GOLDEN_FIELDS}
    golden["is_deceased"] = p.get("is_deceased")
    golden["house_id"] = p.get("house_id")
    lineage = {name: {"source": p.get(f"{name}_source"), "source_key": p.get(f"{name}_source_key")}
               for name, *_ in GOLDEN_FIELDS if p.get(f"{name}_source")}
    recs = rows(cur, """
        SELECT l.department, l.source, l.source_key, l.kind, l.method, l.score, r.fields
        FROM master.person_link l
        LEFT JOIN (SELECT source, source_key, fields FROM master.source_record
                   WHERE person_id = $pid) r USING (source, source_key)
        WHERE l.person_id = $pid ORDER BY l.department, l.source, l.source_key""",
                {"pid": person_id},
                json_cols=("fields",))
    by_dept: dict[str, list[dict[str, Any]]] = {}
    for r in recs:
        by_dept.setdefault(r.pop("department") or "unknown", []).append(r)
    households = rows(cur, """
        SELECT h.household_no, h.person_id, p.name, h.relation_to_head, h.is_head, h.is_active,
               h.registry_status, h.registered_at, h.cancel_date, h.cancel_reason, h.house_id
        FROM master.household h LEFT JOIN master.person p USING (person_id)
        WHERE h.household_no IN (SELECT household_no FROM master.household WHERE person_id = ?)
        ORDER BY h.household_no, h.is_head DESC, h.person_id""", [person_id])
    members: dict[str, list[dict[str, Any]]] = {}
    for m in households:
        members.setdefault(m.pop("household_no"), []).append(m)
    houses = rows(cur, """
        SELECT ph.house_id, h.standard_address, h.grid_code, h.district, h.street, h.community,
               ph.relation, ph.is_current, ph.valid_from, ph.valid_to, ph.source, ph.source_key
        FROM master.person_house ph LEFT JOIN master.house h USING (house_id)
        WHERE ph.person_id = ?
        ORDER BY ph.is_current DESC, ph.valid_from DESC NULLS LAST, ph.house_id, ph.relation,
                 ph.source, ph.source_key""",
                  [person_id])
    findings = rows(cur, """
        SELECT finding_id, rule, status, months, amount_monthly, amount_total, first_seen_run,
               last_seen_run, evidence_hash, status_at FROM audit.finding WHERE person_id = ?
        ORDER BY rule, finding_id""", [person_id])
    events = rows(cur, """
        SELECT event_id, run_id, event, person_id, other_person_id, "at" FROM master.person_event
        WHERE (person_id = ? OR other_person_id = ?) AND event IN ('merge', 'split')
        ORDER BY "at" DESC NULLS LAST, event_id DESC LIMIT 50""", [person_id, person_id])
    return {"person_id": person_id, "n_records": p.get("n_records"), "sources": p.get("sources"),
            "run_id": p.get("run_id"), "golden": golden, "lineage": lineage,
            "records_by_department": by_dept,
            "households": [{"household_no": k, "members": v} for k, v in members.items()],
            "houses": houses, "findings": findings, "events": events}


def search_names(cur: duckdb.DuckDBPyConnection, py: str, pyf: str, compact: str | None,
                 birth_date: date | None, birth_year: int | None,
                 limit: int = 50) -> list[dict[str, Any]]:
    """Persons whose records' names sound like the query, born on the date / in the year.

    ``py`` / ``pyf``: the query's pinyin and folded pinyin (syllables space-separated);
    ``compact``: pinyin without spaces when the query was typed without them (a slower scan).
    """
    cond = ["n.name_py = $py", "n.name_pyf = $pyf"]
    params: dict[str, Any] = {"py": py, "pyf": pyf, "limit": limit}
    if compact:
        cond.append("replace(n.name_py, ' ', '') = $compact")
        params["compact"] = compact
    born = "TRUE"
    if birth_date is not None:
        born = "(coalesce(n.birth_date, p.birth_date) = $bd OR p.birth_date = $bd)"
        params["bd"] = birth_date
    elif birth_year is not None:
        born = "(year(coalesce(n.birth_date, p.birth_date)) = $by OR year(p.birth_date) = $by)"
        params["by"] = birth_year
    return rows(cur, f"""
        SELECT p.person_id, p.id_number, p.name, p.sex, p.birth_date, p.is_deceased,
               arg_min(n.name, CASE WHEN n.name_py = $py THEN 0 ELSE 1 END) AS matched_name,
               CASE WHEN bool_or(n.name_py = $py) THEN 'pinyin' ELSE 'fuzzy_pinyin' END AS match
        FROM master.person_name n JOIN master.person p USING (person_id)
        WHERE ({' OR '.join(cond)}) AND {born}
        GROUP BY ALL ORDER BY match DESC, p.person_id LIMIT $limit""", params)


def house_with_residents(cur: duckdb.DuckDBPyConnection, house_id: str) -> dict[str, Any] | None:
    """A house and the persons registered or living in it (current and past)."""
    got = rows(cur, "SELECT * FROM master.house WHERE house_id = ?", [house_id])
    if not got:
        return None
    house = got[0]
    house["residents"] = rows(cur, """
        SELECT ph.person_id, p.name, p.id_number, p.sex, p.birth_date, ph.relation,
               ph.is_current, ph.valid_from, ph.valid_to, ph.resident_type, ph.registry_status
        FROM master.person_house ph JOIN master.person p USING (person_id)
        WHERE ph.house_id = ? ORDER BY ph.is_current DESC, ph.relation, ph.person_id""",
                              [house_id])
    return house


def find_houses(cur: duckdb.DuckDBPyConnection, address: str, limit: int = 50
                ) -> list[dict[str, Any]]:
    """Houses whose standard address contains ``address``."""
    return rows(cur, """
        SELECT house_id, standard_address, district, street, community, grid_code,
               n_registered, n_actual FROM master.house
        WHERE contains(standard_address, ?) ORDER BY standard_address, house_id LIMIT ?""",
                [address, limit])


def findings(cur: duckdb.DuckDBPyConnection, rule: str | None = None,
             district: str | None = None, finding_id: str | None = None,
             limit: int = 100000, status: str | None = None) -> list[dict[str, Any]]:
    """Published findings with the person's district (statuses as published)."""
    where, params = ["TRUE"], []
    if rule:
        where.append("f.rule = ?")
        params.append(rule)
    if status:
        where.append("f.status = ?")
        params.append(status)
    if district:
        where.append("coalesce(g.district, h.district) = ?")
        params.append(district)
    if finding_id:
        where.append("f.finding_id = ?")
        params.append(finding_id)
    return rows(cur, f"""
        SELECT f.finding_id, f.rule, f.person_id, p.name, p.id_number,
               coalesce(g.district, h.district) AS district, f.subject_key, f.evidence,
               f.amount_monthly, f.amount_total, f.months, f.status, f.dismissed_reason,
               f.status_by, f.status_at, f.first_seen_run, f.last_seen_run, f.evidence_hash
        FROM audit.finding f LEFT JOIN master.person p USING (person_id)
        LEFT JOIN master.house h ON h.house_id = p.house_id
        LEFT JOIN master.grid g ON g.grid_code = h.grid_code
        WHERE {' AND '.join(where)} ORDER BY f.rule, f.finding_id LIMIT ?""",
                params + [limit], json_cols=("evidence",))


def review_queue(cur: duckdb.DuckDBPyConnection, department: str | None = None,
                 reason: str | None = None, queue_no: int | None = None) -> list[dict[str, Any]]:
    """The published review queue (optionally one department's, one reason's or one pair)."""
    where, params = ["TRUE"], []
    if department:
        where.append("(left_department = ? OR right_department = ?)")
        params += [department, department]
    if reason:
        where.append("reason = ?")
        params.append(reason)
    if queue_no is not None:
        where.append("queue_no = ?")
        params.append(queue_no)
    return rows(cur, f"SELECT * FROM master.review_queue WHERE {' AND '.join(where)} "
                     "ORDER BY queue_no", params, json_cols=("explanation",))


def source_records(cur: duckdb.DuckDBPyConnection, refs: list[tuple[str, str]]
                   ) -> dict[tuple[str, str], dict[str, Any]]:
    """(source, key) -> {kind, department, person_id, fields} for the given records."""
    out = {}
    for s, k in refs:
        got = rows(cur, "SELECT source, source_key, kind, department, person_id, fields FROM "
                        "master.source_record WHERE source = ? AND source_key = ?", [s, k],
                   json_cols=("fields",))
        if got:
            out[(s, k)] = got[0]
    return out


def latest_run_id(cur: duckdb.DuckDBPyConnection) -> str | None:
    """The newest published run id."""
    r = cur.execute("SELECT run_id FROM audit.run WHERE status = 'published' "
                    "ORDER BY finished_at DESC NULLS LAST LIMIT 1").fetchone()
    return r[0] if r else None
