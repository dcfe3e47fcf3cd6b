"""Write-audit-publish of the master database.

A run builds its master in a new file next to the live one (``master.duckdb.building-<run>``),
checks it, and only then swaps it in with ``os.replace`` (atomic on POSIX):

1. take the master lock (``master.duckdb.lock``; anyone who rewrites the live master holds it);
   remove building files a killed run left behind;
2. build every master table in SQL (:mod:`warehouse.master_build`), the work database, the
   previous master and the decisions database attached read-only; carry the audit history
   (run, finding, access_log) forward. Two modes build the same content:

   - ``full``: the tables are built in the empty building file, unkeyed;
   - ``incremental`` (a previous master of today's schema exists and no full rebuild was
     asked): the building file starts as a byte copy of the live master and the new content is
     built in a scratch catalog (:mod:`warehouse.master_diff`);
3. audit the new content: every staged record linked exactly once, no link to a missing person,
   unique ids, row counts against the previous master within :class:`PublishBounds`;
4. on success: ``full`` keys the tables; ``incremental`` deletes the changed / vanished rows of
   the copy and inserts the new / changed ones by primary key (keys and indexes maintained, not
   rebuilt); then the ``audit.run`` row, ``CHECKPOINT``, close, fsync, ``os.replace`` onto the
   live name. Readers holding the old file keep their snapshot; new connections see the new
   run. On failure: delete the building file, keep the live master byte-identical, record the
   failure beside it (``.failed-<run>-<time>.json``, folded into ``audit.run`` by the next
   publish) and raise :class:`PublishCheckFailed` naming every failed check.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import duckdb

from warehouse.connection import connect_attached
from warehouse.master_build import (DECISIONS, PREV, STATE, WORK, add_primary_keys,
                                    build_master, columns_of, table_counts)
from warehouse.master_diff import FRESH, apply_all, declared_signature, schema_signature
from warehouse.person_doc import refresh_person_docs
from warehouse.schema import MASTER_TABLES, quote, table

if TYPE_CHECKING:  # pragma: no cover
    from unigrid.settings import Settings
    from unigrid.stages import RunContext, StageResult

log = logging.getLogger(__name__)

BUILD = "build"

DOC_TABLE = "master.person_doc"
"""Rendered last, and on an incremental publish only for the touched persons."""
"""Catalog alias of the file being built."""


@dataclass(frozen=True)
class PublishBounds:
    """How far row counts may move against the previous master before publish refuses.

    A table may shrink by at most ``max_shrink`` and grow by at most ``max_grow`` (fractions of
    the previous count) unless the run is forced. Tables with fewer than ``min_previous`` rows
    in the previous master are not compared (a first small run says little).
    """

    max_shrink: float = 0.05
    max_grow: float = 0.20
    tables: tuple[str, ...] = ("master.person", "master.person_link", "master.house")
    min_previous: int = 1


DEFAULT_BOUNDS = PublishBounds()


@dataclass(frozen=True)
class CheckResult:
    """One audit check: its name, whether it passed, and what it found (no personal data)."""

    check: str
    ok: bool
    detail: str = ""

    def __str__(self) -> str:
        tail = f" - {self.detail}" if self.detail else ""
        return f"{self.check}: {'ok' if self.ok else 'FAILED'}{tail}"


@dataclass
class PublishResult:
    """What a successful publish did."""

    run_id: str
    master_db: Path
    counts: dict[str, int]
    checks: list[CheckResult]
    seconds: float
    previous_run_id: str | None = None
    forced: bool = False
    removed_leftovers: list[str] = field(default_factory=list)
    mode: str = "full"
    """``full`` (built from scratch) or ``incremental`` (copy of the live master, diff applied)."""
    mode_reason: str = ""
    """Why this mode (e.g. ``no previous master``, ``schema changed``)."""
    changes: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per table: rows ``inserted`` into and ``deleted`` from the previous master's content
    (a full publish writes every row: inserted = its rows, deleted = the previous rows)."""
    delta: str = ""
    """Incremental only: why the night's deltas did (``deltas: ...``) or did not (``full build
    and diff: ...``) drive the publish (:mod:`warehouse.master_delta`)."""
    touched: dict[str, int] = field(default_factory=dict)
    """Touched records / persons when the deltas drove the publish."""
    steps: dict[str, float] = field(default_factory=dict)
    """Seconds per step (mode, copy, build, checks, apply / keys, checkpoint, swap; and
    ``apply <table>`` for the three slowest tables of an incremental apply)."""


