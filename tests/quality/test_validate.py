"""validate_source: staged and quarantine rows, every reason, soft flags, duplicates, empty
sources, garbage dates, idempotence, incremental runs, masking, reconciliation."""

from __future__ import annotations

import duckdb
import pytest

from quality.validate import ReconcileError, ValidationError, reconcile, validate_source
from tests.quality.conftest import bad_check, land_raw, make_contract, make_id, person_row

RUN = "20261120"


def _quarantine(con: duckdb.DuckDBPyConnection, source: str = "test_people") -> dict:
    rows = con.execute("SELECT row_no, source_key, reasons, raw FROM quarantine.row "
                       "WHERE source = ? ORDER BY row_no", [source]).fetchall()
    return {r[0]: {"key": r[1], "reasons": [(x["rule"], x["column"], x["value"]) for x in r[2]],
                   "raw": r[3]} for r in rows}


def _staged(con: duckdb.DuckDBPyConnection, source: str = "test_people") -> dict:
    rows = con.execute(f'SELECT _source_key, _flags, _run_id FROM staged."{source}"').fetchall()
    return {k: {"flags": f, "run": r} for k, f, r in rows}


def test_row_with_no_key_and_garbage_date_gets_both_reasons(con: duckdb.DuckDBPyConnection) -> None:
    c = make_contract()
    land_raw(con, c.name, [person_row("K1"), person_row(None, birth="not a date", name=None)])
    res = validate_source(con, c, RUN)
    q = _quarantine(con)
    assert list(q) == [2]
    assert q[2]["reasons"] == [("key_missing", "编号", None), ("required_missing", "姓名", None),
                               ("unparseable", "出生日期", "not a date")]
    assert '"出生日期":"not a date"' in q[2]["raw"]
    assert (res.rows_read, res.rows_staged, res.rows_quarantined) == (2, 1, 1)
    assert res.reconcile_ok and res.status == "ok"


SOFT_CASES = [
    (person_row("K01", id_number=bad_check(make_id())), "id_bad_check"),
    (person_row("K02", id_number="420502900101123"), "id_legacy15"),
    (person_row("K03", id_number="4.20502E+17"), "id_lost_digits"),
    (person_row("K04", id_number="12345"), "id_bad_length"),
    (person_row("K05", id_number="不详"), "id_bad_chars"),
    (person_row("K06", id_number=make_id(birth="19901301")), "id_bad_date"),
    (person_row("K07", id_number=make_id(region="000000")), "id_region_unknown"),
    (person_row("K08", birth="1880-05-01", id_number=make_id(birth="18800501")),
     "birth_date_implausible"),
    (person_row("K09", birth="2030-01-01", id_number=make_id(birth="20300101")),
     "birth_date_implausible"),
    (person_row("K10", birth="1990-01-02", id_number=make_id(birth="19900101")),
     "birth_date_mismatch_id"),
    (person_row("K11", sex="2", id_number=make_id(seq="123")), "sex_mismatch_id"),
    (person_row("K12", sex="9"), "sex_unparseable"),
    (person_row("K13", death="1980-01-01"), "death_before_birth"),
    (person_row("K14", death="garbage"), "death_date_unparseable"),
    (person_row("K15", amount="about 100"), "pension_monthly_amount_unparseable"),
    (person_row("K16", size="2.5"), "household_size_unparseable"),
]


@pytest.fixture(scope="module")
def soft_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, object]:
    """One validation of a row per soft case (plus a clean row): staged flags by key, result."""
    from warehouse.connection import connect_work
    con = connect_work(tmp_path_factory.mktemp("soft") / "work.duckdb")
    c = make_contract()
    land_raw(con, c.name, [person_row("K00")] + [r for r, _ in SOFT_CASES])
    res = validate_source(con, c, RUN)
    staged = _staged(con)
    con.close()
    return staged, res


