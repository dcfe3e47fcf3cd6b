"""Publish timing on a synthetic work database (not a test; run by hand).

    .venv/bin/python -m tests.warehouse.bench_publish --persons 20000 --dir /tmp/bench

Builds a work database of the factory's shape, publishes it (first run), publishes a second run
(the previous master is attached and compared), and prints the seconds and file size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from tests.warehouse.conftest import settings_at
from tests.warehouse.factory import make_work_db
from warehouse.publish import publish


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=20000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/unigrid-bench-publish"))
    ap.add_argument("--pg-url", default=None)
    a = ap.parse_args()
    shutil.rmtree(a.dir, ignore_errors=True)
    a.dir.mkdir(parents=True)
    s = settings_at(a.dir)
    t = time.perf_counter()
    make_work_db(s.work_db, a.persons, "20261120")
    gen = time.perf_counter() - t
    r1 = publish(s, "20261120")
    make_work_db(s.work_db, a.persons, "20261121", replace=False)
    r2 = publish(s, "20261121")
    out = {"persons": a.persons, "records": r2.counts["master.person_link"],
           "work_db_seconds": round(gen, 1), "first_publish_seconds": round(r1.seconds, 2),
           "second_publish_seconds": round(r2.seconds, 2),
           "master_mb": round(s.master_db.stat().st_size / 2**20, 1)}
    if a.pg_url:
        from warehouse.postgres import publish_postgres
        import sqlalchemy as sa
        pg = publish_postgres(s.master_db, a.pg_url, run_id="20261121", prefix="bench_")
        out["postgres_seconds"] = round(pg.seconds, 2)
        engine = sa.create_engine(a.pg_url)
        with engine.begin() as conn:  # leave the server as we found it
            for name in pg.schemas:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        engine.dispose()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
