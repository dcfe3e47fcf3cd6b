"""The append-only decision table: verdicts, undo, effective decision per pair."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from matching.decisions import (DecisionError, RecordRef, all_decisions, effective_decisions,
                                record_decision, undo_decision)

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)
A = RecordRef("ps_household_registry", "HJ0000000001")
B = RecordRef("grid_collection", "G1")


@pytest.mark.parametrize("text,expected", [
    ("src:key", RecordRef("src", "key")),
    ("ps_wanted:ZT:12", RecordRef("ps_wanted", "ZT:12")),
    (" a : b ", RecordRef("a", "b")),
])
def test_parse_ref(text: str, expected: RecordRef) -> None:
    assert RecordRef.parse(text) == expected


@pytest.mark.parametrize("text", ["nokey", ":k", "s:"])
def test_parse_ref_rejects(text: str) -> None:
    with pytest.raises(DecisionError):
        RecordRef.parse(text)


def test_latest_decision_wins_and_pair_is_unordered(tmp_path) -> None:
    db = tmp_path / "d.duckdb"
    record_decision(db, A, B, "same", "u1", "looks alike", at=T0)
    record_decision(db, B, A, "different", "u2", "different mothers", at=T0 + timedelta(hours=1))
    eff = effective_decisions(db)
    assert len(eff) == 1
    assert eff.iloc[0].verdict == "different"
    assert eff.iloc[0]["user"] == "u2"


def test_undo_restores_previous_and_is_append_only(tmp_path) -> None:
    db = tmp_path / "d.duckdb"
    d1 = record_decision(db, A, B, "different", "u1", at=T0)
    d2 = record_decision(db, A, B, "same", "u1", at=T0 + timedelta(minutes=5))
    u = undo_decision(db, d2, "u1", "clicked wrong", at=T0 + timedelta(minutes=6))
    rows = all_decisions(db)
    assert list(rows.decision_id) == [d1, d2, u]
    assert rows.iloc[-1].verdict == "undo" and rows.iloc[-1].supersedes == d2
    eff = effective_decisions(db)
    assert list(eff.verdict) == ["different"]
    undo_decision(db, d1, "u1", at=T0 + timedelta(minutes=7))
    assert effective_decisions(db).empty
    assert len(all_decisions(db)) == 4


@pytest.mark.parametrize("kwargs", [
    {"verdict": "maybe", "user": "u"},
    {"verdict": "same", "user": " "},
])
def test_bad_decisions_rejected(tmp_path, kwargs) -> None:
    with pytest.raises(DecisionError):
        record_decision(tmp_path / "d.duckdb", A, B, **kwargs)


def test_same_record_twice_rejected(tmp_path) -> None:
    with pytest.raises(DecisionError):
        record_decision(tmp_path / "d.duckdb", A, A, "same", "u")


def test_undo_errors(tmp_path) -> None:
    db = tmp_path / "d.duckdb"
    with pytest.raises(DecisionError):
        undo_decision(db, 99, "u")
    d = record_decision(db, A, B, "unsure", "u")
    u = undo_decision(db, d, "u")
    with pytest.raises(DecisionError):
        undo_decision(db, d, "u")
    with pytest.raises(DecisionError):
        undo_decision(db, u, "u")


def test_missing_file_means_no_decisions(tmp_path) -> None:
    assert effective_decisions(tmp_path / "none.duckdb").empty
    assert not (tmp_path / "none.duckdb").exists()
