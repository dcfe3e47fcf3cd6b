"""Property: over random mixes of good and bad rows, rows read = staged + quarantined, every row
lands exactly once, and no key is lost."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quality.validate import validate_source
from tests.quality.conftest import bad_check, land_raw, make_contract, make_id, person_row

KINDS = ["good", "no_key", "garbage_date", "no_name", "bad_id", "legacy_id", "bad_sex",
         "garbage_amount", "empty_date", "blank_key"]


def _row(kind: str, key: str) -> dict:
    return {
        "good": lambda: person_row(key),
        "no_key": lambda: person_row(None, birth="2001-13-01"),
        "blank_key": lambda: person_row("  "),
        "garbage_date": lambda: person_row(key, birth="1990-02-30"),
        "no_name": lambda: person_row(key, name=" "),
        "bad_id": lambda: person_row(key, id_number=bad_check(make_id())),
        "legacy_id": lambda: person_row(key, id_number="420502900101123"),
        "bad_sex": lambda: person_row(key, sex="X"),
        "garbage_amount": lambda: person_row(key, amount="¥¥"),
        "empty_date": lambda: person_row(key, birth=""),
    }[kind]()


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 6)), min_size=0, max_size=25))
def test_read_equals_staged_plus_quarantined(rows: list[tuple[str, int]]) -> None:
    con = duckdb.connect()
    for s in ("raw", "staged", "quarantine", "meta"):
        con.execute(f"CREATE SCHEMA {s}")
    c = make_contract()
    raw = [_row(kind, f"K{k}") for kind, k in rows]
    land_raw(con, c.name, raw)
    res = validate_source(con, c, "20261120")
    assert res.rows_read == len(raw) == res.rows_staged + res.rows_quarantined
    assert res.reconcile_ok
    staged_rows = {r[0] for r in con.execute("SELECT _row_no FROM staged.test_people").fetchall()}
    q_rows = {r[0] for r in con.execute("SELECT row_no FROM quarantine.row").fetchall()}
    assert staged_rows.isdisjoint(q_rows) and staged_rows | q_rows == set(range(1, len(raw) + 1))
    keys = {(r["编号"] or "").strip() for r in raw} - {""}
    staged_keys = {r[0] for r in con.execute("SELECT _source_key FROM staged.test_people").fetchall()}
    q_keys = {r[0] for r in con.execute("SELECT source_key FROM quarantine.row").fetchall()}
    assert keys <= staged_keys | q_keys
    assert len(staged_keys) == len(staged_rows)  # one staged row per key
    assert con.execute("SELECT count(*) FROM quarantine.row WHERE len(reasons) = 0").fetchone()[0] == 0
    con.close()
