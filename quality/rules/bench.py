"""Scale harness: time the check stage, the report and a district's voter roll at city scale.

    .venv/bin/python -m quality.rules.bench --persons 1000000 --out /tmp/rules-bench

Running extract, validate, standardise and match on a million generated persons takes far
longer than the checks themselves, so this harness writes, in SQL, the tables those stages
leave behind (``staged.<source>`` for the eight contracts, ``std.record``,
``link.person_link``) with the generated city's proportions (registry 0.93 records per person,
grid collection 0.72, pensions, subsidies, birth and death records, the wanted list) and its
anomaly rates, then times :func:`quality.rules.runner.run_checks` on them. It then builds a
published-master-shaped file (``master.person``, ``house``, ``grid``, ``household``,
``audit.finding`` from the findings, ``audit.run``) and times
:func:`warehouse.report.generate_report` and :func:`warehouse.views.export_voter_roll` for the
largest district. Nothing here is real personal data. Prints one JSON line of timings.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path

from warehouse.connection import connect, connect_attached
from warehouse.schema import ALL_TABLES, duckdb_ddl

RUN = "20261120"
BD = date(2026, 11, 20)

PERSONS_SQL = """
CREATE OR REPLACE TABLE bench.person AS
WITH b AS (SELECT i, hash(i, 'a') % 1000000 AS u1, hash(i, 'b') % 1000000 AS u2,
                  hash(i, 'c') % 1000000 AS u3, i // 700 AS g FROM range({n}) r(i))
SELECT i, 'P' || lpad(i::VARCHAR, 10, '0') AS person_id, g AS grid_no,
       CASE WHEN hash(g, 'd') % 100 < 32 THEN 0 WHEN hash(g, 'd') % 100 < 57 THEN 1
            WHEN hash(g, 'd') % 100 < 65 THEN 2 WHEN hash(g, 'd') % 100 < 72 THEN 3 ELSE 4 END
         AS d,
       i // 2 AS house_no, i // 3 AS hh, i % 3 = 0 AS head,
       CASE WHEN i % 2 = 0 THEN '男' ELSE '女' END AS sex,
       DATE '1930-01-01' + CAST(u1 % 35000 AS INTEGER) AS birth_date,
       CASE WHEN u2 < 25000 THEN DATE '2026-11-19' - CAST(u3 % 1000 AS INTEGER) END
         AS death_date,
       u3 AS u, u2 < 25000 AS dead,
       '42050' || lpad(i::VARCHAR, 13, '0') AS id18,
       'n' || (hash(i, 'n') % 60000)::VARCHAR AS name_pyf
FROM b
"""

STAGED_SQL = {
    "ps_household_registry": """
        SELECT 'HJ' || i AS _source_key, p.*, hh::VARCHAR AS household_no,
               CASE WHEN head THEN '户主' ELSE '子' END AS relation_to_head,
               CASE WHEN dead AND u % 100 >= 8 THEN '注销' ELSE '正常' END AS registry_status,
               CASE WHEN dead AND u % 100 >= 8 THEN death_date + 20 END AS cancel_date,
               CASE WHEN dead AND u % 100 >= 8 THEN '死亡' END AS cancel_reason,
               birth_date + 30 AS registered_at, '地址' || house_no AS address
        FROM bench.person p
        WHERE NOT (birth_date > DATE '2023-11-20' AND u % 100 < 6) AND u % 1000 < 960
        UNION ALL
        SELECT 'HJD' || i, p.*, (hh + 10000000)::VARCHAR, '户主', '正常', NULL, NULL,
               DATE '2015-01-01', '地址' || (house_no + 7)
        FROM bench.person p WHERE u % 1000 < 3""",
    "ps_wanted_list": """
        SELECT 'ZT' || i AS _source_key, p.*, 'A' || i AS case_no, DATE '2024-01-01' AS case_date
        FROM bench.person p WHERE hash(i, 'w') % 1000 = 0 AND NOT dead""",
    "ca_cremation": """
        SELECT 'HH' || i AS _source_key, p.* FROM bench.person p WHERE dead AND u % 10 < 8""",
    "health_death_cert": """
        SELECT 'SW' || i AS _source_key, p.* FROM bench.person p WHERE dead AND u % 10 <> 3""",
    "hrss_pension_ledger": """
        SELECT 'S' || i AS _source_key, p.*,
               CASE WHEN dead AND u % 100 >= 12 THEN date_trunc('month', death_date)::DATE
                    ELSE DATE '2026-11-01' END AS pension_last_paid_month,
               (2000 + u % 3000)::DECIMAL(18,2) AS pension_monthly_amount,
               '正常发放' AS payment_status
        FROM bench.person p WHERE birth_date < DATE '1966-11-20' AND u % 100 < 88""",
    "ca_subsistence": """
        SELECT 'DB' || hh || '|' || i AS _source_key, p.*, 'DB' || hh AS subsidy_case_no,
               CASE WHEN head THEN '户主' ELSE '子' END AS relation_to_head,
               CASE WHEN dead AND u % 2 = 0 THEN date_trunc('month', death_date)::DATE
                    ELSE DATE '2026-11-01' END AS subsidy_last_paid_month,
               (600 + u % 900)::DECIMAL(18,2) AS subsidy_monthly_amount, '在保' AS payment_status
        FROM bench.person p WHERE hash(hh, 's') % 100 < 3 AND (head OR NOT dead)""",
    "health_birth_cert": """
        SELECT 'Q' || i AS _source_key, p.*, '医院' AS birth_place
        FROM bench.person p WHERE birth_date > DATE '2023-11-20'""",
    "grid_collection": """
        SELECT 'CJ' || i AS _source_key, p.*, '4205' || lpad(grid_no::VARCHAR, 8, '0') AS grid_code,
               TIMESTAMP '2026-01-01' + to_minutes((u % 400000)::BIGINT) AS collected_at,
               '地址' || house_no AS address
        FROM bench.person p WHERE u % 100 < 70 OR hash(i, 'w') % 1000 = 0""",
}
"""Current rows of each source (``p.*`` gives the person's columns, dropped below)."""

PERSON_COLS = ("i", "person_id", "grid_no", "d", "house_no", "hh", "head", "sex", "u", "dead",
               "id18", "name_pyf")


def build_work(path: Path, n: int) -> dict[str, int]:
    """Write the staged, std and link tables of an ``n``-person city into ``path``."""
    for p in (path, Path(str(path) + ".wal")):
        p.unlink(missing_ok=True)
    con = connect(path)
    try:
        for s in ("bench", "staged", "std", "link"):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
        con.execute(PERSONS_SQL.format(n=n))
        counts = {}
        parts = []
        drop = ", ".join(PERSON_COLS)
        for src, sql in STAGED_SQL.items():
            con.execute(f"""CREATE OR REPLACE TABLE staged.{src} AS
                SELECT '{RUN}' AS _run_id, '{src}' AS _source, md5(_source_key) AS _row_hash,
                       * EXCLUDE ({drop}), i AS _i FROM ({sql}) x""")
            counts[src] = con.execute(f"SELECT count(*) FROM staged.{src}").fetchall()[0][0]
            parts.append(f"""SELECT '{src}' AS source, s._source_key AS source_key,
                p.person_id, p.id18, p.name_pyf, p.hh FROM staged.{src} s
                JOIN bench.person p ON p.i = s._i""")
        con.execute(f"CREATE OR REPLACE TABLE bench.rec AS {' UNION ALL '.join(parts)}")
        # 重号: every 2,500th person carries the number of the next one
        con.execute("""CREATE OR REPLACE TABLE std.record AS
            SELECT r.source, r.source_key,
                   CASE WHEN p.i % 2500 = 7 THEN q.id18 ELSE r.id18 END AS id_key,
                   'valid' AS id_status, r.name_pyf, FALSE AS name_unknown,
                   NULL::TIMESTAMP AS record_time, r.hh::VARCHAR AS family_household_no
            FROM bench.rec r JOIN bench.person p USING (person_id)
            LEFT JOIN bench.person q ON q.i = p.i + 1""")
        con.execute("""CREATE OR REPLACE TABLE link.person_link AS
            SELECT source, source_key, person_id, 'model' AS method, 1.0 AS score
            FROM bench.rec""")
        con.execute("CHECKPOINT")
        return counts
    finally:
        con.close()


def build_master(path: Path, work: Path) -> None:
    """A published-master-shaped file from the bench persons and the work DB's findings."""
    for p in (path, Path(str(path) + ".wal")):
        p.unlink(missing_ok=True)
    con = connect_attached(path)
    try:
        con.execute(duckdb_ddl(ALL_TABLES, primary_keys=False))
        w = str(work).replace("'", "''")
        con.execute(f"ATTACH '{w}' AS w (READ_ONLY)")
        districts = "['西陵区', '伍家岗区', '点军区', '猇亭区', '夷陵区']"
        con.execute(f"""INSERT INTO master.grid (grid_code, community, street, district, run_id)
            SELECT DISTINCT '4205' || lpad(grid_no::VARCHAR, 8, '0'), '社区' || (grid_no // 6),
                   '街道' || (grid_no // 30), {districts}[d + 1], '{RUN}' FROM w.bench.person""")
        con.execute(f"""INSERT INTO master.house (house_id, house_key, standard_address,
                district, street, community, grid_code, run_id)
            SELECT 'H' || house_no, 'k' || house_no, '地址' || house_no, {districts}[min(d) + 1],
                   '街道' || (min(grid_no) // 30), '社区' || (min(grid_no) // 6),
                   '4205' || lpad(min(grid_no)::VARCHAR, 8, '0'), '{RUN}'
            FROM w.bench.person GROUP BY house_no""")
        con.execute(f"""INSERT INTO master.person (person_id, name, sex, birth_date, id_number,
                house_id, death_date, is_deceased, run_id)
            SELECT person_id, '张' || name_pyf || '明', sex, birth_date, id18 || 'X',
                   'H' || house_no, death_date, dead, '{RUN}' FROM w.bench.person""")
        con.execute(f"""INSERT INTO master.household (household_no, person_id, source,
                source_key, is_active, house_id, registered_at, run_id)
            SELECT s.household_no, p.person_id, 'ps_household_registry', s._source_key,
                   s.registry_status = '正常', 'H' || p.house_no, s.registered_at, '{RUN}'
            FROM w.staged.ps_household_registry s JOIN w.bench.person p ON p.i = s._i""")
        con.execute('INSERT INTO audit.finding SELECT * FROM w."check".finding')
        con.execute(f"""INSERT INTO audit.run (run_id, started_at, finished_at, status)
            VALUES ('{RUN}', TIMESTAMPTZ '2026-11-20 02:00:00+08',
                    TIMESTAMPTZ '2026-11-20 02:30:00+08', 'published')""")
        con.execute("DETACH w")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def main(argv: list[str] | None = None) -> dict:
    """Run the harness; print and return the timings."""
    from types import SimpleNamespace

    from connectors.contract import load_contracts
    from quality.rules import rule_infos
    from quality.rules.runner import run_checks
    from unigrid.settings import DEFAULT_CONTRACTS_DIR
    from warehouse.queries import open_master
    from warehouse.report import generate_report
    from warehouse.views import export_voter_roll, population

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    work, master = a.out / "work.duckdb", a.out / "master.duckdb"
    res: dict = {"persons": a.persons}
    t = time.perf_counter()
    res["records"] = build_work(work, a.persons)
    res["setup_seconds"] = round(time.perf_counter() - t, 1)
    contracts = {c.name: SimpleNamespace(kind=c.kind, department=c.department)
                 for c in load_contracts(DEFAULT_CONTRACTS_DIR)}
    con = connect(work)
    try:
        t = time.perf_counter()
        out = run_checks(con, RUN, BD, contracts, b"bench-key")
        res["check_seconds"] = round(time.perf_counter() - t, 2)
        res["findings"] = out["by_rule"]
    finally:
        con.close()
    build_master(master, work)
    t = time.perf_counter()
    files = generate_report(master, RUN, a.out / "report", rule_infos())
    res["report_seconds"] = round(time.perf_counter() - t, 2)
    res["report_findings"] = files.findings
    with open_master(master) as mcon:
        t = time.perf_counter()
        pop = population(mcon, "district", BD)
        res["population_views_seconds"] = round(time.perf_counter() - t, 2)
        largest = str(pop.sort_values("population", ascending=False)["district"].iloc[0])
        roll = export_voter_roll(mcon, date(2027, 1, 1), largest, a.out / "roll.xlsx")
    res["roll"] = {"district": largest, "rows": roll.rows,
                   "query_seconds": round(roll.query_seconds, 2),
                   "xlsx_seconds": round(roll.write_seconds, 2),
                   "total_seconds": round(roll.query_seconds + roll.write_seconds, 2)}
    print(json.dumps(res, ensure_ascii=False))
    return res


if __name__ == "__main__":  # pragma: no cover
    main()
