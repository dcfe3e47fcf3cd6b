"""Opening a DuckDB file another process holds waits for it, within a bound; table_exists."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import duckdb
import pytest

from warehouse.connection import connect, is_lock_conflict


def _hold(path: str, seconds: float, ready) -> None:
    con = duckdb.connect(path)
    ready.set()
    time.sleep(seconds)
    con.close()


@pytest.fixture
def held(tmp_path: Path):
    path = tmp_path / "d.duckdb"
    duckdb.connect(str(path)).close()
    ctx = mp.get_context("spawn")
    ready = ctx.Event()

    def start(seconds: float):
        p = ctx.Process(target=_hold, args=(str(path), seconds, ready))
        p.start()
        assert ready.wait(30)
        return p
    return path, start


def test_waits_for_a_short_lock(held) -> None:
    path, start = held
    p = start(1.0)
    con = connect(path, read_only=True, lock_wait=20)
    assert con.execute("SELECT 42").fetchone() == (42,)
    con.close()
    p.join()


def test_gives_up_after_the_bound(held) -> None:
    path, start = held
    p = start(8.0)
    t0 = time.monotonic()
    with pytest.raises(duckdb.IOException) as err:
        connect(path, read_only=True, lock_wait=0.5)
    assert is_lock_conflict(err.value)
    assert time.monotonic() - t0 < 5
    p.join()


def test_waits_for_another_connection_of_this_process(tmp_path: Path) -> None:
    """A read-write connection of this process (the service's access-log mover) makes a
    read-only open fail with 'different configuration' until it closes: that is waited for."""
    import threading

    path = tmp_path / "d.duckdb"
    rw = duckdb.connect(str(path))
    with pytest.raises(duckdb.ConnectionException) as err:
        connect(path, read_only=True, lock_wait=0.2)
    assert is_lock_conflict(err.value)
    threading.Timer(0.5, rw.close).start()
    con = connect(path, read_only=True, lock_wait=20)
    assert con.execute("SELECT 42").fetchone() == (42,)
    con.close()


@pytest.mark.parametrize("schema, name, exists", [
    ("s", "t", True), ("s", "v", True), ("s", "missing", False), ("main", "t", False),
])
def test_table_exists(schema: str, name: str, exists: bool) -> None:
    from warehouse.connection import table_exists

    con = duckdb.connect()
    con.execute("CREATE SCHEMA s; CREATE TABLE s.t (x INT); CREATE VIEW s.v AS SELECT 1 AS y")
    assert table_exists(con, schema, name) is exists
