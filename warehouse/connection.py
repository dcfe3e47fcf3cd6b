"""Connections: the one place that opens databases.

DuckDB allows one writer process or many read-only processes, never both: the pipeline writes
the work database; readers only ever open the published master read-only and briefly.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

WORK_SCHEMAS = ("meta", "raw", "staged", "quarantine", "std", "link")
"""Schemas of the work database (one run's working layers)."""


def connect(path: Path | str, read_only: bool = False, threads: int | None = None,
            memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB file (created if missing unless read-only)."""
    p = Path(path)
    if not read_only:
        p.parent.mkdir(parents=True, exist_ok=True)
    config: dict[str, str | int] = {}
    if threads:
        config["threads"] = threads
    if memory_limit:
        config["memory_limit"] = memory_limit
    return duckdb.connect(str(p), read_only=read_only, config=config)


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


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (source column names are Chinese or arbitrary)."""
    return '"' + name.replace('"', '""') + '"'
