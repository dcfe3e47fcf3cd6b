"""A tiny published master (schema from warehouse.schema) with persons, houses and findings."""

from __future__ import annotations

import json
from pathlib import Path

from warehouse.connection import connect_attached
from warehouse.schema import ALL_TABLES, duckdb_ddl

RULE_IDS = ("deceased_pensioner", "wanted_person_seen", "deceased_subsidy",
            "duplicate_registration", "death_not_cancelled", "birth_not_registered",
            "id_conflict")
DISTRICTS = ("西陵区", "伍家岗区", "点军区", "猇亭区", "夷陵区")
RUN = "20261120"


def make_master(path: Path, persons: int = 60, run_id: str = RUN) -> Path:
    """Write a master file at ``path``: ``persons`` persons, one finding per person."""
    con = connect_attached(path)
    try:
        con.execute(duckdb_ddl(ALL_TABLES, primary_keys=False))
        con.execute(f"""
            INSERT INTO master.house (house_id, house_key, district, street, community,
                                      grid_code, run_id)
            SELECT 'H' || lpad(i::VARCHAR, 4, '0'), 'k' || i,
                   ['{"','".join(DISTRICTS)}'][i % 5 + 1], '街道' || (i % 3), '社区' || (i % 7),
                   '4205020010' || lpad((i % 9)::VARCHAR, 2, '0'), '{run_id}'
            FROM range(20) r(i)""")
        con.execute(f"""
            INSERT INTO master.person (person_id, name, sex, birth_date, id_number, house_id,
                                       death_date, is_deceased, run_id)
            SELECT 'P' || lpad(i::VARCHAR, 12, '0'),
                   ['张伟明', '李芳', '欧阳明月', '买买提·艾力'][i % 4 + 1],
                   CASE WHEN i % 2 = 0 THEN '男' ELSE '女' END,
                   DATE '1940-01-01' + INTERVAL (i * 400) DAY,
                   '420502' || strftime(DATE '1940-01-01' + INTERVAL (i * 400) DAY, '%Y%m%d')
                     || lpad((i % 1000)::VARCHAR, 3, '0') || 'X',
                   CASE WHEN i % 10 = 9 THEN NULL ELSE 'H' || lpad((i % 20)::VARCHAR, 4, '0') END,
                   CASE WHEN i % 6 = 0 THEN DATE '2025-01-15' + INTERVAL (i * 9) DAY END,
                   i % 6 = 0, '{run_id}'
            FROM range({persons}) r(i)""")
        con.execute(f"""
            INSERT INTO master.household (household_no, person_id, source, source_key,
                                          is_active, house_id, run_id)
            SELECT 'HH' || i, 'P' || lpad(i::VARCHAR, 12, '0'), 'reg', 'R' || i, TRUE,
                   'H' || lpad(((i + 3) % 20)::VARCHAR, 4, '0'), '{run_id}'
            FROM range({persons}) r(i)""")
        rules = "['" + "','".join(RULE_IDS) + "']"
        con.execute(f"""
            INSERT INTO audit.finding
            SELECT 'F' || lpad(i::VARCHAR, 16, '0'), {rules}[i % 7 + 1],
                   'P' || lpad(i::VARCHAR, 12, '0'), 'src:' || i,
                   json_object('event_date', DATE '2024-06-01' + INTERVAL (i * 17) DAY,
                               'detail', json_object('death_date', '2025-01-01',
                                                     'months_overpaid', i % 12 + 1,
                                                     'last_seen_address', '桃花苑' || i),
                               'records', [struct_pack(source := 'src', source_key := 'K' || i,
                                                       row_hash := 'h')]),
                   CASE WHEN i % 7 IN (0, 2) THEN 1000 + i END,
                   CASE WHEN i % 7 IN (0, 2) THEN (1000 + i) * (i % 12 + 1) END,
                   CASE WHEN i % 7 IN (0, 2) THEN i % 12 + 1 END,
                   ['open', 'open', 'confirmed', 'dismissed'][i % 4 + 1],
                   CASE WHEN i % 4 = 3 THEN '已核实' END, NULL, NULL,
                   '20261101', CASE WHEN i % 11 = 10 THEN '20261101' ELSE '{run_id}' END, 'eh' || i
            FROM range({persons}) r(i)""")
        con.execute(f"""INSERT INTO audit.run (run_id, started_at, finished_at, status, persons)
                        VALUES ('{run_id}', TIMESTAMPTZ '2026-11-20 02:10:00+08',
                                TIMESTAMPTZ '2026-11-20 02:10:41+08', 'published', {persons})""")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return path


def rule_infos() -> list[dict]:
    """Report metadata of the rules (from the rule catalogue)."""
    from quality.rules import rule_infos as infos
    return infos()


def evidence(i: int) -> str:
    """The evidence JSON of finding ``i`` (for assertions)."""
    return json.dumps({"records": [{"source": "src", "source_key": f"K{i}"}]})