class PublishCheckFailed(RuntimeError):
    """The new master failed its audit: the previous master was kept. Lists every failed check."""

    def __init__(self, run_id: str, failed: list[CheckResult], master_db: Path | None = None):
        self.run_id = run_id
        self.failed = failed
        kept = f"; the previous master {master_db} is kept" if master_db else ""
        super().__init__(f"publish of run {run_id} failed {len(failed)} check(s){kept}: "
                         + "; ".join(str(c) for c in failed))


Hook = Callable[[str], None]
"""Called with a step name (``built``, ``checked``, ``applied`` (diff applied to the copy, or keys
added), ``before_swap``); tests use it to stop a run."""

MASK_KEY_SQL = (
    "regexp_replace(regexp_replace(k, "
    "'(^|[^0-9])([0-9]{{6}})[0-9]{{8}}([0-9]{{3}}[0-9Xx])($|[^0-9A-Za-z])', "
    "'\\1\\2********\\3\\4', 'g'), "
    "'(^|[^0-9])([0-9]{{6}})[0-9]{{5}}([0-9]{{4}})($|[^0-9A-Za-z])', "
    "'\\1\\2*****\\3\\4', 'g')")
"""Masks ID-number-like digit runs (18 or 15 digits) in check examples: first 6 + last 4."""

_RECORD_KEYS = ("(SELECT source, source_key FROM staged_now "
                "UNION SELECT source, source_key FROM rec)")

INTEGRITY_CHECKS: tuple[tuple[str, str, str], ...] = (
    ("staged_records_linked", "current staged records without a person_link",
     f"""SELECT source || ':' || source_key AS k FROM {_RECORD_KEYS} r
         ANTI JOIN master.person_link l USING (source, source_key)"""),
    ("links_unique", "records linked more than once",
     """SELECT source || ':' || source_key AS k FROM master.person_link
        GROUP BY source, source_key HAVING count(*) > 1"""),
    ("links_to_records", "person_link rows naming no current staged record",
     f"""SELECT l.source || ':' || l.source_key AS k FROM master.person_link l
         ANTI JOIN {_RECORD_KEYS} r USING (source, source_key)"""),
    ("links_to_persons", "person_link rows pointing at a missing person",
     """SELECT l.source || ':' || l.source_key || ' -> ' || coalesce(l.person_id, 'NULL') AS k
        FROM master.person_link l ANTI JOIN master.person p USING (person_id)"""),
    ("person_id_unique", "person ids occurring more than once (or NULL)",
     """SELECT coalesce(person_id, 'NULL') AS k FROM master.person GROUP BY person_id
        HAVING count(*) > 1 OR person_id IS NULL"""),
    ("persons_have_links", "persons without any linked record",
     """SELECT p.person_id AS k FROM master.person p
        ANTI JOIN master.person_link l USING (person_id)"""),
)
"""Integrity checks: name, what a counted row means, SQL listing the offending keys as ``k``."""


def _keys_unique_sql() -> str:
    parts = []
    for t in MASTER_TABLES:
        if t.qualified in ("master.person", "master.person_link"):
            continue  # named checks above
        key = ", ".join(quote(k) for k in t.primary_key)
        parts.append(f"SELECT '{t.name}(' || concat_ws(',', {key}) || ')' AS k FROM "
                     f"{t.qualified} GROUP BY {key} HAVING count(*) > 1")
    return " UNION ALL ".join(parts)