@pytest.mark.parametrize("row,flag", SOFT_CASES, ids=[f for _, f in SOFT_CASES])
def test_soft_findings_keep_the_row_and_flag_it(soft_run: tuple[dict, object], row: dict,
                                                flag: str) -> None:
    staged, res = soft_run
    assert res.rows_quarantined == 0 and res.rows_staged == len(SOFT_CASES) + 1
    assert flag in staged[row["编号"]]["flags"]
    assert staged["K00"]["flags"] == []
    assert res.flag_counts[flag] >= 1


def test_clean_row_has_no_flags_and_typed_fields(con: duckdb.DuckDBPyConnection) -> None:
    c = make_contract()
    land_raw(con, c.name, [person_row("K", sex="1", amount="1,234.50", size="3",
                                      death="2020-02-29")])
    validate_source(con, c, RUN)
    row = con.execute('SELECT sex, birth_date, death_date, pension_monthly_amount, household_size, '
                      '_flags, typeof(birth_date), typeof(pension_monthly_amount), '
                      'typeof(household_size), typeof(_flags) FROM staged.test_people').fetchone()
    assert row[0] == "男" and str(row[1]) == "1990-01-01" and str(row[2]) == "2020-02-29"
    assert float(row[3]) == 1234.5 and row[4] == 3 and row[5] == []
    assert row[6:] == ("DATE", "DECIMAL(18,2)", "BIGINT", "VARCHAR[]")


GARBAGE = ["2023-02-30", "abc", "0000-00-00", "2023年13月1日", "19/19/2019", "N/A", "2023-1-1-1"]


@pytest.fixture(scope="module")
def garbage_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, object]:
    from warehouse.connection import connect_work
    con = connect_work(tmp_path_factory.mktemp("garbage") / "work.duckdb")
    c = make_contract()
    land_raw(con, c.name, [person_row("K0")] + [person_row(f"K{i}", birth=t)
                                               for i, t in enumerate(GARBAGE, start=1)])
    res = validate_source(con, c, RUN)
    q = _quarantine(con)
    con.close()
    return q, res


@pytest.mark.parametrize("i,text", list(enumerate(GARBAGE, start=1)))
def test_garbage_required_date_is_quarantined(garbage_run: tuple[dict, object], i: int,
                                              text: str) -> None:
    q, res = garbage_run
    assert q[i + 1]["reasons"] == [("unparseable", "出生日期", text)]
    assert res.rows_staged == 1
    top = res.top_reasons[0]
    assert (top["rule"], top["column"], top["rows"]) == ("unparseable", "出生日期", len(GARBAGE))
    assert [e["row_no"] for e in top["examples"]] == list(range(2, 2 + len(top["examples"])))


@pytest.mark.parametrize("text", ["", "   ", None])
def test_empty_required_date_is_missing_not_unparseable(con: duckdb.DuckDBPyConnection,
                                                        text: str | None) -> None:
    c = make_contract()
    land_raw(con, c.name, [person_row("K2", birth=text)])
    validate_source(con, c, RUN)
    assert _quarantine(con)[1]["reasons"] == [("required_missing", "出生日期", None)]


def test_duplicate_keys_keep_the_first(con: duckdb.DuckDBPyConnection) -> None:
    c = make_contract()
    land_raw(con, c.name, [person_row("K1", name="甲"), person_row("K2"),
                           person_row("K1", name="乙"), person_row("K1", name="丙")])
    res = validate_source(con, c, RUN)
    q = _quarantine(con)
    assert sorted(q) == [3, 4]
    assert all(v["reasons"] == [("duplicate_key", "编号", "K1")] for v in q.values())
    assert con.execute("SELECT name FROM staged.test_people WHERE _source_key = 'K1'").fetchall() \
        == [("甲",)]
    assert (res.rows_staged, res.rows_quarantined) == (2, 2)


