"""A small published master for the service tests: the warehouse factory's work DB plus names,
ID numbers, phones, a review queue and findings, published through the real publish.

Persons ``i`` = 0..N-1; person 0 is 刘娜 (liu na), person 1 is 刘拉 (a dialect homophone),
everyone else 测试<i>. ID numbers ``420502`` + birth date + ``i`` (3 digits) + ``1``.
Queue: pair 1 = registry record of person 2 vs grid record of person 3 (public_security vs
grid_centre), pair 2 = registry of 4 vs pension of 5 (public_security vs HRSS).
Findings: one deceased_pensioner about person 0.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from tests.warehouse.factory import make_work_db
from unigrid.settings import Settings
from warehouse.publish import publish

RUN_ID = "20261120"


def settings_at(home: Path) -> Settings:
    """Settings with every database under ``home``."""
    return Settings(home=home, work_db=home / "work.duckdb", master_db=home / "unigrid.duckdb",
                    decisions_db=home / "decisions.duckdb", report_dir=home / "reports",
                    model_dir=home / "models")


def enrich(work_db: Path) -> None:
    """Names, ID numbers, phones, a review queue and a finding in the factory work DB."""
    con = duckdb.connect(str(work_db))
    try:
        con.execute("""
            CREATE OR REPLACE TEMP TABLE ident AS
            SELECT person_id, birth_date,
                   CASE person_id WHEN 'P000000000001' THEN '刘娜'
                                  WHEN 'P000000000002' THEN '刘拉' ELSE name END AS name,
                   '420502' || strftime(birth_date, '%Y%m%d')
                     || lpad(CAST(CAST(('0x' || substr(person_id, 2)) AS BIGINT) - 1 AS VARCHAR),
                             3, '0') || '1' AS id_number,
                   '138' || lpad(CAST(CAST(('0x' || substr(person_id, 2)) AS BIGINT) AS VARCHAR),
                                 8, '0') AS phone
            FROM link.person""")
        con.execute("ALTER TABLE link.person ADD COLUMN id_number VARCHAR")
        con.execute("ALTER TABLE link.person ADD COLUMN phone VARCHAR")
        con.execute("""UPDATE link.person p SET name = i.name, id_number = i.id_number,
                       phone = i.phone FROM ident i WHERE i.person_id = p.person_id""")
        for col in ("name", "id_number", "phone"):
            con.execute(f"ALTER TABLE staged.ps_household_registry ADD COLUMN {col} VARCHAR")
        con.execute("""UPDATE staged.ps_household_registry s SET name = i.name,
                       id_number = i.id_number, phone = i.phone
                       FROM link.person_link l JOIN ident i USING (person_id)
                       WHERE l.source = 'ps_household_registry' AND l.source_key = s._source_key""")
        for col in ("name", "name_py", "name_pyf"):
            con.execute(f"ALTER TABLE std.record ADD COLUMN {col} VARCHAR")
        con.execute("ALTER TABLE std.record ADD COLUMN birth_date DATE")
        con.execute("""UPDATE std.record r SET name = i.name, birth_date = i.birth_date,
                       name_py = CASE i.name WHEN '刘娜' THEN 'liu na' WHEN '刘拉' THEN 'liu la'
                                 ELSE 'ce shi ' || i.person_id END,
                       name_pyf = CASE i.name WHEN '刘娜' THEN 'liu la' WHEN '刘拉' THEN 'liu la'
                                  ELSE 'ce si ' || i.person_id END
                       FROM link.person_link l JOIN ident i USING (person_id)
                       WHERE l.source = r.source AND l.source_key = r.source_key""")
        con.execute("""
            CREATE OR REPLACE TABLE link.review_queue AS
            SELECT * FROM (VALUES
              ('20261120', 1, 'review_band', 'ps_household_registry', 'HJ0000000002',
               'grid_collection', 'CJ00000003', 3.1, 0.89, FALSE, NULL,
               '{"mw_name": -2.5, "mw_birth_date": 4.1, "mw_house_key": 1.5}'),
              ('20261120', 2, 'one_id_two_people', 'ps_household_registry', 'HJ0000000004',
               'hrss_pension_ledger', '900000000005', NULL, NULL, FALSE, NULL, NULL))
              t(run_id, queue_no, reason, left_source, left_key, right_source, right_key,
                match_weight, match_probability, linked_now, decided, explanation)""")
        con.execute("""
            UPDATE std.record SET department = 'grid_centre' WHERE source = 'grid_collection'""")
        con.execute("""
            UPDATE std.record SET department = 'human_resources_social_security'
            WHERE source = 'hrss_pension_ledger'""")
        con.execute("CREATE SCHEMA IF NOT EXISTS \"check\"")
        con.execute("""
            CREATE OR REPLACE TABLE "check".finding AS
            SELECT 'F00000000000000A1' AS finding_id, 'deceased_pensioner' AS rule,
                   'P000000000001' AS person_id,
                   'hrss_pension_ledger:000900000000000' AS subject_key,
                   '{"death_date": "2024-03-05", "last_paid": "2026-10",
                     "records": [{"source": "health_death_cert", "name": "刘娜",
                                  "id_number": "420502195001010001"}]}'::JSON AS evidence,
                   2350.00::DECIMAL(18,2) AS amount_monthly,
                   49350.00::DECIMAL(18,2) AS amount_total,
                   21 AS months, 'open' AS status, NULL::VARCHAR AS dismissed_reason,
                   NULL::VARCHAR AS status_by, NULL::TIMESTAMPTZ AS status_at,
                   '20261120' AS first_seen_run, '20261120' AS last_seen_run,
                   'abc123' AS evidence_hash""")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def make_master(home: Path, persons: int = 40) -> Settings:
    """Work DB (factory + :func:`enrich`) published to ``home/unigrid.duckdb``."""
    s = settings_at(home)
    home.mkdir(parents=True, exist_ok=True)
    make_work_db(s.work_db, persons=persons, run_id=RUN_ID)
    enrich(s.work_db)
    publish(s, RUN_ID)
    return s
