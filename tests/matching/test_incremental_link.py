"""Incremental linkage gives exactly the link tables of a full linkage, night after night.

Each night one work database (the incremental chain) runs ``run_linkage`` incrementally; a copy
of it taken just before runs the same night as a full linkage. Their ``link.pair``,
``link.person_link``, ``link.person``, review queue and events must be equal, row for row.
Nights add, change and remove std records (record ids stay stable, new keys get max + 1) and a
human decision arrives in between.
"""

from __future__ import annotations

import random
import shutil
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable

import duckdb
import pandas as pd
import pytest

from matching.decisions import RecordRef, effective_decisions, record_decision, undo_decision
from matching.link import run_linkage
from matching.model import term_frequency_sql
from matching.std import write_std
from warehouse.connection import connect_work

from .factories import fixed_model, std_frame, std_row
from .test_link import ID_A, ID_B, ID_C, PEOPLE

AT = datetime(2026, 11, 1, tzinfo=timezone.utc)
VERSION = 3

COMPARED = {
    "pair": "SELECT * FROM link.pair ORDER BY record_id_l, record_id_r",
    "person_link": "SELECT * FROM link.person_link ORDER BY ALL",
    "person": "SELECT * FROM link.person ORDER BY person_id",
    "review_queue": "SELECT * FROM link.review_queue ORDER BY queue_no",
    "person_event": "SELECT * EXCLUDE (\"at\") FROM link.person_event ORDER BY event_id",
}

EXTRA = [
    std_row("grid_collection", "G2", name="张三", py="zhang san", dob=date(1977, 12, 12),
            house="梨园-2-1-202", phone="13900003333", kind="grid_collection"),
    std_row("hrss_pension_ledger", "S2", name="王伟", py="wang wei", id18=ID_B,
            dob=date(1985, 5, 5), house="桃花苑-1-1-101", kind="pension_payments"),
    std_row("ps_household_registry", "HJ4", name="李丽", py="li li",
            id18=ID_A[:-2] + ID_A[-1] + ID_A[-2], dob=date(1990, 1, 1), sex="女",
            house="桃花苑-3-2-501", household_no="H1"),
    std_row("grid_collection", "G3", name="周七", py="zhou qi", dob=date(2001, 7, 7),
            house="梨园-9-9-909", kind="grid_collection"),
]