def test_duplicate_marker_of_the_connectors_wins(con: duckdb.DuckDBPyConnection) -> None:
    """In an incremental run the key's first row may be unchanged (not landed): trust _dup_key."""
    c = make_contract()
    land_raw(con, c.name, [person_row("K1")])
    con.execute("ALTER TABLE raw.test_people ADD COLUMN _dup_key INTEGER DEFAULT 1")
    res = validate_source(con, c, RUN)
    assert res.rows_quarantined == 1
    assert _quarantine(con)[1]["reasons"][0][0] == "duplicate_key"


def test_empty_source_reconciles_with_a_message(con: duckdb.DuckDBPyConnection) -> None:
    c = make_contract()
    land_raw(con, c.name, [])
    res = validate_source(con, c, RUN)
    assert (res.rows_read, res.rows_staged, res.rows_quarantined, res.reconcile_ok) == (0, 0, 0, True)
    assert any("no rows" in m for m in res.messages)
    assert con.execute("SELECT ok FROM meta.reconcile").fetchall() == [(True,)]


def test_missing_raw_table_is_a_clear_error(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ValidationError, match="raw.test_people does not exist"):
        validate_source(con, make_contract(), RUN)


def test_missing_source_column_is_treated_as_empty_with_a_warning(
        con: duckdb.DuckDBPyConnection) -> None:
    c = make_contract()
    cols = [k for k in person_row() if k != "月金额"]
    land_raw(con, c.name, [person_row("K1")], columns=cols)
    res = validate_source(con, c, RUN)
    assert res.rows_staged == 1 and any("月金额" in m for m in res.messages)


def test_rerun_is_idempotent(con: duckdb.DuckDBPyConnection) -> None:
    c = make_contract()
    land_raw(con, c.name, [person_row("K1"), person_row(None), person_row("K3", sex="9")])
    first = validate_source(con, c, RUN)
    before = (_staged(con), _quarantine(con))
    second = validate_source(con, c, RUN)
    assert (_staged(con), _quarantine(con)) == before
    assert first.counts() == second.counts()
    assert con.execute("SELECT count(*) FROM meta.reconcile").fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM meta.expectation_result").fetchone()[0] \
        == len(second.expectations)


def test_incremental_run_replaces_changed_keys_and_skips_unchanged(
        con: duckdb.DuckDBPyConnection) -> None:
    c = make_contract()
    land_raw(con, c.name, [person_row("K1"), person_row("K2"), person_row("K3")], run_id="20261119")
    validate_source(con, c, "20261119")
    land_raw(con, c.name, [person_row("K1"), person_row("K2", name="李四"),
                           person_row("K3", birth="garbage")], run_id=RUN,
             change=["unchanged", "changed", "changed"])
    res = validate_source(con, c, RUN)
    assert (res.rows_read, res.rows_unchanged, res.rows_staged, res.rows_quarantined) == (2, 1, 1, 1)
    staged = _staged(con)
    assert {k: v["run"] for k, v in staged.items()} == {"K1": "20261119", "K2": RUN}
    assert con.execute("SELECT name FROM staged.test_people WHERE _source_key='K2'").fetchone() \
        == ("李四",)


def test_disappeared_keys_leave_staged(con: duckdb.DuckDBPyConnection) -> None:
    c = make_contract()
    land_raw(con, c.name, [person_row("K1"), person_row("K2")], run_id="20261119")
    validate_source(con, c, "20261119")
    land_raw(con, c.name, [], run_id=RUN)
    con.execute("CREATE TABLE meta.disappeared (run_id VARCHAR, source VARCHAR, source_key VARCHAR,"
                " last_row_hash VARCHAR, last_changed_run VARCHAR)")
    con.execute("INSERT INTO meta.disappeared VALUES (?, 'test_people', 'K2', 'h', '20261119')", [RUN])
    res = validate_source(con, c, RUN)
    assert res.rows_removed == 1 and set(_staged(con)) == {"K1"}