def run_integrity_checks(con: duckdb.DuckDBPyConnection, examples: int = 5,
                         checks: tuple[tuple[str, str, str], ...] | None = None
                         ) -> list[CheckResult]:
    """Run the integrity checks in the builder connection (needs its temp tables); ``checks``
    (name, meaning, SQL of offending keys ``k``) default to the full set."""
    out = []
    if checks is None:
        checks = INTEGRITY_CHECKS + (("keys_unique", "duplicate primary keys in the other "
                                      "master tables", _keys_unique_sql()),)
    for name, meaning, sql in checks:
        n, ex = con.execute(
            f"SELECT count(*), list({MASK_KEY_SQL.format()} ORDER BY k)[1:{examples}] "
            f"FROM ({sql}) q").fetchone()
        out.append(CheckResult(name, n == 0, "" if n == 0 else
                               f"{n} {meaning} (e.g. {', '.join(ex)})"))
    return out


def bounds_check(new: dict[str, int], previous: dict[str, int], bounds: PublishBounds,
                 force: bool = False) -> CheckResult:
    """Row counts against the previous master in ``bounds`` (if forced: waived, reported)."""
    problems, compared = [], []
    for t in bounds.tables:
        p, n = previous.get(t), new.get(t, 0)
        if p is None or p < bounds.min_previous:
            continue
        lo, hi = p * (1 - bounds.max_shrink), p * (1 + bounds.max_grow)
        compared.append(f"{t} {p}->{n}")
        if n < lo or n > hi:
            problems.append(f"{t} {p} -> {n} ({(n - p) / p:+.1%}; allowed "
                            f"-{bounds.max_shrink:.0%}..+{bounds.max_grow:.0%})")
    if not problems:
        return CheckResult("row_counts_within_bounds", True,
                           ", ".join(compared) if compared else "no previous master to compare")
    if force:
        return CheckResult("row_counts_within_bounds", True,
                           "waived by force: " + "; ".join(problems))
    return CheckResult("row_counts_within_bounds", False,
                       "; ".join(problems) + " (publish with force to accept)")


PUBLISH_MEMORY_LIMIT = "3GB"
"""DuckDB memory limit of the publish connection (it spills to its temp directory past it);
override with ``UNIGRID_PUBLISH_MEMORY_LIMIT``. Without it DuckDB takes up to 80 % of the
machine: 10.9 GB at 1,000,000 persons."""


def publish_memory_limit(settings: "Settings") -> str:
    """The publish connection's DuckDB memory limit (``UNIGRID_PUBLISH_MEMORY_LIMIT``)."""
    return dict(settings.extra).get("UNIGRID_PUBLISH_MEMORY_LIMIT") or PUBLISH_MEMORY_LIMIT


def building_path(live: Path, run_id: str) -> Path:
    """Where a run builds its master: next to the live file (same file system)."""
    return live.with_name(f"{live.name}.building-{run_id}")


def cleanup_leftovers(live: Path) -> list[str]:
    """Delete building files (and their WAL) that a killed run left; return their names."""
    removed = []
    for p in sorted(live.parent.glob(f"{live.name}.building-*")):
        p.unlink(missing_ok=True)
        removed.append(p.name)
    if removed:
        log.warning("removed leftover building files of interrupted publishes: %s", removed)
    return removed


@contextmanager
def master_lock(live: Path | str, timeout: float | None = None) -> Iterator[None]:
    """Exclusive lock of the live master for anyone who rewrites it (publish, amend).

    Readers do not take it. The lock dies with its process, so a killed run never blocks the
    next one. ``timeout`` None waits forever.
    """
    lock = Path(str(live) + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        t0 = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if timeout is not None and time.monotonic() - t0 > timeout:
                    raise TimeoutError(f"{lock} is held by another publish") from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)


