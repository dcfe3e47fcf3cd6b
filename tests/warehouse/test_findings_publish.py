"""Publish takes the findings the check stage computed in the work database."""

from __future__ import annotations

from tests.warehouse.factory import execute
from unigrid.settings import Settings
from warehouse.publish import publish
from warehouse.queries import open_master

COLS = ("finding_id VARCHAR, rule VARCHAR, person_id VARCHAR, subject_key VARCHAR, evidence JSON, "
        "amount_monthly DECIMAL(18,2), amount_total DECIMAL(18,2), months INTEGER, status VARCHAR, "
        "dismissed_reason VARCHAR, status_by VARCHAR, status_at TIMESTAMPTZ, "
        "first_seen_run VARCHAR, last_seen_run VARCHAR, evidence_hash VARCHAR")


def _findings(settings: Settings) -> list[tuple]:
    with open_master(settings) as con:
        return con.execute("SELECT finding_id, rule, status, last_seen_run FROM audit.finding "
                           "ORDER BY finding_id").fetchall()


def _write(settings: Settings, rows: str) -> None:
    execute(settings.work_db, 'CREATE SCHEMA IF NOT EXISTS "check"',
            f'CREATE OR REPLACE TABLE "check".finding ({COLS})',
            f'INSERT INTO "check".finding (finding_id, rule, person_id, status, first_seen_run, '
            f"last_seen_run) VALUES {rows}")


def test_findings_come_from_the_check_stage_table(settings: Settings) -> None:
    _write(settings, "('F1', 'deceased_pensioner', 'P000000000001', 'open', '20261120', '20261120')")
    publish(settings, "20261120")
    assert _findings(settings) == [("F1", "deceased_pensioner", "open", "20261120")]
    # next run: the check stage's table (all findings ever seen, statuses applied) replaces the
    # previous master's copy instead of being appended to it
    _write(settings, "('F1', 'deceased_pensioner', 'P000000000001', 'dismissed', '20261120', "
                     "'20261121'), ('F2', 'id_conflict', NULL, 'open', '20261121', '20261121')")
    publish(settings, "20261121")
    assert _findings(settings) == [("F1", "deceased_pensioner", "dismissed", "20261121"),
                                   ("F2", "id_conflict", "open", "20261121")]


def test_without_a_check_table_previous_findings_are_carried(settings: Settings) -> None:
    _write(settings, "('F1', 'deceased_pensioner', 'P000000000001', 'open', '20261120', '20261120')")
    publish(settings, "20261120")
    execute(settings.work_db, 'DROP TABLE "check".finding')
    publish(settings, "20261121")
    assert _findings(settings) == [("F1", "deceased_pensioner", "open", "20261120")]
