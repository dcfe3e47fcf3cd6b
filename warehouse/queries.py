"""Read helpers for the published master: short-lived read-only connections.

A reader opens the live file read-only, reads, and closes. An open connection keeps the
snapshot it opened (a publish replaces the file, not its content), so a long report stays
consistent; the next connection sees the newest run. Never hold a connection across runs.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import duckdb

from warehouse.connection import connect_attached

if TYPE_CHECKING:  # pragma: no cover
    from unigrid.settings import Settings


class NoMasterYet(FileNotFoundError):
    """No master has been published at the configured path."""


@contextmanager
def open_master(settings: "Settings | Path | str") -> Iterator[duckdb.DuckDBPyConnection]:
    """Read-only connection to the live master (``settings.master_db`` or a path); closes on exit.

    The file is attached as catalog ``mdb`` (see :func:`warehouse.connection.connect_attached`),
    so ``master.person`` and ``audit.run`` resolve.
    """
    path = Path(getattr(settings, "master_db", settings))
    if not path.exists():
        raise NoMasterYet(f"no master published at {path}: run `unigrid publish` first")
    con = connect_attached(path, read_only=True)
    try:
        yield con
    finally:
        con.close()


def latest_run(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """The newest published ``audit.run`` row as a dict (None if there is none)."""
    cur = con.execute("SELECT * FROM audit.run WHERE status = 'published' "
                      "ORDER BY finished_at DESC NULLS LAST LIMIT 1")
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description], row))


def row_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows per master / audit table of the connected master."""
    rows = con.execute("SELECT schema_name || '.' || table_name, estimated_size FROM "
                       "duckdb_tables() WHERE database_name = current_database() "
                       "AND schema_name IN ('master', 'audit')").fetchall()
    return {name: int(con.execute(f"SELECT count(*) FROM {name}").fetchone()[0])
            for name, _ in sorted(rows)}


def person_links(con: duckdb.DuckDBPyConnection, person_id: str) -> list[tuple[str, str]]:
    """The (source, source_key) records of one person."""
    return [(r[0], r[1]) for r in con.execute(
        "SELECT source, source_key FROM master.person_link WHERE person_id = ? "
        "ORDER BY source, source_key", [person_id]).fetchall()]


def resolve_person_id(con: duckdb.DuckDBPyConnection, person_id: str) -> str | None:
    """Follow merges: the id an (absorbed) person id lives on as; None if retired or unknown."""
    seen = set()
    pid = person_id
    while pid not in seen:
        seen.add(pid)
        if con.execute("SELECT 1 FROM master.person WHERE person_id = ?", [pid]).fetchone():
            return pid
        r = con.execute("SELECT person_id FROM master.person_event WHERE event = 'merge' "
                        "AND other_person_id = ? ORDER BY \"at\" DESC NULLS LAST, event_id DESC "
                        "LIMIT 1", [pid]).fetchone()
        if r is None:
            return None
        pid = r[0]
    return None
