"""Optional second target: publish the master and audit schemas to PostgreSQL.

For many concurrent readers. The DuckDB master stays the source of truth (it was audited
before this runs); PostgreSQL gets a read copy, published the same way:

1. create fresh schemas ``<prefix>master_<run>`` and ``<prefix>audit_<run>`` and migrate them to
   head with Alembic (``warehouse/migrations``; the version table goes into the new audit schema);
2. stream every table out of the DuckDB master as CSV and ``COPY`` it in (no row loop);
3. check the row counts against the DuckDB master;
4. in one transaction rename the live ``master`` / ``audit`` schemas away and the new ones in:
   readers see the old or the new master, never a half-built one;
5. drop the old schemas in a separate transaction with a short lock timeout; a reader still
   holding them only delays the drop (the next publish removes ``*_old_*`` leftovers).

Enabled by ``UNIGRID_PG_URL`` (a SQLAlchemy URL such as
``postgresql+psycopg://user@host:5432/db``).
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from warehouse.connection import connect_attached
from warehouse.schema import ALL_TABLES, TableSpec, quote

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LOGICAL_SCHEMAS = ("master", "audit")
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass
class PgPublishResult:
    """What a PostgreSQL publish did."""

    schemas: tuple[str, ...]
    counts: dict[str, int]
    seconds: float
    dropped: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    """Old schemas a reader still held: dropped by the next publish."""


class PgPublishFailed(RuntimeError):
    """The PostgreSQL copy did not match the DuckDB master; the live PostgreSQL master is kept."""


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"unsafe schema name {name!r}")
    return name


def alembic_config(connection, schemas: dict[str, str]):  # -> alembic.config.Config
    """Alembic config running ``warehouse/migrations`` on ``connection`` into ``schemas``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    cfg.attributes["schemas"] = schemas
    return cfg


def migrate(connection, schemas: dict[str, str], revision: str = "head") -> None:
    """Create (if missing) and migrate the physical schemas to ``revision``."""
    from alembic import command

    for physical in schemas.values():
        connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {_check_name(physical)}")
    command.upgrade(alembic_config(connection, schemas), revision)


def export_select(t: TableSpec) -> str:
    """DuckDB SELECT of a table with lists as PostgreSQL array literals (for CSV ``COPY``)."""
    cols = []
    for c in t.columns:
        q = quote(c.name)
        if c.type == "text_list":
            elem = ("'\"' || replace(replace(x, '\\', '\\\\'), '\"', '\\\"') || '\"'")
            cols.append(f"CASE WHEN {q} IS NULL THEN NULL ELSE '{{' || "
                        f"array_to_string(list_transform({q}, lambda x: {elem}), ',') "
                        "|| '}' END")
        else:
            cols.append(q)
    return f"SELECT {', '.join(cols)} FROM {t.qualified}"


def _copy_table(duck, pg_cursor, t: TableSpec, physical_schema: str, tmp: Path) -> int:
    csv = tmp / f"{t.schema}_{t.name}.csv"
    duck.execute(f"COPY ({export_select(t)}) TO '{csv}' (FORMAT csv, HEADER false)")
    cols = ", ".join(quote(c) for c in t.column_names())
    with pg_cursor.copy(f"COPY {physical_schema}.{quote(t.name)} ({cols}) FROM STDIN "
                        "(FORMAT csv)") as cp, open(csv, "rb") as fh:
        while chunk := fh.read(1 << 20):
            cp.write(chunk)
    csv.unlink()
    return int(duck.execute(f"SELECT count(*) FROM {t.qualified}").fetchone()[0])


def _existing_schemas(conn, like: str) -> list[str]:
    return [r[0] for r in conn.exec_driver_sql(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s ORDER BY nspname",
        (like,)).fetchall()]


def _drop_schemas(engine, names: list[str],
                  lock_timeout: str = "5s") -> tuple[list[str], list[str]]:
    dropped, deferred = [], []
    for name in names:
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{lock_timeout}'")
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {_check_name(name)} CASCADE")
            dropped.append(name)
        except Exception as exc:  # a reader still holds it: next publish drops it
            log.warning("could not drop old schema %s yet: %s", name, type(exc).__name__)
            deferred.append(name)
    return dropped, deferred


def publish_postgres(master_db_path: Path | str, url: str, run_id: str | None = None,
                     prefix: str = "", lock_timeout: str = "30s") -> PgPublishResult:
    """Copy the published DuckDB master into PostgreSQL and swap it in atomically.

    ``prefix`` is put before every schema name (``<prefix>master``, ``<prefix>audit``): tests
    use a unique one. Returns the live schema names, row counts and timing.
    """
    import sqlalchemy as sa

    t0 = time.perf_counter()
    if prefix:
        _check_name(prefix + "x")
    token = (run_id or "run") + "_" + datetime.now(timezone.utc).strftime("%H%M%S%f")
    token = re.sub(r"[^a-z0-9_]", "_", token.lower())
    live = {s: _check_name(f"{prefix}{s}") for s in LOGICAL_SCHEMAS}
    new = {s: _check_name(f"{prefix}{s}_{token}") for s in LOGICAL_SCHEMAS}
    old = {s: _check_name(f"{prefix}{s}_old_{token}") for s in LOGICAL_SCHEMAS}
    engine = sa.create_engine(url)
    try:
        ours = re.compile(rf"^{re.escape(prefix)}(master|audit)_(old_)?[a-z0-9_]*_[0-9]{{12}}$")
        with engine.connect() as conn:  # leftovers of earlier runs (killed, or a reader held them)
            leftovers = [n for n in _existing_schemas(conn, f"{prefix}%") if ours.match(n)]
        dropped, deferred = _drop_schemas(engine, leftovers)
        counts: dict[str, int] = {}
        duck = connect_attached(master_db_path, read_only=True)
        try:
            with engine.begin() as conn, tempfile.TemporaryDirectory() as tmp:
                migrate(conn, new)
                cur = conn.connection.driver_connection.cursor()
                for t in ALL_TABLES:
                    counts[t.qualified] = _copy_table(duck, cur, t, new[t.schema], Path(tmp))
                for t in ALL_TABLES:
                    n = conn.exec_driver_sql(
                        f"SELECT count(*) FROM {new[t.schema]}.{quote(t.name)}").scalar_one()
                    if n != counts[t.qualified]:
                        raise PgPublishFailed(f"{t.qualified}: {n} rows in PostgreSQL, "
                                              f"{counts[t.qualified]} in the DuckDB master")
        finally:
            duck.close()
        with engine.begin() as conn:  # the swap: one transaction
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{lock_timeout}'")
            present = set(_existing_schemas(conn, f"{prefix}%"))
            for s in LOGICAL_SCHEMAS:
                if live[s] in present:
                    conn.exec_driver_sql(f"ALTER SCHEMA {live[s]} RENAME TO {old[s]}")
                conn.exec_driver_sql(f"ALTER SCHEMA {new[s]} RENAME TO {live[s]}")
        d2, def2 = _drop_schemas(engine, [o for o in old.values()])
        dropped += d2
        deferred += def2
    except BaseException:
        try:
            _drop_schemas(engine, list(new.values()))
        finally:
            engine.dispose()
        raise
    engine.dispose()
    return PgPublishResult(tuple(live.values()), counts, time.perf_counter() - t0,
                           dropped, deferred)
