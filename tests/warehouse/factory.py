"""Synthetic work databases of the shape the publish stage reads (pure SQL, scales to millions).

Person ``i`` (0-based) has a household registry record, a grid collection record when
``i % 3 != 2`` and a pension record when ``i % 5 == 0``; four persons share a household and a
house; every seventh grid record places its person in another house (moved out). Every record
is linked to its person. Nothing here is real personal data.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

REGISTRY = "ps_household_registry"
GRID = "grid_collection"
PENSION = "hrss_pension_ledger"


def _person_id(expr: str) -> str:
    return f"printf('P%012X', ({expr}) + 1)"


def make_work_db(path: Path | str, persons: int = 40, run_id: str = "20261120",
                 replace: bool = True) -> Path:
    """Write (or add a run to) a work database at ``path``; return the path.

    ``replace=False`` appends a new run's staged rows to existing staged tables (the std and link
    layers are always rebuilt, as the pipeline does).
    """
    path = Path(path)
    if replace:
        for p in (path, Path(str(path) + ".wal")):
            p.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        for s in ("meta", "staged", "std", "link"):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE ppl AS
            SELECT i, i // 4 AS h,
                   CASE WHEN i % 2 = 0 THEN '西陵区' ELSE '伍家岗区' END AS district_p,
                   CASE (i // 4) % 2 WHEN 0 THEN '西陵区' ELSE '伍家岗区' END AS district,
                   CASE (i // 4) % 2 WHEN 0 THEN '420502' ELSE '420503' END AS district_code,
                   '学院街道' || ((i // 400) % 5) AS street,
                   '桃花社区' || ((i // 100) % 20) AS community,
                   '桃花苑' || ((i // 40) % 50) AS compound,
                   CAST((i // 4) % 10 + 1 AS VARCHAR) AS building,
                   CAST((i // 4) % 3 + 1 AS VARCHAR) AS unit,
                   CAST(101 + (i // 4) % 30 AS VARCHAR) AS room,
                   '4205' || lpad(CAST(i // 4 AS VARCHAR), 8, '0') AS household_no,
                   CASE i % 4 WHEN 0 THEN '户主' WHEN 1 THEN '配偶' WHEN 2 THEN '子' ELSE '女' END
                     AS relation_to_head,
                   CASE WHEN i % 50 = 49 THEN '注销' ELSE '正常' END AS registry_status,
                   CASE WHEN i % 50 = 49 THEN DATE '2024-03-10' END AS cancel_date,
                   CASE WHEN i % 50 = 49 THEN '死亡' END AS cancel_reason,
                   DATE '2010-01-01' + CAST(i % 3000 AS INTEGER) AS registered_at,
                   '420502' || lpad(CAST(i // 100 AS VARCHAR), 6, '0') AS grid_code,
                   TIMESTAMP '2026-01-01 09:00:00' + to_minutes(CAST(i % 100000 AS BIGINT))
                     AS collected_at,
                   {_person_id('i')} AS person_id
            FROM range({persons}) r(i)""")
        con.execute("""
            CREATE OR REPLACE TEMP TABLE ppl2 AS
            SELECT *, concat_ws('|', district, compound, building, unit, room) AS house_key
            FROM ppl""")
        lineage = (f"'{run_id}' AS _run_id, {{src}} AS _source, {{key}} AS _source_key, "
                   "i + 1 AS _row_no, md5({key}) AS _row_hash, []::VARCHAR[] AS _flags")
        reg_key = "'HJ' || lpad(CAST(i AS VARCHAR), 10, '0')"
        grid_key = "'CJ' || lpad(CAST(i AS VARCHAR), 8, '0')"
        pen_key = "lpad(CAST(900000000000 + i AS VARCHAR), 12, '0')"
        staged = {
            REGISTRY: (reg_key, "household_no, relation_to_head, registry_status, registered_at, "
                       "cancel_date, cancel_reason, 'addr' AS address", "TRUE"),
            GRID: (grid_key, "grid_code, CASE WHEN i % 6 = 0 THEN '流动人口' ELSE '户籍人口' END "
                   "AS resident_type, collected_at", "i % 3 <> 2"),
            PENSION: (pen_key, "2350.00::DECIMAL(18,2) AS pension_monthly_amount", "i % 5 = 0"),
        }
        for src, (key, cols, where) in staged.items():
            sel = (f"SELECT {lineage.format(src=repr(src), key=key)}, {cols} "
                   f"FROM ppl2 WHERE {where}")
            exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = "
                                 "'staged' AND table_name = ?", [src]).fetchone()[0]
            if exists and not replace:
                con.execute(f"DELETE FROM staged.{src} WHERE _run_id = '{run_id}'")
                con.execute(f"INSERT INTO staged.{src} {sel}")
            else:
                con.execute(f"CREATE OR REPLACE TABLE staged.{src} AS {sel}")
        moved = ("CASE WHEN i % 7 = 0 THEN concat_ws('|', district, compound, building, unit, "
                 "CAST(CAST(room AS INTEGER) + 1000 AS VARCHAR)) ELSE house_key END")
        con.execute(f"""
            CREATE OR REPLACE TABLE std.record AS
            SELECT '{REGISTRY}' AS source, {reg_key} AS source_key, 'household_registry' AS kind,
                   'public_security' AS department, '{run_id}' AS run_id, district, district_code,
                   street, community, compound, building, unit, room, house_key, household_no,
                   relation_to_head, registry_status, cancel_date, cancel_reason, person_id
            FROM ppl2
            UNION ALL
            SELECT '{GRID}', {grid_key}, 'grid_collection', 'grid_office', '{run_id}', district,
                   district_code, street, community, compound, building, unit,
                   CASE WHEN i % 7 = 0 THEN CAST(CAST(room AS INTEGER) + 1000 AS VARCHAR)
                        ELSE room END,
                   {moved}, NULL, NULL, NULL, NULL, NULL, person_id
            FROM ppl2 WHERE i % 3 <> 2
            UNION ALL
            SELECT '{PENSION}', {pen_key}, 'pension_payments', 'hrss', '{run_id}', district,
                   district_code, NULL, NULL, compound, building, unit, room, house_key,
                   NULL, NULL, NULL, NULL, NULL, person_id
            FROM ppl2 WHERE i % 5 = 0""")
        con.execute("""
            CREATE OR REPLACE TABLE link.person_link AS
            SELECT source, source_key, person_id, 'model' AS method, 0.99::DOUBLE AS score
            FROM std.record""")
        con.execute("ALTER TABLE std.record DROP COLUMN person_id")
        con.execute(f"""
            CREATE OR REPLACE TABLE link.person AS
            SELECT p.person_id, count(*) AS n_records,
                   list(DISTINCT l.source ORDER BY l.source) AS sources,
                   '测试' || p.i AS name, '{REGISTRY}' AS name_source,
                   'HJ' || lpad(CAST(p.i AS VARCHAR), 10, '0') AS name_source_key,
                   CASE WHEN p.i % 2 = 0 THEN '男' ELSE '女' END AS sex,
                   DATE '1950-01-01' + CAST(p.i % 20000 AS INTEGER) AS birth_date,
                   p.house_key, p.household_no,
                   CASE WHEN p.i % 50 = 49 THEN DATE '2024-03-05' END AS death_date
            FROM ppl2 p JOIN link.person_link l USING (person_id)
            GROUP BY ALL""")
        con.execute(f"""
            CREATE OR REPLACE TABLE link.person_event AS
            SELECT '{run_id}-' || lpad(CAST(i AS VARCHAR), 8, '0') AS event_id,
                   '{run_id}' AS run_id, 'create' AS event, person_id,
                   NULL::VARCHAR AS other_person_id, '{{}}' AS detail,
                   TIMESTAMPTZ '2026-11-20 02:00:00+00' AS at
            FROM ppl2 WHERE i % 10 = 0""")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return path


def execute(path: Path | str, *sql: str) -> None:
    """Run statements against a work database (to break it on purpose in tests)."""
    con = duckdb.connect(str(path))
    try:
        for s in sql:
            con.execute(s)
        con.execute("CHECKPOINT")
    finally:
        con.close()