def test_reasons_mask_personal_values(con: duckdb.DuckDBPyConnection) -> None:
    c = make_contract(expectations=[
        {"field": "id_number", "rule": "id_number", "severity": "hard"},
        {"field": "name", "rule": "regex", "pattern": "^[a-z]+$", "severity": "hard"}])
    bad = bad_check(make_id())
    land_raw(con, c.name, [person_row("K1", id_number=bad, name="张三丰")])
    validate_source(con, c, RUN)
    reasons = _quarantine(con)[1]["reasons"]
    assert ("id_number", "身份证号", bad[:6] + "********" + bad[-4:]) in reasons
    assert ("regex", "姓名", "张*丰") in reasons
    text = repr(reasons)
    assert bad not in text and "张三丰" not in text


def test_reconcile_records_a_mismatch(con: duckdb.DuckDBPyConnection) -> None:
    c = make_contract()
    land_raw(con, c.name, [person_row("K1")])
    validate_source(con, c, RUN)
    staged, quarantined, ok = reconcile(con, c.name, RUN, rows_read=2)
    assert (staged, quarantined, ok) == (1, 0, False)
    assert con.execute("SELECT rows_read, ok FROM meta.reconcile").fetchall() == [(2, False)]


def test_lost_row_fails_loudly(con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch,
                               caplog: pytest.LogCaptureFixture) -> None:
    import quality.validate as v
    real = v.write_results

    def lossy(con, contract, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = real(con, contract, *args, **kwargs)
        con.execute("DELETE FROM staged.test_people WHERE _source_key = 'K2'")
        return out

    monkeypatch.setattr(v, "write_results", lossy)
    c = make_contract()
    land_raw(con, c.name, [person_row("K1"), person_row("K2")])
    with pytest.raises(ReconcileError, match="read 2 != staged 1 \\+ quarantined 0") as exc:
        validate_source(con, c, RUN)
    assert exc.value.result is not None and exc.value.result.status == "mismatch"
    assert "RECONCILE FAILED" in caplog.text


def test_expectation_results_are_recorded(con: duckdb.DuckDBPyConnection) -> None:
    c = make_contract()
    land_raw(con, c.name, [person_row("K1"), person_row("K2", sex="9")])
    res = validate_source(con, c, RUN)
    sex = next(o for o in res.expectations if o.rule == "sex_unparseable")
    assert (sex.element_count, sex.unexpected_count, sex.success) == (2, 1, False)
    assert con.execute("SELECT unexpected_count FROM meta.expectation_result "
                       "WHERE rule = 'sex_unparseable'").fetchone() == (1,)


def test_chunks_give_the_same_result(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Small chunks (2 rows) write exactly what one batch writes; duplicates across chunks too."""
    from warehouse.connection import connect_work
    rows = [person_row("K1"), person_row(None, birth="x"), person_row("K2", sex="9"),
            person_row("K1"), person_row("K3", birth="bad"), person_row("K4"), person_row("K2")]
    out = []
    for chunk in (2, 1000):
        con = connect_work(tmp_path / f"c{chunk}.duckdb")
        c = make_contract()
        land_raw(con, c.name, rows)
        con.execute("ALTER TABLE raw.test_people DROP COLUMN _change")  # also the no-marker path
        res = validate_source(con, c, RUN, chunk_rows=chunk)
        staged = con.execute("SELECT * EXCLUDE (_validated_at) FROM staged.test_people "
                             "ORDER BY _row_no").fetchall()
        quarantine = con.execute("SELECT row_no, source_key, raw, reasons FROM quarantine.row "
                                 "ORDER BY row_no").fetchall()
        exp = [(o.element_count, o.unexpected_count, o.success) for o in res.expectations]
        out.append((staged, quarantine, exp, res.flag_counts, res.top_reasons, res.counts()))
        con.close()
    assert out[0] == out[1]
    assert out[0][5]["quarantined"] == 4  # no key, bad date, two later duplicates


def test_failure_midway_rolls_back_to_the_previous_state(con: duckdb.DuckDBPyConnection,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import quality.validate as v
    c = make_contract()
    land_raw(con, c.name, [person_row("K1"), person_row("K2"), person_row(None)])
    validate_source(con, c, RUN)
    before = (_staged(con), _quarantine(con))
    real, calls = v.run_expectations, []

    def broken_second_chunk(frame, spec, *rest):  # type: ignore[no-untyped-def]
        outcomes, failing = real(frame, spec, *rest)
        calls.append(1)
        if len(calls) == 2:
            outcomes[0].error = "simulated engine failure"
        return outcomes, failing

    monkeypatch.setattr(v, "run_expectations", broken_second_chunk)
    with pytest.raises(ValidationError, match="simulated engine failure"):
        validate_source(con, c, RUN, chunk_rows=1)
    assert (_staged(con), _quarantine(con)) == before


def test_full_rebuild_restages_from_this_run_only(con: duckdb.DuckDBPyConnection) -> None:
    c = make_contract()
    land_raw(con, c.name, [person_row("K1"), person_row("K2")], run_id="20261119")
    validate_source(con, c, "20261119")
    land_raw(con, c.name, [person_row("K2"), person_row("K3")], run_id=RUN)
    res = validate_source(con, c, RUN, full_rebuild=True)
    assert {k: v["run"] for k, v in _staged(con).items()} == {"K2": RUN, "K3": RUN}
    assert res.rows_removed == 1 and res.reconcile_ok


DECLARED = [
    {"field": "household_size", "rule": "between", "min": 1, "max": 20, "severity": "soft"},
    {"field": "pension_monthly_amount", "rule": "between", "min": 0, "max": 5000, "severity": "hard"},
    {"field": "name", "rule": "in_set", "values": ["张三", "李四"], "severity": "soft"},
    {"field": "household_no", "rule": "regex", "pattern": "^K[0-9]+$", "severity": "hard"},
]


@pytest.mark.parametrize("row,hard,flag", [
    (person_row("K1"), None, None),
    (person_row("K2", size="0"), None, "household_size_between_failed"),
    (person_row("K3", size="25"), None, "household_size_between_failed"),
    (person_row("K4", size=None), None, None),
    (person_row("K5", amount="9999"), ("between", "月金额", "9999"), None),
    (person_row("K6", name="王五"), None, "name_in_set_failed"),
    (person_row("X7"), ("regex", "编号", "X7"), None),
])
def test_declared_expectations_quarantine_or_flag(con: duckdb.DuckDBPyConnection, row: dict,
                                                  hard: tuple | None, flag: str | None) -> None:
    c = make_contract(expectations=DECLARED)
    land_raw(con, c.name, [row])
    res = validate_source(con, c, RUN)
    if hard:
        assert _quarantine(con)[1]["reasons"] == [hard]
    else:
        assert res.rows_staged == 1
        flags = _staged(con)[row["编号"]]["flags"]
        assert (flag in flags) if flag else flags == []


@pytest.mark.parametrize("chunk, batches", [(1000, 1), (2, 4), (1, 7)])
def test_gx_runner_shares_context_and_suite_and_keeps_no_batch(
        con: duckdb.DuckDBPyConnection, chunk: int, batches: int) -> None:
    """Every chunk runs in the runner's one context against one suite; no data source (which
    would hold the chunk's frame) outlives its batch."""
    from quality.validate import GxRunner
    c = make_contract()
    land_raw(con, c.name, [person_row(f"K{i}") for i in range(7)])
    runner = GxRunner()
    validate_source(con, c, RUN, chunk_rows=chunk, runner=runner)
    ctx = runner._context()
    assert runner._batches == batches
    assert len(runner._suites) == 1
    assert list(ctx.data_sources.all()) == []
