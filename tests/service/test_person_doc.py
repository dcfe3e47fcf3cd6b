"""master.person_doc: the published document equals the per-part picture, for every person.

The reference is :func:`unigrid.service.queries.person_picture` (the eight queries the service
ran per lookup before the document existed). The factory master is amended with the awkward
cases first: an ID number shared by two persons, a person without an ID number, merges and
splits (timestamps with and without microseconds, more than the per-document limit), findings
with a status time, then the document table is rebuilt and compared key by key.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.service.factory import RUN_ID, make_master
from unigrid.service import queries as q
from unigrid.service.policy import ROLES, mask_record
from warehouse.connection import connect_attached
from warehouse.person_doc import EVENTS_PER_PERSON, build_person_doc

TIME_KEYS = ("at", "status_at")


def _instants(obj: Any) -> Any:
    """``obj`` with ISO timestamps (keys ``at``, ``status_at``) as aware datetimes."""
    if isinstance(obj, dict):
        return {k: (datetime.fromisoformat(v) if k in TIME_KEYS and isinstance(v, str)
                    else _instants(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_instants(x) for x in obj]
    return obj


@pytest.fixture(scope="module")
def amended(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the factory master with the awkward cases and the documents rebuilt."""
    s = make_master(tmp_path_factory.mktemp("doc") / "home")
    path = s.master_db.with_name("amended.duckdb")
    shutil.copy(s.master_db, path)
    con = connect_attached(path)
    try:
        con.execute("""UPDATE master.person SET id_number = (SELECT id_number FROM master.person
                       WHERE person_id = 'P000000000003') WHERE person_id = 'P000000000002'""")
        con.execute("UPDATE master.person SET id_number = NULL "
                    "WHERE person_id = 'P000000000004'")
        con.execute(f"""
            INSERT INTO master.person_event (event_id, run_id, event, person_id,
                                             other_person_id, "at")
            SELECT 'E' || lpad(CAST(i AS VARCHAR), 4, '0'), '{RUN_ID}',
                   CASE WHEN i % 2 = 0 THEN 'merge' ELSE 'split' END,
                   'P000000000005', 'P0000000000' || CASE WHEN i % 3 = 0 THEN '06' ELSE 'FF' END,
                   TIMESTAMPTZ '2026-11-20 02:14:09+08' + to_microseconds(i * 1000017)
            FROM range({EVENTS_PER_PERSON + 7}) t(i)""")
        con.execute("""INSERT INTO master.person_event (event_id, run_id, event, person_id,
                       other_person_id, "at") VALUES ('EC', '20261120', 'create',
                       'P000000000006', NULL, NULL), ('EN', '20261120', 'merge',
                       'P000000000007', 'P000000000005', NULL)""")
        con.execute("""UPDATE audit.finding SET status_at = TIMESTAMPTZ '2026-11-20 09:00:00+08'
                       WHERE person_id = 'P000000000001'""")
        con.execute("""INSERT INTO audit.finding (finding_id, rule, person_id, status,
                       amount_monthly, amount_total, months, status_at)
                       VALUES ('F2', 'deceased_pensioner', 'P000000000001', 'dismissed',
                               10.50, 21.00, 2, TIMESTAMPTZ '2026-11-20 09:00:00.25+00')""")
        con.execute("DELETE FROM master.person_doc")
        build_person_doc(con, RUN_ID)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return path


def _by_doc(cur, key: str) -> tuple[str, dict[str, Any], list[str]] | None:
    got = q.person_doc(cur, key)
    return None if got is None else (got[0], json.loads(got[1]), got[2])


def _by_parts(cur, key: str) -> tuple[str, dict[str, Any], list[str]] | None:
    ids = q.find_person_ids(cur, key)
    if not ids:
        return None
    return ids[0], q.person_picture(cur, ids[0]), ids[1:]


def test_every_person_by_id_number_and_by_person_id_equals_the_reference(amended) -> None:
    con = connect_attached(amended, read_only=True)
    try:
        people = con.execute("SELECT person_id, id_number FROM master.person").fetchall()
        keys = sorted({k for row in people for k in row if k} | {"P0000000000FF"})
        assert len(keys) >= 2 * len(people) - 2
        for key in keys:
            got, want = _by_doc(con, key), _by_parts(con, key)
            assert want is None or want[1] is not None
            assert _instants(got) == _instants(want), key
        n = con.execute("SELECT count(*), count(DISTINCT person_id) FROM master.person_doc"
                        ).fetchone()
        assert n == (len(people), len(people))
    finally:
        con.close()


@pytest.mark.parametrize("key, person, others, n_events, n_findings", [
    ("P000000000002", "P000000000002", [], 0, 0),       # first holder of a shared number
    ("P000000000003", "P000000000003", [], 0, 0),       # second holder (keyed by person id)
    ("P000000000004", "P000000000004", [], 0, 0),       # no ID number
    ("P000000000005", "P000000000005", [], EVENTS_PER_PERSON, 0),
    ("P000000000006", "P000000000006", [], 19, 0),      # other side of merges / splits
    ("P000000000001", "P000000000001", [], 0, 2),
])
def test_awkward_cases(amended, key, person, others, n_events, n_findings) -> None:
    con = connect_attached(amended, read_only=True)
    try:
        pid, doc, other = _by_doc(con, key)
        assert (pid, doc["person_id"], other) == (person, person, others)
        assert len(doc["events"]) == n_events
        assert len(doc["findings"]) == n_findings
        ats = [e["at"] for e in doc["events"]]
        assert ats == sorted(ats, reverse=True)
        if key == "P000000000003":  # by number: the first holder, the second listed
            idn = doc["golden"]["id_number"]
            pid2, doc2, other2 = _by_doc(con, idn)
            assert (pid2, doc2["person_id"], other2) == ("P000000000002", "P000000000002",
                                                         ["P000000000003"])
        assert all(s in (None, "") or s.endswith("+00:00")
                   for f in doc["findings"] for s in [f["status_at"]])
    finally:
        con.close()


def test_unknown_keys_are_none(amended) -> None:
    con = connect_attached(amended, read_only=True)
    try:
        assert q.person_doc(con, "110101199001011234") is None
        assert q.person_doc(con, "P0000000ABCDE") is None
    finally:
        con.close()


@pytest.mark.parametrize("role", ROLES)
def test_masking_changes_every_document_but_the_admins(amended, role) -> None:
    con = connect_attached(amended, read_only=True)
    try:
        docs = [json.loads(d) for (d,) in con.execute("SELECT doc FROM master.person_doc")
                .fetchall()]
    finally:
        con.close()
    changed = 0
    for doc in docs:
        doc["other_person_ids"] = ["P000000000003"]
        want = mask_record(role, doc)
        changed += want != doc
    assert (changed > 0) == (role != "admin")


@pytest.mark.parametrize("slice_persons", [1, 2, 3, 5])
def test_a_build_in_slices_equals_one_build(amended, tmp_path, slice_persons) -> None:
    """The full build renders documents a slice of persons at a time (bounded memory); any
    slicing gives the same table, shared ID numbers and households across slices included."""
    import shutil

    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(amended, copy)
    con = connect_attached(copy)
    try:
        want = con.execute("SELECT * FROM master.person_doc ORDER BY id_key").fetchall()
        assert len(want) > slice_persons
        con.execute("DELETE FROM master.person_doc")
        build_person_doc(con, RUN_ID, slice_persons=slice_persons)
        assert con.execute("SELECT * FROM master.person_doc ORDER BY id_key").fetchall() == want
    finally:
        con.close()
