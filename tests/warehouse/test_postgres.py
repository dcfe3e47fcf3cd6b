"""PostgreSQL target against the real server: migrations, copy, atomic schema swap."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.conftest import PG_URL
from tests.warehouse.factory import make_work_db
from unigrid.settings import Settings
from warehouse.postgres import export_select, migrate, publish_postgres
from warehouse.publish import amend_master, publish, publish_stage
from warehouse.schema import ALL_TABLES, PG_TYPES, table

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg():
    """An engine and a unique schema prefix; every schema with that prefix is dropped after."""
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    engine = sa.create_engine(PG_URL)
    yield engine, prefix
    with engine.begin() as conn:
        names = [r[0] for r in conn.exec_driver_sql(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (prefix,))]
        for n in names:
            conn.exec_driver_sql(f"DROP SCHEMA {n} CASCADE")
    engine.dispose()


def _schemas(engine, prefix: str) -> list[str]:
    with engine.connect() as conn:
        return sorted(r[0] for r in conn.exec_driver_sql(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (prefix,)))


def test_migrations_build_exactly_the_declared_tables(pg) -> None:
    engine, prefix = pg
    schemas = {"master": f"{prefix}m", "audit": f"{prefix}a"}
    with engine.begin() as conn:
        migrate(conn, schemas)
    with engine.connect() as conn:
        for t in ALL_TABLES:
            rows = conn.exec_driver_sql(
                "SELECT column_name, format_type(a.atttypid, a.atttypmod), is_nullable "
                "FROM information_schema.columns c JOIN pg_attribute a ON "
                "a.attrelid = (quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))"
                "::regclass AND a.attname = c.column_name "
                "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                (schemas[t.schema], t.name)).fetchall()
            assert [r[0] for r in rows] == list(t.column_names()), t.qualified
            for (name, typ, nullable), c in zip(rows, t.columns):
                assert typ == PG_TYPES[c.type], f"{t.qualified}.{name}: {typ}"
                assert (nullable == "YES") == c.nullable, f"{t.qualified}.{name}"
        version = conn.exec_driver_sql(
            f"SELECT version_num FROM {schemas['audit']}.alembic_version").scalar_one()
        assert version == "0004"


def test_publish_copies_every_table_and_swaps(settings: Settings, pg) -> None:
    engine, prefix = pg
    publish(settings, "20261120")
    amend_master(settings, lambda con: con.execute(
        """INSERT INTO audit.finding (finding_id, rule, person_id, status, evidence,
           amount_monthly, amount_total, months) VALUES ('r:P1', 'deceased_pensioner',
           'P000000000001', 'open', '{"a": [1, 2]}', 2350.00, 4700.00, 2)"""))
    r1 = publish_postgres(settings.master_db, PG_URL, run_id="20261120", prefix=prefix)
    assert r1.schemas == (f"{prefix}master", f"{prefix}audit")
    assert r1.counts["master.person"] == 40 and r1.counts["audit.finding"] == 1
    with engine.connect() as conn:
        m, a = r1.schemas
        assert conn.exec_driver_sql(f"SELECT count(*) FROM {m}.person").scalar_one() == 40
        row = conn.exec_driver_sql(
            f"SELECT sources, is_deceased, birth_date FROM {m}.person "
            "WHERE person_id = 'P000000000001'").one()
        assert row[0] == ["grid_collection", "hrss_pension_ledger", "ps_household_registry"]
        assert row[1] is False
        f = conn.exec_driver_sql(f"SELECT evidence, amount_total FROM {a}.finding").one()
        assert f == ({"a": [1, 2]}, Decimal("4700.00"))
        run = conn.exec_driver_sql(f"SELECT run_id, checks->0->>'check' FROM {a}.run").one()
        assert run == ("20261120", "staged_records_linked")
        empty = conn.exec_driver_sql(f"SELECT count(*) FROM {m}.household WHERE "
                                     "cancel_reason = ''").scalar_one()
        assert empty == 0  # NULL stays NULL through CSV
    # second publish: a reader in an open transaction keeps working; the swap goes through
    make_work_db(settings.work_db, persons=41, run_id="20261121", replace=False)
    publish(settings, "20261121")
    reader = engine.connect()
    tx = reader.begin()
    assert reader.exec_driver_sql(f"SELECT count(*) FROM {prefix}master.person").scalar_one() == 40
    r2 = publish_postgres(settings.master_db, PG_URL, run_id="20261121", prefix=prefix,
                          lock_timeout="20s")
    assert r2.counts["master.person"] == 41
    assert len(r2.deferred) == 1 and "master_old_" in r2.deferred[0]  # held by the reader
    tx.rollback()
    reader.close()
    with engine.connect() as conn:
        assert conn.exec_driver_sql(
            f"SELECT count(*) FROM {prefix}master.person").scalar_one() == 41
    # the third publish removes what the reader held
    r3 = publish_postgres(settings.master_db, PG_URL, run_id="20261121", prefix=prefix)
    assert r2.deferred[0] in r3.dropped
    assert _schemas(engine, prefix) == [f"{prefix}audit", f"{prefix}master"]


def test_failed_copy_keeps_live_schemas(settings: Settings, pg, monkeypatch) -> None:
    engine, prefix = pg
    publish(settings, "20261120")
    publish_postgres(settings.master_db, PG_URL, run_id="20261120", prefix=prefix)
    import warehouse.postgres as wp

    def broken(*a, **k):
        raise RuntimeError("copy interrupted")

    monkeypatch.setattr(wp, "_copy_table", broken)
    with pytest.raises(RuntimeError, match="copy interrupted"):
        publish_postgres(settings.master_db, PG_URL, run_id="20261121", prefix=prefix)
    assert _schemas(engine, prefix) == [f"{prefix}audit", f"{prefix}master"]
    with engine.connect() as conn:
        assert conn.exec_driver_sql(
            f"SELECT count(*) FROM {prefix}master.person").scalar_one() == 40


def test_publish_stage_with_unreachable_pg_is_partial(settings: Settings) -> None:
    from dataclasses import replace
    from datetime import date

    from unigrid.stages import RunContext
    s = replace(settings, extra={"UNIGRID_PG_URL": "postgresql+psycopg://nobody@127.0.0.1:1/x"})
    r = publish_stage(s, RunContext.for_date(date(2026, 11, 20)))
    assert r.status == "partial" and any("PostgreSQL publish failed" in m for m in r.messages)
    assert r.counts["persons"] == 40  # the DuckDB master is published regardless


def test_list_export_escapes_quotes() -> None:
    import duckdb
    con = duckdb.connect()
    con.execute("CREATE SCHEMA master")
    con.execute("CREATE TABLE master.person (person_id VARCHAR, sources VARCHAR[])")
    con.execute("""INSERT INTO master.person VALUES ('a', ['x"y', 'b\\c']), ('b', NULL)""")
    t = table("master.person")
    sel = export_select(type(t)(t.schema, t.name, t.doc, t.filled_by,
                                tuple(c for c in t.columns if c.name in ("person_id", "sources")),
                                t.primary_key))
    assert con.execute(sel).fetchall() == [("a", '{"x\\"y","b\\\\c"}'), ("b", None)]