def add(con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> None:
    """A new std record (new key: record id max + 1, as the standardise stage gives)."""
    frame = std_frame([row])
    frame.insert(0, "record_id", int(con.execute(
        "SELECT coalesce(max(record_id), -1) + 1 FROM std.record").fetchall()[0][0]))
    con.register("new_row", frame)
    con.execute("INSERT INTO std.record BY NAME SELECT * FROM new_row")
    con.unregister("new_row")


def change(con: duckdb.DuckDBPyConnection, key: str, **values: Any) -> None:
    sets = ", ".join(f"{c} = ?" for c in values)
    con.execute(f"UPDATE std.record SET {sets} WHERE source_key = ?", [*values.values(), key])


def remove(con: duckdb.DuckDBPyConnection, key: str) -> None:
    con.execute("DELETE FROM std.record WHERE source_key = ?", [key])


def mark_incremental(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """What the standardise stage writes on an incremental night (only ``full`` is read)."""
    con.execute('CREATE OR REPLACE TABLE std.delta_meta AS SELECT ? AS run_id, FALSE AS "full", '
                "0::BIGINT AS records, 0::BIGINT AS new, 0::BIGINT AS changed, "
                "0::BIGINT AS removed", [run_id])


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list]:
    return {k: con.execute(q).fetchall() for k, q in COMPARED.items()}


Night = Callable[[duckdb.DuckDBPyConnection, Path], None]


def night_add_change_remove(con: duckdb.DuckDBPyConnection, _: Path) -> None:
    add(con, EXTRA[0])                       # joins person C by name, date and house
    change(con, "G1", phone="13800009999")   # a member record of A changes
    remove(con, "D1")                        # B loses its death certificate


def night_human_decision(con: duckdb.DuckDBPyConnection, tmp: Path) -> None:
    record_decision(tmp / "decisions.duckdb", RecordRef("grid_collection", "G1"),
                    RecordRef("ps_household_registry", "HJ1"), "different", "steward", "checked")
    add(con, EXTRA[1])


def night_typo_id_and_removal(con: duckdb.DuckDBPyConnection, _: Path) -> None:
    add(con, EXTRA[2])                       # A's ID with two digits swapped
    remove(con, "S1")
    change(con, "ZT1", name="张三", name_py="zhangsan", name_pyf="zangsan", surname_py="zhang")


def night_nothing(con: duckdb.DuckDBPyConnection, _: Path) -> None:
    pass


def night_lonely_newcomer(con: duckdb.DuckDBPyConnection, _: Path) -> None:
    add(con, EXTRA[3])
    change(con, "HJ2", house_key="桃花苑-1-1-102", address="桃花苑-1-1-102")


def night_same_decision(con: duckdb.DuckDBPyConnection, tmp: Path) -> None:
    """A human 'same' overrides the one-ID-two-people conflict: C and the wanted row merge."""
    record_decision(tmp / "decisions.duckdb", RecordRef("ps_wanted", "ZT1"),
                    RecordRef("ps_household_registry", "HJ3"), "same", "steward", "checked")


def night_undo_decisions(con: duckdb.DuckDBPyConnection, tmp: Path) -> None:
    """Every decision undone (no record changes): merges and splits come back, 'human' links
    go (their records are not touched otherwise)."""
    db = tmp / "decisions.duckdb"
    for d in effective_decisions(db)["decision_id"]:
        undo_decision(db, int(d), "steward", "mistake")


def night_split(con: duckdb.DuckDBPyConnection, _: Path) -> None:
    """A's grid record gets another birth date and house: it leaves A (a split)."""
    change(con, "G1", birth_date=date(1950, 6, 6), birth_month=date(1950, 6, 1),
           house_key="梨园-7-7-707", address="梨园-7-7-707", phone="13700007777")


NIGHTS: list[Night] = [night_add_change_remove, night_human_decision, night_same_decision,
                       night_typo_id_and_removal, night_nothing, night_undo_decisions,
                       night_split, night_lonely_newcomer]
DECISION_NIGHTS = (night_human_decision, night_same_decision, night_undo_decisions)


def link(con: duckdb.DuckDBPyConnection, tmp: Path, run_id: str, tf: dict[str, Any],
         full: bool = False) -> dict[str, Any]:
    return run_linkage(con, run_id, fixed_model(), effective_decisions(tmp / "decisions.duckdb"),
                       at=AT, tf=tf, model_version=VERSION, full=full).counts


def reopen_copy(con: duckdb.DuckDBPyConnection, path: Path, copy: Path
                ) -> tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection]:
    con.execute("CHECKPOINT")
    con.close()
    shutil.copy(path, copy)
    return connect_work(path), connect_work(copy)


def run_nights(tmp_path: Path, nights: list[Night]) -> list[dict[str, Any]]:
    """Run ``nights`` incrementally, each compared with a full linkage; return the counts."""
    path = tmp_path / "work.duckdb"
    con = connect_work(path)
    write_std(con, std_frame(PEOPLE))
    tf = {"name": con.sql(term_frequency_sql("name")).to_arrow_table()}  # frozen at night 1
    first = link(con, tmp_path, "20261101", tf)
    assert first["full"] is True
    counts = []
    for i, night in enumerate(nights, start=2):
        run_id = f"202611{i:02d}"
        night(con, tmp_path)
        mark_incremental(con, run_id)
        con, full_con = reopen_copy(con, path, tmp_path / f"full-{run_id}.duckdb")
        got = link(con, tmp_path, run_id, tf)
        link(full_con, tmp_path, run_id, tf, full=True)
        assert got["full"] is False, night.__name__
        assert got["ids_incremental"] is True, night.__name__  # only changed clusters relinked
        assert snapshot(con) == snapshot(full_con), night.__name__
        full_con.close()
        counts.append(got)
    con.close()
    return counts


