"""The service's database access: pooled read-only master snapshots, the decisions database.

- Master: one read-only connection per published file (identified by inode, mtime and size),
  shared by requests through cursors; when publish replaces the file, the next request opens
  the new one and the old connection closes once its last request ends. Opening costs tens of
  milliseconds, a cursor well under one; the service never writes the master and never takes
  the publish lock, so reads cannot block or break a publish.
- Decisions database: short-lived connections only, one at a time in this process (DuckDB
  refuses two connections of one process with different configurations) and retried while
  another process (the nightly run, another worker) holds the file.
- Access log: :class:`AccessLogWriter` appends entries in small batches from one thread
  (group commit): a request returns only after its entry is written.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import duckdb

from warehouse.connection import MASTER_CATALOG, connect, connect_attached
from warehouse.queries import NoMasterYet

T = TypeVar("T")

DEC_LOCK = threading.RLock()
"""Serialises every use of the decisions database inside this process."""

LOCK_RETRY_SECONDS = 10.0


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "lock" in text or "conflicting" in text


def retry_locked(fn: Callable[[], T], seconds: float = LOCK_RETRY_SECONDS) -> T:
    """Call ``fn`` under :data:`DEC_LOCK`, retrying while another process holds the file."""
    deadline = time.monotonic() + seconds
    delay = 0.005
    while True:
        with DEC_LOCK:
            try:
                return fn()
            except (duckdb.IOException, duckdb.ConnectionException) as exc:
                if not _is_lock_error(exc) or time.monotonic() > deadline:
                    raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


@contextmanager
def dec_connection(db: Path | str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short read-write connection to the decisions database (lock held, retried)."""
    with DEC_LOCK:
        con = retry_locked(lambda: connect(db))
        try:
            yield con
        finally:
            con.close()


class MasterPool:
    """Read-only cursors on the live master, reopened when publish replaces the file."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._key: tuple[int, int, int] | None = None
        self._refs: dict[int, int] = {}
        self._retired: dict[int, duckdb.DuckDBPyConnection] = {}

    def _file_key(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise NoMasterYet(f"no master published at {self.path}") from None
        return st.st_ino, st.st_mtime_ns, st.st_size

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the newest published master (catalog selected, read-only)."""
        key = self._file_key()
        with self._lock:
            if key != self._key or self._con is None:
                new = connect_attached(self.path, read_only=True)
                if self._con is not None:
                    old = self._con
                    if self._refs.get(id(old), 0) == 0:
                        old.close()
                    else:
                        self._retired[id(old)] = old
                self._con, self._key = new, key
            base = self._con
            self._refs[id(base)] = self._refs.get(id(base), 0) + 1
        cur = base.cursor()
        try:
            cur.execute(f"USE {MASTER_CATALOG}")
            yield cur
        finally:
            cur.close()
            with self._lock:
                n = self._refs[id(base)] - 1
                self._refs[id(base)] = n
                if n == 0 and id(base) in self._retired:
                    self._retired.pop(id(base)).close()
                    self._refs.pop(id(base), None)

    def close(self) -> None:
        """Close every connection (at shutdown)."""
        with self._lock:
            for c in [self._con, *self._retired.values()]:
                if c is not None:
                    c.close()
            self._con, self._key = None, None
            self._retired.clear()


@dataclass
class _Entry:
    at: datetime
    user: str
    role: str
    action: str
    person_id: str | None
    purpose: str
    done: threading.Event
    error: BaseException | None = None


class AccessLogWriter:
    """Appends access-log entries to the decisions database in batches (group commit)."""

    def __init__(self, db: Path | str, max_batch: int = 500):
        self.db = Path(db)
        self.max_batch = max_batch
        self._q: "queue.Queue[_Entry | None]" = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self._thread.start()

    def log(self, user: str, role: str, action: str, person_ids: list[str | None],
            purpose: str, timeout: float = 30.0) -> None:
        """Write one entry per person id and wait until they are on disk."""
        if not user.strip() or not purpose.strip():
            raise ValueError("an access needs a user and a stated purpose")
        now = datetime.now(timezone.utc)
        entries = [_Entry(now, user, role, action, pid, purpose, threading.Event())
                   for pid in (person_ids or [None])]
        for e in entries:
            self._q.put(e)
        for e in entries:
            if not e.done.wait(timeout):
                raise TimeoutError("access log not written in time")
            if e.error is not None:
                raise RuntimeError("access log write failed") from e.error

    def _write(self, batch: list[_Entry]) -> None:
        from warehouse.access_log import DDL

        rows = [(e.at, e.user, e.role, e.action, e.person_id, e.purpose) for e in batch]
        with dec_connection(self.db) as con:
            con.execute(DDL)
            con.executemany('INSERT INTO audit.access_log ("at", "user", role, action, '
                            "person_id, purpose) VALUES (?, ?, ?, ?, ?, ?)", rows)

    def _run(self) -> None:
        while True:
            first = self._q.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._q.put(None)
                    break
                batch.append(nxt)
            try:
                self._write(batch)
            except BaseException as exc:  # noqa: BLE001 - reported to every waiting request
                for e in batch:
                    e.error = exc
            for e in batch:
                e.done.set()

    def close(self) -> None:
        """Stop the writer after the queued entries are written."""
        self._q.put(None)
        self._thread.join(timeout=30)