def _fsync_path(p: Path) -> None:
    fd = os.open(p, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def swap_in(building: Path, live: Path) -> None:
    """fsync the closed building file, replace the live file with it, fsync the folder."""
    wal = Path(str(building) + ".wal")
    if wal.exists():
        raise RuntimeError(f"{building} still has a WAL after CHECKPOINT and close")
    live_wal = Path(str(live) + ".wal")
    if live_wal.exists():  # a writer of the old master died: its WAL must not meet the new file
        log.warning("removing stale %s before the swap", live_wal)
        live_wal.unlink()
    _fsync_path(building)
    os.replace(building, live)
    _fsync_path(live.parent)


def _failure_files(live: Path) -> list[Path]:
    return sorted(live.parent.glob(f"{live.name}.failed-*.json"))


def _write_failure(live: Path, row: dict) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    p = live.with_name(f"{live.name}.failed-{row['run_id']}-{stamp}.json")
    p.write_text(json.dumps(row, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    return p


def _insert_run(con: duckdb.DuckDBPyConnection, row: dict) -> None:
    cols = table("audit.run").column_names()
    vals = [json.dumps(row.get(c), ensure_ascii=False) if c in ("counts", "checks")
            else row.get(c) for c in cols]
    con.execute(f"INSERT OR REPLACE INTO audit.run ({', '.join(quote(c) for c in cols)}) "
                f"VALUES ({', '.join('?' for _ in cols)})", vals)


def _run_row(run_id: str, status: str, started: datetime, t0: float, forced: bool,
             counts: dict[str, int], checks: list[CheckResult], previous: str | None,
             message: str) -> dict:
    return {
        "run_id": run_id, "started_at": started, "finished_at": datetime.now(timezone.utc),
        "status": status, "forced": forced, "seconds": round(time.perf_counter() - t0, 3),
        "persons": counts.get("master.person"), "person_links": counts.get("master.person_link"),
        "houses": counts.get("master.house"), "counts": counts,
        "checks": [asdict(c) for c in checks],
        "failed_checks": [c.check for c in checks if not c.ok],
        "previous_run_id": previous, "message": message,
    }


def _previous_run_id(con: duckdb.DuckDBPyConnection) -> str | None:
    if not columns_of(con, PREV, "audit", "run"):
        return None
    r = con.execute(f"SELECT run_id FROM {PREV}.audit.run WHERE status = 'published' "
                    "ORDER BY finished_at DESC NULLS LAST LIMIT 1").fetchone()
    return r[0] if r else None


def _sql_path(path: Path) -> str:
    """A path as the inside of a SQL string literal."""
    return str(path).replace("'", "''")


def _attach(con: duckdb.DuckDBPyConnection, path: Path, alias: str) -> None:
    from warehouse.connection import retry_on_lock
    sql = f"ATTACH '{str(path).replace(chr(39), chr(39) * 2)}' AS {alias} (READ_ONLY)"
    retry_on_lock(lambda: con.execute(sql))


def choose_mode(live: Path, full_rebuild: bool) -> tuple[str, str]:
    """``(mode, reason)``: ``incremental`` when the live master can be brought up to date.

    Full when asked, when there is no live master, when a writer of it died (its WAL is still
    there), or when its catalog is not exactly the one a full publish creates today (a schema
    change, or a master written by another schema version).
    """
    if full_rebuild:
        return "full", "full rebuild asked"
    if not live.exists():
        return "full", "no previous master"
    if Path(str(live) + ".wal").exists():
        return "full", "previous master has a stale WAL"
    try:
        con = connect_attached(live, PREV, read_only=True)
    except duckdb.Error as exc:
        return "full", f"previous master unreadable ({type(exc).__name__})"
    try:
        same = schema_signature(con, PREV) == declared_signature()
    finally:
        con.close()
    if not same:
        return "full", "schema of the previous master differs from the declarations"
    return "incremental", "previous master has today's schema"


def _flag(settings: "Settings", name: str, default: bool) -> bool:
    v = dict(settings.extra).get(name)
    return default if v is None or v == "" else v.lower() in ("1", "true", "yes")


def _copy_state(con: duckdb.DuckDBPyConnection) -> None:
    """The full build's ``publish_state`` (in ``fresh``) replaces the building copy's."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {BUILD}.{STATE}")
    for name in ("rec", "house_base", "meta"):
        con.execute(f"CREATE OR REPLACE TABLE {BUILD}.{STATE}.{name} AS "
                    f"SELECT * FROM {FRESH}.{STATE}.{name}")


def _delta_checks(con: duckdb.DuckDBPyConnection, full: bool) -> list[CheckResult]:
    """The audit of a delta-driven publish, on the building file after the apply: scoped to
    the touched keys, or the full checks when ``full`` (``UNIGRID_PUBLISH_FULL_CHECKS=1``)."""
    from warehouse.master_delta import SCOPED_CHECKS
    if full:
        con.execute(f"CREATE OR REPLACE TEMP VIEW rec AS SELECT * FROM {BUILD}.{STATE}.rec")
        return run_integrity_checks(con)
    return run_integrity_checks(con, checks=SCOPED_CHECKS)


def publish(settings: "Settings", run_id: str, bounds: PublishBounds = DEFAULT_BOUNDS,
            force: bool = False, hook: Hook | None = None,
            full_rebuild: bool = False) -> PublishResult:
    """Build, audit and atomically publish the master of ``run_id`` from the work database.

    Incremental when :func:`choose_mode` allows (``full_rebuild`` forces a build from scratch);
    both modes publish the same content. An incremental publish is driven by the night's deltas
    when :func:`warehouse.master_delta.plan` allows (``UNIGRID_PUBLISH_DELTA=0`` turns that off;
    ``UNIGRID_PUBLISH_FULL_CHECKS=1`` runs the full audit instead of the scoped one). Raises
    :class:`PublishCheckFailed` (every failed check listed) and keeps the previous master when
    the audit fails; any other error also keeps it and propagates.
    """
    import shutil

    live = Path(settings.master_db)
    live.parent.mkdir(parents=True, exist_ok=True)
    started, t0 = datetime.now(timezone.utc), time.perf_counter()
    step = hook or (lambda _name: None)
    steps: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        steps[name] = round(steps.get(name, 0.0) + now - clock[0], 3)
        clock[0] = now

    with master_lock(live):
        removed = cleanup_leftovers(live)
        building = building_path(live, run_id)
        fresh = building.with_name(building.name + ".fresh")
        counts: dict[str, int] = {}
        checks: list[CheckResult] = []
        previous: str | None = None
        imported: list[Path] = []
        changes: dict[str, dict[str, int]] = {}
        delta_note, touched = "", {}
        mode, reason = choose_mode(live, full_rebuild)
        log.info("publish of run %s: %s (%s)", run_id, mode, reason)
        lap("mode")
        try:
            incremental = mode == "incremental"
            if incremental:
                shutil.copyfile(live, building)
                lap("copy")
            con = connect_attached(building, BUILD, memory_limit=publish_memory_limit(settings))
            try:
                has_prev = live.exists()
                has_dec = Path(settings.decisions_db).exists()
                work = Path(settings.work_db)
                if not work.exists():
                    raise LookupError(f"no work database at {work}: run the earlier stages")
                try:
                    _attach(con, work, WORK)
                except duckdb.Error as exc:  # e.g. still open for writing in this process
                    raise RuntimeError(f"cannot attach the work database {work} read-only "
                                       f"(close other connections to it first): {exc}") from exc
                if has_prev:
                    _attach(con, live, PREV)
                if has_dec:
                    _attach(con, Path(settings.decisions_db), DECISIONS)
                previous = _previous_run_id(con) if has_prev else None
                per_table: dict[str, float] = {}
                delta_changes = None
                if incremental:  # build the new content beside the copy, then diff
                    # a scratch file next to the building one, not ':memory:': the fresh
                    # tables live on disk and only DuckDB's buffer pool is in RAM
                    fresh.unlink(missing_ok=True)
                    con.execute(f"ATTACH '{_sql_path(fresh)}' AS {FRESH}")
                    from warehouse import master_delta
                    if _flag(settings, "UNIGRID_PUBLISH_DELTA", True):
                        dp = master_delta.plan(
                            con, run_id, previous, golden_premise=_flag(
                                settings, "UNIGRID_PUBLISH_GOLDEN_CHECK", False))
                    else:
                        dp = master_delta.DeltaPlan(False, "turned off (UNIGRID_PUBLISH_DELTA)")
                    touched = dp.counts
                    lap("plan")
                    if dp.ok:
                        try:
                            delta_changes = master_delta.build_and_apply(con, run_id, has_dec,
                                                                         per_table)
                        except master_delta.DeltaCheckFailed as exc:
                            raise PublishCheckFailed(
                                run_id, [CheckResult(exc.check, False, exc.detail)], live) \
                                from exc
                        if delta_changes is None:
                            dp = master_delta.DeltaPlan(False, "a district's name changes")
                    delta_note = (f"deltas: {dp.reason}" if dp.ok
                                  else f"full build and diff: {dp.reason}")
                    log.info("publish of run %s: %s", run_id, delta_note)
                    con.execute(f"USE {FRESH}")
                if delta_changes is not None:  # the touched rows are built and applied
                    con.execute(f"USE {BUILD}")
                    changes = delta_changes
                    lap("build")
                    step("built")
                    counts = table_counts(con, BUILD)
                    prev_counts = table_counts(con, PREV)
                    checks = _delta_checks(con, _flag(settings, "UNIGRID_PUBLISH_FULL_CHECKS",
                                                      False))
                else:
                    counts = build_master(con, run_id, has_prev, has_dec,
                                          person_doc=not incremental)
                    lap("build")
                    step("built")
                    prev_counts = table_counts(con, PREV) if has_prev else {}
                    checks = run_integrity_checks(con)
                checks.append(bounds_check(counts, prev_counts, bounds, force))
                lap("checks")
                step("checked")
                failed = [c for c in checks if not c.ok]
                if failed:
                    raise PublishCheckFailed(run_id, failed, live)
                if incremental:
                    con.execute(f"USE {BUILD}")
                    if delta_changes is None:
                        changes = apply_all(con, BUILD, FRESH, run_id, per_table,
                                            skip=(DOC_TABLE,), keep=True)
                        _copy_state(con)
                    t_doc = time.perf_counter()
                    changes[DOC_TABLE] = refresh_person_docs(con, run_id, PREV, BUILD)
                    per_table[DOC_TABLE] = round(time.perf_counter() - t_doc, 3)
                    counts[DOC_TABLE] = int(con.execute(
                        f"SELECT count(*) FROM {DOC_TABLE}").fetchone()[0])
                    con.execute(f"DETACH {FRESH}")
                    fresh.unlink(missing_ok=True)
                    lap("apply")
                    slow = sorted(per_table.items(), key=lambda kv: -kv[1])[:5]
                    steps.update({f"apply {t}": s for t, s in slow})
                    log.info("publish of run %s: seconds per table / step %s", run_id,
                             per_table)
                else:
                    add_primary_keys(con)
                    changes = {t: {"inserted": n, "deleted": prev_counts.get(t, 0)}
                               for t, n in counts.items()}
                    lap("keys")
                step("applied")
                for p in _failure_files(live):
                    _insert_run(con, {**json.loads(p.read_text(encoding="utf-8"))})
                    imported.append(p)
                n = counts.get("master.person", 0)
                changed = sum(c["inserted"] + c["deleted"] for c in changes.values())
                _insert_run(con, _run_row(run_id, "published", started, t0, force, counts,
                                          checks, previous,
                                          f"published {n} persons ({mode}: {reason}"
                                          f"{'; ' + delta_note if delta_note else ''}; "
                                          f"{changed} rows inserted or deleted)"))
                for alias in (WORK, PREV, DECISIONS):
                    if alias == WORK or (alias == PREV and has_prev) or \
                            (alias == DECISIONS and has_dec):
                        con.execute(f"DETACH {alias}")
                con.execute(f"CHECKPOINT {BUILD}")
            finally:
                con.close()
            lap("checkpoint")
            step("before_swap")
            swap_in(building, live)
            lap("swap")
        except BaseException as exc:
            for p in (building, Path(str(building) + ".wal"), fresh, Path(str(fresh) + ".wal")):
                p.unlink(missing_ok=True)
            if isinstance(exc, Exception):
                msg = (str(exc) if isinstance(exc, PublishCheckFailed)
                       else f"{type(exc).__name__}: {exc}")
                _write_failure(live, _run_row(run_id, "failed", started, t0, force, counts,
                                              checks, previous, f"{mode}: {msg}"[:2000]))
                log.error("publish of run %s (%s) failed; previous master kept: %s", run_id,
                          mode, msg)
            raise
        for p in imported:
            p.unlink(missing_ok=True)
    seconds = time.perf_counter() - t0
    log.info("published run %s to %s in %.1f s (%s; steps %s)", run_id, live, seconds, mode,
             steps)
    return PublishResult(run_id, live, counts, checks, seconds, previous, force, removed,
                         mode, reason, changes, delta_note, touched, steps)


def amend_master(settings: "Settings", apply: Callable[[duckdb.DuckDBPyConnection], None],
                 label: str = "amend") -> None:
    """Change the live master without disturbing readers: copy, ``apply``, swap.

    For writers after publish (e.g. the check stage writing ``audit.finding``, an auditor's
    status change): the copy is made under the master lock, ``apply`` runs on a writable
    connection to it, and the result replaces the live file atomically.
    """
    import shutil

    live = Path(settings.master_db)
    with master_lock(live):
        if not live.exists():
            raise FileNotFoundError(f"no published master at {live}")
        work = building_path(live, f"{label}-{os.getpid()}")
        try:
            shutil.copyfile(live, work)
            con = connect_attached(work, BUILD)
            try:
                apply(con)
                con.execute(f"CHECKPOINT {BUILD}")
            finally:
                con.close()
            swap_in(work, live)
        except BaseException:
            for p in (work, Path(str(work) + ".wal")):
                p.unlink(missing_ok=True)
            raise


def publish_stage(settings: "Settings", ctx: "RunContext") -> "StageResult":
    """The ``publish`` stage: write-audit-publish, then the optional PostgreSQL target.

    Incremental unless ``ctx.full_rebuild`` (or :func:`choose_mode` says full); ``counts`` say
    which (``mode``) and how many rows each table gained / lost (``inserted`` / ``deleted``,
    tables without changes left out) and the seconds per step (``publish_steps``).
    ``UNIGRID_PUBLISH_FORCE=1`` waives the row-count bounds; ``UNIGRID_PG_URL`` (a SQLAlchemy
    URL) also publishes to PostgreSQL. A failed audit fails the stage with every check listed.
    """
    from unigrid.stages import StageResult

    force = settings.extra.get("UNIGRID_PUBLISH_FORCE", "").lower() in ("1", "true", "yes")
    try:
        res = publish(settings, ctx.run_id, force=force, full_rebuild=ctx.full_rebuild)
    except PublishCheckFailed as exc:
        return StageResult("publish", status="failed",
                           counts={"failed_checks": len(exc.failed)},
                           messages=[f"previous master kept: {settings.master_db}"]
                           + [str(c) for c in exc.failed])
    except LookupError as exc:
        return StageResult("publish", status="failed", messages=[str(exc)])
    counts: dict[str, object] = {
        "persons": res.counts.get("master.person", 0),
        "links": res.counts.get("master.person_link", 0),
        "houses": res.counts.get("master.house", 0),
        "households": res.counts.get("master.household", 0),
        "grids": res.counts.get("master.grid", 0),
        "publish_seconds": round(res.seconds, 2),
        "mode": res.mode,
        "inserted": {t: c["inserted"] for t, c in res.changes.items() if c["inserted"]},
        "deleted": {t: c["deleted"] for t, c in res.changes.items() if c["deleted"]},
        "publish_steps": res.steps,
    }
    if res.delta:
        counts["publish_delta"] = res.delta
        counts.update({f"publish_{k}": v for k, v in res.touched.items()})
    messages = [f"master published ({res.mode}: {res.mode_reason}): {res.master_db}"]
    if res.forced:
        messages += [str(c) for c in res.checks if c.check == "row_counts_within_bounds"]
    status = "ok"
    url = settings.extra.get("UNIGRID_PG_URL")
    if url:
        from warehouse.postgres import publish_postgres
        try:
            pg = publish_postgres(res.master_db, url, run_id=ctx.run_id)
            counts["postgres_seconds"] = round(pg.seconds, 2)
            messages.append(f"PostgreSQL schemas {', '.join(pg.schemas)} replaced")
        except Exception as exc:  # the DuckDB master is published; PostgreSQL lags behind
            status = "partial"
            messages.append(f"PostgreSQL publish failed ({type(exc).__name__}: {exc}); "
                            "its previous master is kept")
    return StageResult("publish", status=status, counts=counts, messages=messages)
