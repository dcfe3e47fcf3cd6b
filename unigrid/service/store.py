"""The service's database access: pooled read-only master snapshots, the decisions database.

- Master: one read-only connection per published file (identified by inode, mtime and size),
  shared by requests through cursors; when publish replaces the file, the next request opens
  the new one and the old connection closes once its last request ends. Opening costs tens of
  milliseconds, a cursor well under one; the service never writes the master and never takes
  the publish lock, so reads cannot block or break a publish.
- Decisions database: short-lived connections only, one at a time in this process (DuckDB
  refuses two connections of one process with different configurations) and retried while
  another process (the nightly run, another worker) holds the file.
- Access log: :class:`AccessLogWriter` journals entries to a local file (fsynced, one fsync
  per batch of concurrent requests) before the request returns, and moves them into the
  decisions database every 5 seconds with a short connection.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, TypeVar

import duckdb

from warehouse.connection import MASTER_CATALOG, connect, connect_attached
from warehouse.queries import NoMasterYet

if TYPE_CHECKING:
    import pyarrow as pa

T = TypeVar("T")

DEC_LOCK = threading.RLock()
"""Serialises every use of the decisions database inside this process."""

LOCK_RETRY_SECONDS = 10.0


JOURNAL_COLUMNS = ("at", "user", "role", "action", "person_id", "purpose")
"""The fields of one access-log journal line (all text; ``at`` is ISO 8601)."""


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

    def __init__(self, path: Path | str, threads: int | None = None):
        self.path = Path(path)
        self.threads = threads
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._key: tuple[int, int, int] | None = None
        self._free: dict[int, list[duckdb.DuckDBPyConnection]] = {}
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
        """A cursor on the newest published master (catalog selected, read-only).

        Cursors are reused: one returned by a finished request goes back to a free list of its
        connection (a new cursor plus ``USE`` costs more than the point query it serves)."""
        key = self._file_key()
        with self._lock:
            if key != self._key or self._con is None:
                new = connect_attached(self.path, read_only=True, threads=self.threads)
                if self._con is not None:
                    old = self._con
                    if self._refs.get(id(old), 0) == 0:
                        self._close_con(old)
                    else:
                        self._retired[id(old)] = old
                self._con, self._key = new, key
            base = self._con
            self._refs[id(base)] = self._refs.get(id(base), 0) + 1
            free = self._free.setdefault(id(base), [])
            cur = free.pop() if free else None
        if cur is None:
            cur = base.cursor()
            cur.execute(f"USE {MASTER_CATALOG}")
            # a missing table is an error, never a Python variable of the caller that has
            # the same name (DuckDB's replacement scans)
            cur.execute("SET python_enable_replacements = false")
        ok = False
        try:
            yield cur
            ok = True
        finally:
            with self._lock:
                n = self._refs[id(base)] - 1
                self._refs[id(base)] = n
                keep = (ok and base is self._con
                        and len(self._free.get(id(base), ())) < self.MAX_FREE)
                if keep:
                    self._free.setdefault(id(base), []).append(cur)
                if n == 0 and id(base) in self._retired:
                    self._close_con(self._retired.pop(id(base)))
                    self._refs.pop(id(base), None)
            if not keep:
                cur.close()

    MAX_FREE = 64
    """Idle cursors kept per connection."""

    def _close_con(self, con: duckdb.DuckDBPyConnection) -> None:
        """Close a connection and its idle cursors (caller holds the lock)."""
        for c in self._free.pop(id(con), []):
            c.close()
        con.close()

    def close(self) -> None:
        """Close every connection (at shutdown)."""
        with self._lock:
            for c in [self._con, *self._retired.values()]:
                if c is not None:
                    self._close_con(c)
            self._con, self._key = None, None
            self._retired.clear()


@dataclass
class _Entry:
    """One journal line and how its writer learns it is on disk (an event for a thread, a
    future on an event loop for a coroutine)."""

    line: bytes
    done: threading.Event | None = None
    future: "asyncio.Future[None] | None" = None


def _resolve(futures: list["asyncio.Future[None]"]) -> None:
    for f in futures:
        if not f.done():
            f.set_result(None)


JOURNAL_GLOB = "{name}.access-*.jsonl"


class AccessLogWriter:
    """The access log: a durable local journal first, the decisions database soon after.

    ``log`` appends the entries to this process's journal file
    (``<decisions_db>.access-<pid>-<ns>.jsonl``, held under an exclusive ``flock``) and returns
    once they are fsynced (one fsync per batch of concurrent requests). A mover thread copies
    journal entries into ``audit.access_log`` of the decisions database every ``interval``
    seconds with a short connection (so the decisions file is never held open), and
    :meth:`flush` does it at once (the access-log endpoint calls it before reading). Journals
    left by a killed process (no longer locked) are moved at start-up; entries already moved
    are not inserted twice.
    """

    def __init__(self, db: Path | str, interval: float = 5.0, rotate_bytes: int = 4_000_000):
        self.db = Path(db)
        self.db.parent.mkdir(parents=True, exist_ok=True)
        self.interval = interval
        self.rotate_bytes = rotate_bytes
        self._q: "queue.Queue[_Entry | None]" = queue.Queue()
        self._wlock = threading.Lock()  # journal file handle (write, rotate)
        self._mlock = threading.Lock()  # moving to the database
        self._stop = threading.Event()
        self._open_journal()
        self.recover()
        self._writer = threading.Thread(target=self._run_writer, name="access-journal",
                                        daemon=True)
        self._mover = threading.Thread(target=self._run_mover, name="access-mover", daemon=True)
        self._writer.start()
        self._mover.start()

    def _open_journal(self) -> None:
        import fcntl

        self.path = self.db.with_name(f"{self.db.name}.access-{os.getpid()}-"
                                      f"{time.time_ns()}.jsonl")
        self._fh = open(self.path, "ab")
        fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._moved = 0

    @staticmethod
    def _lines(user: str, role: str, action: str, person_ids: list[str | None],
               purpose: str) -> list[bytes]:
        """The journal lines of one access (one per person id)."""
        if not user.strip() or not purpose.strip():
            raise ValueError("an access needs a user and a stated purpose")
        now = datetime.now(timezone.utc).isoformat()
        return [(json.dumps(dict(zip(JOURNAL_COLUMNS, (now, user, role, action, pid, purpose))),
                            ensure_ascii=False) + "\n").encode()
                for pid in (person_ids or [None])]

    def log(self, user: str, role: str, action: str, person_ids: list[str | None],
            purpose: str, timeout: float = 30.0) -> None:
        """Journal one entry per person id; return when they are on disk."""
        entries = [_Entry(line, done=threading.Event())
                   for line in self._lines(user, role, action, person_ids, purpose)]
        for e in entries:
            self._q.put(e)
        for e in entries:
            if not e.done.wait(timeout):
                raise TimeoutError("access log not written in time")

    async def alog(self, user: str, role: str, action: str, person_ids: list[str | None],
                   purpose: str, timeout: float = 30.0) -> None:
        """:meth:`log` for a coroutine: the event loop keeps serving while the journal's
        group fsync runs; returns when the entries are on disk."""
        loop = asyncio.get_running_loop()
        entries = [_Entry(line, future=loop.create_future())
                   for line in self._lines(user, role, action, person_ids, purpose)]
        for e in entries:
            self._q.put(e)
        waits = entries[0].future if len(entries) == 1 else asyncio.gather(
            *(e.future for e in entries))  # one lookup, one entry: no gather
        try:
            await asyncio.wait_for(waits, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError("access log not written in time") from None

    def _run_writer(self) -> None:
        while True:
            first = self._q.get()
            if first is None:
                return
            batch = [first]
            while True:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._q.put(None)
                    break
                batch.append(nxt)
            with self._wlock:
                self._fh.write(b"".join(e.line for e in batch))
                self._fh.flush()
                os.fsync(self._fh.fileno())
            by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
            for e in batch:
                if e.future is not None:
                    by_loop.setdefault(e.future.get_loop(), []).append(e.future)
                elif e.done is not None:
                    e.done.set()
            for loop, futures in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_resolve, futures)
                except RuntimeError:  # loop closed: nobody waits any more
                    pass

    def _run_mover(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - retried next interval; entries stay journaled
                pass

    @staticmethod
    def _read_lines(path: Path, offset: int) -> tuple["pa.Table", int]:
        """The complete journal lines from ``offset`` on, as a table of text columns, and the
        offset after them. Parsed by Arrow's JSON reader (C++, without the GIL): the mover
        runs beside the event loop, and parsing tens of thousands of lines in Python held the
        GIL long enough to stall every lookup in flight (the p99 of the API)."""
        import io

        import pyarrow as pa
        from pyarrow import json as pj

        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1
        schema = pa.schema([(c, pa.string()) for c in JOURNAL_COLUMNS])
        if not data[:end].strip():
            return schema.empty_table(), offset + end
        table = pj.read_json(io.BytesIO(data[:end]), parse_options=pj.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior="ignore"))
        return table, offset + end

    def _insert(self, rows: "pa.Table", dedupe: bool) -> None:
        from warehouse.access_log import DDL

        if not rows.num_rows:
            return
        new = ("SELECT CAST(j.\"at\" AS TIMESTAMPTZ) AS \"at\", j.\"user\", j.role, j.action, "
               "j.person_id, j.purpose FROM journal_in j")
        if dedupe:
            new += (" ANTI JOIN audit.access_log a ON a.\"at\" = CAST(j.\"at\" AS TIMESTAMPTZ) "
                    "AND a.\"user\" = j.\"user\" AND a.action IS NOT DISTINCT FROM j.action "
                    "AND a.person_id IS NOT DISTINCT FROM j.person_id")

        def write() -> None:
            with dec_connection(self.db) as con:
                con.execute(DDL)
                con.register("journal_in", rows)
                con.execute('INSERT INTO audit.access_log ("at", "user", role, action, '
                            f"person_id, purpose) {new}")
                con.unregister("journal_in")

        retry_locked(write)

    def flush(self) -> int:
        """Move journaled entries into the decisions database now; return how many."""
        with self._mlock:
            with self._wlock:
                path, offset = self.path, self._moved
            rows, end = self._read_lines(path, offset)
            self._insert(rows, dedupe=False)
            with self._wlock:
                if path == self.path:
                    self._moved = end
                    if end >= self.rotate_bytes and end == self._fh.tell():
                        self._fh.close()
                        old = self.path
                        self._open_journal()
                        old.unlink(missing_ok=True)
            return rows.num_rows

    def recover(self) -> int:
        """Move the entries of journals left by dead processes; delete them. Return count."""
        import fcntl

        n = 0
        for p in sorted(self.db.parent.glob(JOURNAL_GLOB.format(name=self.db.name))):
            if p == self.path:
                continue
            try:
                fh = open(p, "rb")
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live process owns it
                rows, _ = self._read_lines(p, 0)
                self._insert(rows, dedupe=True)
                n += len(rows)
                p.unlink(missing_ok=True)
            finally:
                fh.close()
        return n

    def close(self) -> None:
        """Stop the threads, move what is journaled, delete this process's journal."""
        self._q.put(None)
        self._writer.join(timeout=30)
        self._stop.set()
        self._mover.join(timeout=30)
        try:
            self.flush()
        finally:
            with self._wlock:
                self._fh.close()
                if self.path.stat().st_size == self._moved:
                    self.path.unlink(missing_ok=True)
