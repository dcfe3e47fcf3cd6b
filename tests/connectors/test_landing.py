"""Landing into raw: lineage, idempotent re-runs, incremental change state, disappeared rows,
duplicates, full rebuild and the watermark."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from connectors.landing import LINEAGE_COLUMNS, current_rows_sql, missing_columns_message
from connectors.stage import extract_source
from warehouse.connection import work_db

from .conftest import PEOPLE_HEADER, ctx, people_rows, write_csv


def _land(settings, contract, day: int = 1, full: bool = False, **kw):
    with work_db(settings.work_db) as con:
        return extract_source(con, contract, settings, ctx(day, full), **kw)


def _q(settings, sql: str, params=None):
    with work_db(settings.work_db) as con:
        return con.execute(sql, params or []).fetchall()


def test_every_row_lands_as_text_with_lineage(settings, people) -> None:
    c = people()
    p = write_csv(settings.source_root / "people.csv", people_rows(5), "utf-8", PEOPLE_HEADER)
    row = _land(settings, c)
    assert row["status"] == "ok" and row["error"] is None
    assert (row["rows_read"], row["rows_landed"], row["rows_new"]) == (5, 5, 5)
    cols = _q(settings, "SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_schema='raw' AND table_name='people' ORDER BY ordinal_position")
    assert [c for c, _ in cols][:len(LINEAGE_COLUMNS)] == list(LINEAGE_COLUMNS)
    assert {t for c, t in cols if not c.startswith("_")} == {"VARCHAR"}
    got = _q(settings, 'SELECT _run_id, _source, _source_key, _row_no, _file, _change, _dup_key, '
                       '"身份证号", length(_row_hash), _extracted_at IS NOT NULL '
                       'FROM raw.people ORDER BY _row_no')
    assert got[0] == ("20261101", "people", "P0001", 1, str(p), "new", 0, "000000000000000001",
                      32, True)
    assert [r[3] for r in got] == [1, 2, 3, 4, 5]
    run = _q(settings, "SELECT status, rows_read, rows_new, error FROM meta.source_run")
    assert run == [("ok", 5, 5, None)]


def test_rerunning_a_run_id_is_idempotent(settings, people) -> None:
    c = people()
    write_csv(settings.source_root / "people.csv", people_rows(20), "utf-8", PEOPLE_HEADER)
    first = _land(settings, c)
    before = _q(settings, "SELECT _source_key, _row_hash, _change FROM raw.people ORDER BY 1")
    again = _land(settings, c)
    after = _q(settings, "SELECT _source_key, _row_hash, _change FROM raw.people ORDER BY 1")
    assert before == after and len(after) == 20
    assert {k: first[k] for k in first if k.startswith("rows_")} == \
        {k: again[k] for k in again if k.startswith("rows_")}
    assert _q(settings, "SELECT count(*) FROM meta.source_state_log") == [(20,)]
    assert _q(settings, "SELECT count(*) FROM meta.source_run") == [(1,)]


def test_incremental_run_lands_new_and_changed_and_records_disappeared(settings, people) -> None:
    c = people()
    rows = people_rows(10)
    write_csv(settings.source_root / "people.csv", rows, "utf-8", PEOPLE_HEADER)
    _land(settings, c, day=1)
    rows2 = [r[:] for r in rows if r[0] != "P0003"]           # P0003 removed
    rows2[0][1] = "改名"                                        # P0001 changed
    rows2.append(["P0011", "新人", "1", "2000-01-01"])          # P0011 new
    write_csv(settings.source_root / "people.csv", rows2, "utf-8", PEOPLE_HEADER)
    row = _land(settings, c, day=2)
    assert row["status"] == "ok"
    assert (row["rows_read"], row["rows_new"], row["rows_changed"], row["rows_unchanged"],
            row["rows_disappeared"], row["rows_landed"]) == (10, 1, 1, 8, 1, 2)
    landed = _q(settings, "SELECT _source_key, _change FROM raw.people WHERE _run_id='20261102' "
                          "ORDER BY 1")
    assert landed == [("P0001", "changed"), ("P0011", "new")]
    assert _q(settings, "SELECT source_key, last_changed_run FROM meta.disappeared") == \
        [("P0003", "20261101")]
    state = dict(_q(settings, "SELECT source_key, deleted_run FROM meta.source_state"))
    assert state["P0003"] == "20261102" and state["P0001"] is None
    # the current picture: 10 keys, P0001 with its new name, P0003 gone
    cur = dict(_q(settings, f'SELECT _source_key, "姓名" FROM ({current_rows_sql("people")})'))
    assert len(cur) == 10 and cur["P0001"] == "改名" and "P0003" not in cur
    # re-running day 2 gives the same again
    assert {k: v for k, v in _land(settings, c, day=2).items() if k.startswith("rows_")} == \
        {k: v for k, v in row.items() if k.startswith("rows_")}
    # the row comes back on day 3: new again
    write_csv(settings.source_root / "people.csv", rows2 + [rows[2]], "utf-8", PEOPLE_HEADER)
    day3 = _land(settings, c, day=3)
    assert (day3["rows_new"], day3["rows_changed"], day3["rows_disappeared"]) == (1, 0, 0)


def test_incremental_snapshot_never_marks_absent_rows_disappeared(settings, people) -> None:
    c = people(snapshot="incremental")
    write_csv(settings.source_root / "people.csv", people_rows(5), "utf-8", PEOPLE_HEADER)
    _land(settings, c, day=1)
    write_csv(settings.source_root / "people.csv", people_rows(2, start=6), "utf-8", PEOPLE_HEADER)
    row = _land(settings, c, day=2)
    assert (row["rows_new"], row["rows_disappeared"]) == (2, 0)


def test_full_rebuild_lands_everything_and_resets_the_state(settings, people) -> None:
    c = people()
    write_csv(settings.source_root / "people.csv", people_rows(6), "utf-8", PEOPLE_HEADER)
    _land(settings, c, day=1)
    write_csv(settings.source_root / "people.csv", people_rows(4), "utf-8", PEOPLE_HEADER)
    row = _land(settings, c, day=2, full=True)
    assert (row["rows_landed"], row["rows_new"], row["rows_unchanged"],
            row["rows_disappeared"]) == (4, 4, 0, 0)
    row3 = _land(settings, c, day=3)  # compared with the rebuild only: nothing changed
    assert (row3["rows_unchanged"], row3["rows_disappeared"], row3["rows_landed"]) == (4, 0, 0)


def test_duplicate_keys_land_both_rows_marked(settings, people) -> None:
    c = people()
    rows = people_rows(3) + [["P0002", "重复", "9", "1990-01-01"], ["P0002", "再重复", "8", ""]]
    write_csv(settings.source_root / "people.csv", rows, "utf-8", PEOPLE_HEADER)
    row = _land(settings, c)
    assert row["status"] == "ok" and row["rows_dup_key"] == 2 and row["rows_landed"] == 5
    assert "2 row(s) repeat a key of an earlier row" in row["warnings"]
    got = _q(settings, 'SELECT _row_no, _dup_key FROM raw.people WHERE _source_key = \'P0002\' '
                       'ORDER BY _row_no')
    assert got == [(2, 0), (4, 1), (5, 2)]


@pytest.mark.parametrize(("key_value", "expected"), [("  P1 ", "P1"), ("", None), ("   ", None)])
def test_source_key_is_trimmed_and_null_when_blank(settings, people, key_value, expected) -> None:
    c = people()
    write_csv(settings.source_root / "people.csv", [[key_value, "甲", "1", "x"]], "utf-8",
              PEOPLE_HEADER)
    _land(settings, c)
    assert _q(settings, "SELECT _source_key, _change FROM raw.people") == [(expected, "new")]


def test_composite_key_joined_with_bar(settings, people) -> None:
    c = people(key=["编号", "序号"])
    write_csv(settings.source_root / "people.csv", [["D1", "1", "甲", "1", "x"],
                                                    ["D1", "", "乙", "1", "x"]],
              "utf-8", ["编号", "序号", "姓名", "身份证号", "出生日期"])
    _land(settings, c)
    assert _q(settings, "SELECT _source_key FROM raw.people ORDER BY _row_no") == [("D1|1",), (None,)]


def test_row_hash_ignores_the_watermark_and_unmapped_columns(settings, people) -> None:
    c = people(watermark="更新时间")
    hdr = PEOPLE_HEADER + ["更新时间", "备注"]
    write_csv(settings.source_root / "people.csv",
              [r + ["2026-11-01 10:00:00", "a"] for r in people_rows(3)], "utf-8", hdr)
    r1 = _land(settings, c, day=1)
    assert r1["watermark_max"] == "2026-11-01 10:00:00"
    write_csv(settings.source_root / "people.csv",
              [r + ["2026-11-02 09:00:00", "b"] for r in people_rows(3)], "utf-8", hdr)
    r2 = _land(settings, c, day=2)
    assert (r2["rows_unchanged"], r2["rows_landed"]) == (3, 0)
    assert r2["watermark_since"] == "2026-11-01 10:00:00"
    assert r2["watermark_max"] == "2026-11-02 09:00:00"


def test_sqlite_watermark_is_pushed_into_the_query(settings, people) -> None:
    db = settings.source_root / "w.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE w (ztry_bh TEXT, xm TEXT, gxsj TEXT)")
    con.executemany("INSERT INTO w VALUES (?, ?, ?)",
                    [("Z1", "甲", "2026-11-01 08:00:00"), ("Z2", "乙", "2026-11-01 09:00:00")])
    con.commit()
    c = people(name="wanted", location={"url": "sqlite:///{source_root}/w.sqlite", "table": "w"},
               format={"type": "sql"}, key=["ztry_bh"], watermark="gxsj",
               columns=[{"column": "xm", "field": "name"},
                        {"column": "gxsj", "field": "source_updated_at"}])
    r1 = _land(settings, c, day=1)
    assert (r1["rows_read"], r1["rows_new"], r1["watermark_max"]) == (2, 2, "2026-11-01 09:00:00")
    con.execute("UPDATE w SET xm='甲改', gxsj='2026-11-02 08:00:00' WHERE ztry_bh='Z1'")
    con.execute("INSERT INTO w VALUES ('Z3', '丙', '2026-11-02 08:30:00')")
    con.execute("DELETE FROM w WHERE ztry_bh='Z2'")
    con.commit()
    con.close()
    r2 = _land(settings, c, day=2)
    # only the two newer rows were read; the key-only query still sees Z2 gone
    assert (r2["rows_read"], r2["rows_new"], r2["rows_changed"], r2["rows_disappeared"]) == \
        (2, 1, 1, 1)
    assert r2["watermark_since"] == "2026-11-01 09:00:00"
    assert _q(settings, "SELECT source_key FROM meta.disappeared") == [("Z2",)]
    assert _q(settings, "SELECT _row_no, _file FROM raw.wanted WHERE _run_id='20261102' "
                        "ORDER BY 1") == [(1, "w"), (2, "w")]


def test_failed_read_keeps_rows_before_but_does_not_advance_state(settings, people) -> None:
    c = people()
    good = people_rows(4)
    write_csv(settings.source_root / "people.csv", good, "utf-8", PEOPLE_HEADER)
    _land(settings, c, day=1)
    p = settings.source_root / "people.csv"
    body = ("\n".join(",".join(r) for r in [PEOPLE_HEADER] + good[:2]) + "\n").encode()
    p.write_bytes(body + b"P0003,\xff\xfe,1,x\n")
    row = _land(settings, c, day=2)
    assert row["status"] == "failed"
    assert f"people.csv:4 (byte offset {len(body) + 6}): bytes ff do not decode as utf-8" in row["error"]
    assert row["rows_read"] == 2 and row["rows_disappeared"] == 0  # no false disappearances
    assert _q(settings, "SELECT count(*) FROM meta.source_state_log WHERE run_id='20261102'") == [(0,)]
    assert _q(settings, "SELECT count(*) FROM meta.disappeared") == [(0,)]


def test_missing_column_message_lists_missing_unexpected_and_nearest(people) -> None:
    c = people()
    msg = missing_columns_message(c, ["编号", "姓名", "公民身份号码", "出生年月日", "备注"], "f.csv")
    assert msg == ("f.csv: missing column(s) 身份证号, 出生日期; unexpected column(s): 公民身份号码, "
                   "出生年月日, 备注; nearest: 身份证号 -> 公民身份号码?, 出生日期 -> 出生年月日?")
    assert missing_columns_message(c, ["编号", "姓名", "身份证号", "出生日期", "x"], "f") is None


def test_glob_lands_every_matching_file(settings, people) -> None:
    c = people(location={"path": "people_*.csv"})
    a = write_csv(settings.source_root / "people_a.csv", people_rows(2), "utf-8", PEOPLE_HEADER)
    b = write_csv(settings.source_root / "people_b.csv", people_rows(3, 3), "utf-8", PEOPLE_HEADER)
    row = _land(settings, c)
    assert row["rows_read"] == 5
    assert _q(settings, "SELECT _file, count(*) FROM raw.people GROUP BY 1 ORDER BY 1") == \
        [(str(a), 2), (str(b), 3)]


def test_integer_watermark_compares_as_a_number(settings, people) -> None:
    db = settings.source_root / "v.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE v (k TEXT, xm TEXT, ver INTEGER)")
    con.executemany("INSERT INTO v VALUES (?, ?, ?)", [("K1", "甲", 9), ("K2", "乙", 10)])
    con.commit()
    c = people(name="versioned", location={"url": "sqlite:///{source_root}/v.sqlite", "table": "v"},
               format={"type": "sql"}, key=["k"], watermark="ver", snapshot="incremental",
               columns=[{"column": "xm", "field": "name"}])
    assert _land(settings, c, day=1)["watermark_max"] == "10"  # not '9'
    con.execute("INSERT INTO v VALUES ('K3', '丙', 11)")
    con.commit()
    con.close()
    r2 = _land(settings, c, day=2)
    assert (r2["watermark_since"], r2["rows_read"], r2["rows_new"], r2["watermark_max"]) == \
        ("10", 1, 1, "11")


def _jsonl_people(path: Path, rows: list[dict]) -> None:
    import json
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


def _landed(settings) -> list[tuple]:
    return _q(settings, 'SELECT _run_id, _source_key, _row_no, _row_hash, _change, _dup_key, '
                        '"姓名", "身份证号", "出生日期" FROM raw.people ORDER BY ALL') + \
        _q(settings, "SELECT * FROM meta.source_state_log ORDER BY ALL")


@pytest.mark.parametrize("flush_rows", [1, 3, 7])
def test_classifying_in_chunks_lands_what_one_chunk_lands(settings, people, monkeypatch,
                                                          flush_rows: int) -> None:
    """Rows are classified as they are staged, chunk by chunk: duplicates across chunks, a key
    that appears only in later objects and changed rows come out as with everything at once."""
    import connectors.landing as landing

    c = people(location={"path": "people.jsonl"}, format={"type": "jsonl", "encoding": "utf-8"})
    day1 = [{"编号": f"P{i % 9}", "姓名": f"名{i}", "身份证号": None, "出生日期": "1990-01-02"}
            for i in range(6)] + \
        [{"编号": f"P{i % 9}", "姓名": f"名{i}", "身份证号": f"0{i:017d}", "出生日期": "1990-01-02",
          "备注": "new key"} for i in range(6, 14)]
    day2 = [dict(r, 姓名=r["姓名"] + "改") if i % 4 == 0 else r for i, r in enumerate(day1)][1:]
    results = []
    for rows in (1 << 20, flush_rows):
        monkeypatch.setattr(landing, "FLUSH_ROWS", rows)
        for f in settings.work_db.parent.glob(settings.work_db.name + "*"):
            f.unlink()
        _jsonl_people(settings.source_root / "people.jsonl", day1)
        first = _land(settings, c, 1, chunk_rows=2)
        _jsonl_people(settings.source_root / "people.jsonl", day2)
        second = _land(settings, c, 2, chunk_rows=2)
        counts = [{k: v for k, v in r.items() if k.startswith("rows_")} for r in (first, second)]
        results.append((counts, _landed(settings)))
    assert results[0] == results[1]
    assert results[0][0][1]["rows_changed"] > 0 and results[0][0][1]["rows_dup_key"] > 0


def test_64_bit_hash_shortcut_only_from_the_latest_event(settings, people) -> None:
    """A row back to an older content is `changed` even when the latest event has no 64-bit
    hash (written before it existed) and an older event's would match."""
    c = people()
    rows = people_rows(3)
    write_csv(settings.source_root / "people.csv", rows, "utf-8", PEOPLE_HEADER)
    _land(settings, c, 1)
    write_csv(settings.source_root / "people.csv", [rows[0], [*rows[1][:1], "改名", *rows[1][2:]],
                                                    rows[2]], "utf-8", PEOPLE_HEADER)
    assert _land(settings, c, 2)["rows_changed"] == 1
    with work_db(settings.work_db) as con:
        con.execute("UPDATE meta.source_state_log SET row_hash64 = NULL WHERE run_id = '20261102'")
    write_csv(settings.source_root / "people.csv", rows, "utf-8", PEOPLE_HEADER)
    third = _land(settings, c, 3)
    assert (third["rows_changed"], third["rows_unchanged"]) == (1, 2)
    assert _q(settings, "SELECT _source_key, _change FROM raw.people WHERE _run_id = '20261103'") \
        == [("P0002", "changed")]
