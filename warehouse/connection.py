"""Connections: the one place that opens databases.

DuckDB allows one writer process or many read-only processes, never both: the pipeline writes
the work database; readers only ever open the published master read-only and briefly.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import duckdb

T = TypeVar("T")

WORK_SCHEMAS = ("meta", "raw", "staged", "quarantine", "std", "link")
"""Schemas of the work database (one run's working layers)."""


LOCK_WAIT_SECONDS = 15.0
"""How long an open waits for another process's conflicting lock (the service writes decisions
with short-lived connections; the nightly run reads them briefly)."""


def is_lock_conflict(exc: BaseException) -> bool:
    """True for DuckDB's 'Could not set lock on file' (another process holds the file), and
    for 'a different configuration than existing connections' (another connection of this
    process holds it, e.g. read-write while this one asks read-only: the service's access-log
    mover opens the decisions database for a moment every second)."""
    text = str(exc)
    return ((isinstance(exc, duckdb.IOException) and "Could not set lock" in text)
            or (isinstance(exc, duckdb.ConnectionException)
                and "different configuration" in text))


def retry_on_lock(fn: Callable[[], T], wait: float = LOCK_WAIT_SECONDS) -> T:
    """Call ``fn``; while it fails on a lock held by another process, retry with back-off
    for up to ``wait`` seconds, then raise the last error."""
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        try:
            return fn()
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            if not is_lock_conflict(exc) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def connect(path: Path | str, read_only: bool = False, threads: int | None = None,
            memory_limit: str | None = None,
            lock_wait: float = LOCK_WAIT_SECONDS) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB file (created if missing unless read-only), waiting up to ``lock_wait``
    seconds for another process's conflicting lock to go."""
    p = Path(path)
    if not read_only:
        p.parent.mkdir(parents=True, exist_ok=True)
    config: dict[str, str | int] = {}
    if threads:
        config["threads"] = threads
    if memory_limit:
        config["memory_limit"] = memory_limit
    return retry_on_lock(lambda: duckdb.connect(str(p), read_only=read_only, config=config),
                         lock_wait)


def connect_work(path: Path | str) -> duckdb.DuckDBPyConnection:
    """Open the work database for writing and make sure its schemas exist."""
    con = connect(path)
    for s in WORK_SCHEMAS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
    return con


@contextmanager
def work_db(path: Path | str) -> Iterator[duckdb.DuckDBPyConnection]:
    """Context manager around :func:`connect_work` that always closes."""
    con = connect_work(path)
    try:
        yield con
    finally:
        con.close()


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    """True if table (or view) ``schema.name`` exists in ``con``'s catalogs."""
    return bool(con.execute("SELECT count(*) FROM information_schema.tables "
                            "WHERE table_schema = ? AND table_name = ?",
                            [schema, name]).fetchone()[0])


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (source column names are Chinese or arbitrary)."""
    return '"' + name.replace('"', '""') + '"'


MASTER_CATALOG = "mdb"
"""Catalog alias under which the master file is attached (see :func:`connect_attached`)."""


def connect_attached(path: Path | str, alias: str = MASTER_CATALOG, read_only: bool = False,
                     threads: int | None = None,
                     memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the DuckDB file attached as ``alias`` and selected (USE).

    Use it for the master file: opened directly, ``master.duckdb`` gets the catalog name
    ``master``, the same as its schema ``master``, and DuckDB rejects ``master.person`` as
    ambiguous (a direct connection must write ``master.master.person``). Attached under an
    alias, ``master.person`` resolves. The file is created if missing unless read-only.
    """
    p = Path(path)
    if not read_only:
        p.parent.mkdir(parents=True, exist_ok=True)
    con = connect(":memory:", threads=threads, memory_limit=memory_limit)
    try:
        lit = str(p).replace("'", "''")
        con.execute(f"ATTACH '{lit}' AS {alias}{' (READ_ONLY)' if read_only else ''}")
        con.execute(f"USE {alias}")
    except BaseException:
        con.close()
        raise
    return con