def test_incremental_nights_equal_full_linkage(tmp_path: Path) -> None:
    counts = run_nights(tmp_path, NIGHTS)
    nothing = counts[NIGHTS.index(night_nothing)]
    assert nothing["pairs_scored"] == 0 and nothing["persons_touched"] == 0
    assert nothing["records_dirty"] == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_nights_equal_full_linkage(tmp_path: Path, seed: int) -> None:
    """Property: any order of the nights (with repeats) keeps incremental == full."""
    rng = random.Random(seed)
    order = [rng.choice([n for n in NIGHTS if n not in DECISION_NIGHTS]) for _ in range(3)]
    # each EXTRA row may be added once per chain: keep the first occurrence of an adding night
    seen, nights = set(), []
    for n in order:
        if n in seen and n is not night_nothing:
            continue
        seen.add(n)
        nights.append(n)
    run_nights(tmp_path, nights)


def test_delta_person_says_who_changed(tmp_path: Path) -> None:
    path = tmp_path / "work.duckdb"
    con = connect_work(path)
    write_std(con, std_frame(PEOPLE))
    tf = {"name": con.sql(term_frequency_sql("name")).to_arrow_table()}
    link(con, tmp_path, "20261101", tf)
    full = dict(con.execute("SELECT change, count(*) FROM link.delta_person GROUP BY 1")
                .fetchall())
    n_persons = con.execute("SELECT count(*) FROM link.person").fetchall()[0][0]
    assert full == {"new": n_persons}
    before = dict(con.execute("SELECT source_key, person_id FROM link.person_link").fetchall())
    night_add_change_remove(con, tmp_path)
    mark_incremental(con, "20261102")
    counts = link(con, tmp_path, "20261102", tf)
    delta = dict(con.execute("SELECT person_id, change FROM link.delta_person").fetchall())
    # C gained G2, A's G1 changed, B lost D1; nobody new or removed
    assert delta == {before["HJ3"]: "changed", before["HJ1"]: "changed",
                     before["HJ2"]: "changed"}
    meta = con.execute('SELECT run_id, "full", pairs_scored, persons_touched '
                       "FROM link.delta_meta").fetchall()
    assert meta == [("20261102", False, counts["pairs_scored"], 3)]
    con.close()


@pytest.mark.parametrize("why", ["model_version", "full", "std_full", "no_delta_meta"])
def test_full_linkage_when_anything_asks_for_it(tmp_path: Path, why: str) -> None:
    con = connect_work(tmp_path / "work.duckdb")
    write_std(con, std_frame(PEOPLE))
    tf = {"name": con.sql(term_frequency_sql("name")).to_arrow_table()}
    link(con, tmp_path, "20261101", tf)
    mark_incremental(con, "20261102")
    kw: dict[str, Any] = {}
    if why == "std_full":
        con.execute('UPDATE std.delta_meta SET "full" = TRUE')
    if why == "no_delta_meta":
        con.execute("DROP TABLE std.delta_meta")
    if why == "full":
        kw["full"] = True
    version = VERSION + 1 if why == "model_version" else VERSION
    counts = run_linkage(con, "20261102", fixed_model(), pd.DataFrame(), at=AT, tf=tf,
                         model_version=version, **kw).counts
    assert counts["full"] is True
    con.close()


@pytest.mark.parametrize("rule,keys", [
    ("l.id18 = r.id18", [["l.id18"]]),
    ("l.name_py = r.name_py AND l.dob = r.dob", [["l.name_py", "l.dob"]]),
    ("substr(l.id18, 7, 4) || substr(l.id18, 15, 4) = substr(r.id18, 7, 4) || "
     "substr(r.id18, 15, 4)", [["substr(l.id18, 7, 4) || substr(l.id18, 15, 4)"]]),
    ("l.a = r.b", None),                    # not the same key on both sides
    ("l.a = r.a OR l.b = r.b", None),       # not a conjunction
    ("levenshtein(l.a, r.a) < 2", None),    # not an equality
])
def test_blocking_keys_table(rule: str, keys: list[list[str]] | None) -> None:
    from matching.link import blocking_keys

    assert blocking_keys([rule]) == keys


def test_every_model_blocking_rule_gives_keys() -> None:
    """Incremental scoring narrows the candidates with these keys; a rule that is not a
    conjunction of equalities would silently widen it to every record."""
    from matching.link import blocking_keys
    from matching.model import BLOCKING_RULES

    keys = blocking_keys(BLOCKING_RULES)
    assert keys is not None and len(keys) == len(BLOCKING_RULES)
