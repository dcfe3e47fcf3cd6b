"""Landing: source rows into ``raw.<source>`` (DuckDB work database) with lineage and change state.

Each row lands as text with ``_run_id, _source, _source_key, _row_no, _file, _extracted_at,
_row_hash, _change, _dup_key`` (see docs/architecture.md and connectors/README.md):

- ``_source_key``: the key columns (trimmed) joined with ``|``; NULL when a key part is empty.
- ``_row_hash``: md5 over the contract's source columns in contract order (key, then mapped
  columns; the watermark column is left out so that a row only "touched" is unchanged), NULL and
  empty text hashed alike.
- ``_change``: ``new`` / ``changed`` / ``unchanged`` against the state before this run.
- ``_dup_key``: how many earlier rows of this extract have the same key (0 = first); validation
  quarantines the rows with ``_dup_key > 0``. Nothing is dropped.

Incremental state is an append-only log ``meta.source_state_log(source, source_key, run_id,
row_hash, event, row_hash64)`` with events ``new``, ``changed``, ``disappeared``; the state before run R is the
latest event per key among runs < R (since the source's last full rebuild). Re-running a run id
first removes that run's rows and events, so a re-run lands exactly what the first did.
In an incremental run only new and changed rows land (unchanged ones are counted, not copied);
the first run and a full rebuild land everything.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass, field
from typing import Any, Sequence

import duckdb
import numpy as np
import pyarrow as pa

from connectors.contract import Contract
from connectors.readers import FILE, ROW_NO, Rejected
from warehouse.connection import quote_ident as q

LINEAGE_COLUMNS: dict[str, str] = {
    "_run_id": "VARCHAR", "_source": "VARCHAR", "_source_key": "VARCHAR", "_row_no": "BIGINT",
    "_file": "VARCHAR", "_extracted_at": "TIMESTAMPTZ", "_row_hash": "VARCHAR",
    "_change": "VARCHAR", "_dup_key": "INTEGER",
}
"""Lineage columns of every ``raw.<source>`` table, in order, with their DuckDB types."""

META_DDL = (
    """CREATE TABLE IF NOT EXISTS meta.source_run (
        run_id VARCHAR, source VARCHAR, status VARCHAR, full_rebuild BOOLEAN,
        rows_read BIGINT, rows_landed BIGINT, rows_new BIGINT, rows_changed BIGINT,
        rows_unchanged BIGINT, rows_disappeared BIGINT, rows_rejected BIGINT, rows_dup_key BIGINT,
        watermark_since VARCHAR, watermark_max VARCHAR, error VARCHAR, warnings VARCHAR,
        started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS meta.source_state_log (
        source VARCHAR, source_key VARCHAR, run_id VARCHAR, row_hash VARCHAR, event VARCHAR)""",
    "ALTER TABLE meta.source_state_log ADD COLUMN IF NOT EXISTS row_hash64 UBIGINT",
    """CREATE TABLE IF NOT EXISTS meta.disappeared (
        run_id VARCHAR, source VARCHAR, source_key VARCHAR, last_row_hash VARCHAR,
        last_changed_run VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS meta.extract_reject (
        run_id VARCHAR, source VARCHAR, file VARCHAR, row_no BIGINT, reason VARCHAR,
        raw_text VARCHAR)""",
    """CREATE OR REPLACE VIEW meta.source_state AS
        SELECT source, source_key,
               arg_max(row_hash, run_id) FILTER (WHERE event <> 'disappeared') AS row_hash,
               min(run_id) AS first_run,
               max(run_id) FILTER (WHERE event <> 'disappeared') AS last_run,
               CASE WHEN arg_max(event, run_id) = 'disappeared' THEN max(run_id) END AS deleted_run
        FROM meta.source_state_log GROUP BY source, source_key""",
)
"""Tables the extract stage owns in the ``meta`` schema (``source_state`` is the current state:
``last_run`` is the last run that changed the row)."""


def ensure_meta(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``meta`` tables of the extract stage if missing."""
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for ddl in META_DDL:
        con.execute(ddl)


def missing_columns_message(contract: Contract, columns: Sequence[str], where: str,
                            hint: str | None = None) -> str | None:
    """None if ``columns`` has every source column of the contract, else a message listing the
    missing and the unexpected columns, with the nearest unexpected name as a hint."""
    have = set(columns)
    missing = [c for c in contract.source_columns if c not in have]
    if not missing:
        return None
    wanted = set(contract.source_columns)
    unexpected = [c for c in columns if c not in wanted]
    hints = []
    for m in missing:
        near = difflib.get_close_matches(m, unexpected, n=1, cutoff=0.3)
        if near:
            hints.append(f"{m} -> {near[0]}?")
    msg = (f"{where}: missing column(s) {', '.join(missing)}; unexpected column(s): "
           f"{', '.join(unexpected) or 'none'}")
    if hints:
        msg += f"; nearest: {', '.join(hints)}"
    if hint:
        msg += f"; {hint}"
    return msg


CLASSIFIED = ("_rid", "_source_key", "_row_hash", "_row_hash64", "_change")
"""Columns a classifying :class:`Staging` adds to every staged row."""
FLUSH_ROWS = 500_000
"""Rows a classifying :class:`Staging` collects before it classifies and stores them (fewer,
larger joins against the prior state)."""


@dataclass
class Staging:
    """A per-source landing table (temporary) that record batches are appended to.

    With ``contract`` and ``prior`` (a table of the state before this run, see
    :func:`build_prior`) the rows are classified as they arrive: each keeps ``_rid`` (its
    arrival number), ``_source_key``, ``_row_hash`` and ``_change``, but its source columns only
    when it will land (``new`` / ``changed``; every row when ``keep_all``) - an unchanged row of
    an incremental night is never copied wide. The watermark column is always kept.
    """

    con: duckdb.DuckDBPyConnection
    source: str
    columns: list[str] = field(default_factory=list)
    rows: int = 0
    contract: Contract | None = None
    prior: str | None = None
    keep_all: bool = False
    _pending: list[pa.RecordBatch] = field(default_factory=list)
    _pending_rows: int = 0

    @property
    def classified(self) -> bool:
        """Whether rows are classified as they are staged."""
        return self.contract is not None and self.prior is not None

    @property
    def table(self) -> str:
        """Qualified name of the staging table."""
        return scratch("_landing_" + self.source)

    def start(self) -> "Staging":
        """(Re)create the empty staging table."""
        self.con.execute(f"DROP TABLE IF EXISTS {self.table}")
        extra = (", _rid BIGINT, _source_key VARCHAR, _row_hash VARCHAR, _row_hash64 UBIGINT, "
                 "_change VARCHAR"
                 if self.classified else "")
        self.con.execute(f"CREATE TEMP TABLE {q('_landing_' + self.source)} "
                         f"({q(ROW_NO)} BIGINT, {q(FILE)} VARCHAR{extra})")
        self.columns = []
        self.rows = 0
        self._pending, self._pending_rows = [], 0
        return self

    def add_columns(self, columns: Sequence[str]) -> None:
        """Add text columns not there yet (a later file or JSON object may bring new keys)."""
        for c in columns:
            if c not in self.columns and c not in (ROW_NO, FILE):
                self.con.execute(f"ALTER TABLE {self.table} ADD COLUMN {q(c)} VARCHAR")
                self.columns.append(c)

    def append(self, batch: pa.RecordBatch) -> None:
        """Append one batch (text columns + ``_row_no`` + ``_file``)."""
        if batch.num_rows == 0:
            return
        self.add_columns(batch.schema.names)
        if not self.classified:
            self._insert(pa.Table.from_batches([batch]),
                         f"INSERT INTO {self.table} BY NAME SELECT * FROM _landing_batch")
        else:
            if self._pending and self._pending[0].schema != batch.schema:
                self.flush()
            self._pending.append(batch)
            self._pending_rows += batch.num_rows
        self.rows += batch.num_rows
        if self._pending_rows >= FLUSH_ROWS:
            self.flush()

    def _insert(self, table: pa.Table, sql: str) -> None:
        self.con.register("_landing_batch", table)
        try:
            self.con.execute(sql)
        finally:
            self.con.unregister("_landing_batch")

    def flush(self) -> None:
        """Classify and store the collected batches (a classifying staging only)."""
        if not self._pending:
            return
        assert self.contract is not None and self.prior is not None
        table = pa.Table.from_batches(self._pending)
        first = self.rows - self._pending_rows
        self._pending, self._pending_rows = [], 0
        from connectors.readers import int_array
        table = table.append_column("_rid", int_array(
            np.arange(first, first + table.num_rows, dtype=np.int64)))
        self._insert(table, stage_classified_sql(
            self.table, self.contract, self.prior, table.schema.names, self.keep_all))

    def drop(self) -> None:
        """Remove the staging table (and the classification tables)."""
        for t in ("_landing_", "_classified_", "_prior_", "_present_"):
            self.con.execute(f"DROP TABLE IF EXISTS {scratch(t + self.source)}")


def change_expr(prior: str = "p", hash_: str = "_row_hash", prefix: str = "") -> str:
    """SQL for ``_change`` of a row against the prior state row ``prior`` joined by key (its
    columns ``source_key``, ``event``, ``row_hash``, named with ``prefix``)."""
    return (f"CASE WHEN {prior}.{prefix}source_key IS NULL OR {prior}.{prefix}event = 'disappeared' "
            f"THEN 'new' WHEN {prior}.{prefix}row_hash = {hash_} THEN 'unchanged' "
            f"ELSE 'changed' END")


def stage_classified_sql(staging: str, contract: Contract, prior: str, names: Sequence[str],
                         keep_all: bool) -> str:
    """SQL inserting the batch ``_landing_batch`` (columns ``names``) into ``staging``
    classified: key, hash and change computed, source columns kept only for the rows that land
    (and the watermark always). Contract columns the batch lacks count as NULL."""
    have = set(names)
    missing = [c for c in contract.source_columns if c not in have]
    pad = "".join(f", NULL::VARCHAR AS {q(c)}" for c in missing)
    data = [c for c in names if c not in (ROW_NO, FILE, "_rid")]
    keep = {contract.watermark} if contract.watermark else set()
    cols = ", ".join(q(c) if keep_all or c in keep else
                     f"CASE WHEN _change <> 'unchanged' THEN {q(c)} END AS {q(c)}" for c in data)
    return f"""INSERT INTO {staging} BY NAME
        SELECT _rid, {q(ROW_NO)}, {q(FILE)}, _source_key, _row_hash, _row_hash64,
               _change{', ' + cols if cols else ''}
        FROM ({hashed_sql("(SELECT *" + pad + " FROM _landing_batch)", contract, prior)})"""


def hashed_sql(rows: str, contract: Contract, prior: str) -> str:
    """SQL adding ``_source_key``, ``_row_hash64``, ``_row_hash`` and ``_change`` (against
    ``prior``) to ``rows`` (a table or subquery of text columns).

    ``_row_hash64`` is DuckDB's 64-bit ``hash`` of the text the md5 is taken of: when it equals
    the prior state's, the row is unchanged and the prior md5 is taken instead of computing it
    again (md5 is most of the cost of classifying an incremental night). Otherwise - a new or
    changed row, or a prior state without the 64-bit hash (older runs, another DuckDB version's
    hash) - the md5 is computed and compared, as always.
    """
    text = hash_text_expr(hash_columns(contract), "k")
    return f"""SELECT x.*, {change_expr("x", "x._row_hash", "_p_")} AS _change FROM (
        SELECT k.*, p.source_key AS _p_source_key, p.event AS _p_event, p.row_hash AS _p_row_hash,
               CASE WHEN p.event <> 'disappeared' AND p.row_hash64 = k._row_hash64
                    THEN p.row_hash ELSE md5({text}) END AS _row_hash
        FROM (SELECT k.*, hash({text}) AS _row_hash64 FROM (
                SELECT s.*, {key_expr(contract.key)} AS _source_key FROM {rows} s) k) k
        LEFT JOIN {prior} p ON p.source_key = k._source_key) x"""


def build_prior(con: duckdb.DuckDBPyConnection, source: str, run_id: str,
                full_rebuild: bool) -> str:
    """The state of ``source`` before ``run_id`` (since its last full rebuild; empty for a full
    rebuild) as a temporary table ``(source_key, row_hash, row_hash64, event,
    last_changed_run)``: each key's latest event (``arg_max_null``: a latest event without a
    64-bit hash gives NULL, never an older event's hash)."""
    base = run_id if full_rebuild else state_base(con, source, run_id)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {q("_prior_" + source)} AS
        SELECT source_key, arg_max(row_hash, run_id) AS row_hash,
               arg_max_null(row_hash64, run_id) AS row_hash64, arg_max(event, run_id) AS event,
               max(run_id) AS last_changed_run
        FROM meta.source_state_log WHERE source = ? AND run_id < ? AND run_id >= ?
        GROUP BY source_key""", [source, run_id, base])
    return scratch("_prior_" + source)


def scratch(name: str) -> str:
    """Qualified name of a temporary (per-connection, spillable) working table."""
    return f"temp.main.{q(name)}"


def key_expr(key: Sequence[str], alias: str = "s") -> str:
    """SQL for ``_source_key``: trimmed key parts joined with ``|``, NULL if a part is empty."""
    parts = [f"nullif(trim({alias}.{q(k)}), '')" for k in key]
    if len(parts) == 1:
        return parts[0]
    nulls = " OR ".join(f"{p} IS NULL" for p in parts)
    return f"CASE WHEN {nulls} THEN NULL ELSE concat_ws('|', {', '.join(parts)}) END"


def hash_columns(contract: Contract) -> list[str]:
    """Source columns that make up the row hash, in contract order (watermark excluded)."""
    cols = [c for c in contract.source_columns if c != contract.watermark]
    return cols or list(contract.source_columns)


def hash_text_expr(columns: Sequence[str], alias: str = "s") -> str:
    """SQL for the text a row hash is taken of: the columns' text joined by the unit separator."""
    parts = ", ".join(f"coalesce({alias}.{q(c)}, '')" for c in columns)
    return f"concat_ws(chr(31), {parts})"


def hash_expr(columns: Sequence[str], alias: str = "s") -> str:
    """SQL for ``_row_hash``: md5 of the columns' text joined by the unit separator."""
    return f"md5({hash_text_expr(columns, alias)})"


def watermark_max_expr(expr: str) -> str:
    """SQL for the largest watermark value: by number when every value is an integer (a row
    version: '10' > '9'), else as text (ISO timestamps sort as text)."""
    return (f"CASE WHEN bool_and(regexp_full_match({expr}, '[0-9]+')) "
            f"THEN max(TRY_CAST({expr} AS HUGEINT))::VARCHAR ELSE max({expr}) END")


def classify_sql(staging: Staging, contract: Contract, prior: str) -> str:
    """SQL classifying every staged row, narrow (the wide columns stay in the staging table):
    ``_rid``, ``_source_key``, ``_row_hash``, ``_dup_key`` (earlier rows of this extract with the
    same key, by file and row number) and ``_change`` against ``prior``.

    A classifying staging has key, hash and change already; otherwise they are computed here
    (``_rid`` is then the staging table's rowid). Only the rows of repeated keys are numbered by
    a window (a sort of a few rows instead of all).
    """
    if staging.classified:
        l_sql = (f"SELECT _rid, {q(FILE)} AS _file, {q(ROW_NO)} AS _row_no, _source_key, "
                 f"_row_hash, _row_hash64, _change FROM {staging.table}")
    else:
        l_sql = f"""SELECT h._rid, h.{q(FILE)} AS _file, h.{q(ROW_NO)} AS _row_no, h._source_key,
                   h._row_hash, h._row_hash64, h._change
            FROM ({hashed_sql(f"(SELECT rowid AS _rid, * FROM {staging.table})", contract,
                              prior)}) h"""
    return f"""WITH l AS ({l_sql}),
        d AS (SELECT _source_key FROM l WHERE _source_key IS NOT NULL
              GROUP BY _source_key HAVING count(*) > 1),
        dk AS (SELECT l._rid, row_number() OVER (
                   PARTITION BY l._source_key ORDER BY l._file, l._row_no) - 1 AS _dup_key
               FROM l SEMI JOIN d ON l._source_key = d._source_key)
        SELECT l._rid, l._source_key, l._row_hash, l._row_hash64, coalesce(dk._dup_key, 0) AS _dup_key,
               l._change
        FROM l LEFT JOIN dk ON dk._rid = l._rid"""


def state_base(con: duckdb.DuckDBPyConnection, source: str, run_id: str) -> str:
    """Run id of the source's latest successful full rebuild before ``run_id`` ('' if none):
    state events older than it are ignored."""
    row = con.execute(
        "SELECT max(run_id) FROM meta.source_run WHERE source = ? AND run_id < ? "
        "AND status = 'ok' AND full_rebuild", [source, run_id]).fetchone()
    return row[0] or "" if row else ""


def last_watermark(con: duckdb.DuckDBPyConnection, source: str, run_id: str) -> str | None:
    """Largest watermark value landed by a successful run of ``source`` before ``run_id``."""
    base = state_base(con, source, run_id)
    row = con.execute(
        f"SELECT {watermark_max_expr('watermark_max')} FROM meta.source_run "
        "WHERE source = ? AND run_id < ? AND run_id >= ? AND status = 'ok'",
        [source, run_id, base]).fetchone()
    return row[0] if row else None


def ensure_raw_table(con: duckdb.DuckDBPyConnection, source: str, columns: Sequence[str]) -> str:
    """Create ``raw.<source>`` if missing and add any new source column; return its name."""
    table = f"raw.{q(source)}"
    cols = ", ".join(f"{q(c)} {t}" for c, t in LINEAGE_COLUMNS.items())
    con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols})")
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw' "
        "AND table_name = ?", [source]).fetchall()}
    for c in columns:
        if c not in have:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {q(c)} VARCHAR")
    return table


@dataclass
class LandOutcome:
    """What landing one source did (counts for ``meta.source_run`` and the run summary)."""

    rows_read: int = 0
    rows_landed: int = 0
    rows_new: int = 0
    rows_changed: int = 0
    rows_unchanged: int = 0
    rows_disappeared: int = 0
    rows_dup_key: int = 0
    watermark_max: str | None = None

    def counts(self) -> dict[str, Any]:
        """Counts as a dict (no watermark)."""
        return {k: v for k, v in self.__dict__.items() if k.startswith("rows_")}


def finish_landing(staging: Staging, contract: Contract, run_id: str, extracted_at: dt.datetime,
                   *, complete: bool, full_rebuild: bool, present_keys: str | None = None,
                   land_unchanged: bool = False) -> LandOutcome:
    """Classify the staged rows against the state and land them into ``raw.<source>``.

    ``complete``: the source was read without error; only then does the state advance and
    (for ``snapshot: full`` sources) keys absent from this run become disappeared.
    ``present_keys``: a table of ``_source_key`` values present at the source, when the staged
    rows are only part of it (a watermark pull); default: the staged rows.
    """
    con, src = staging.con, contract.name
    staging.flush()
    missing = [c for c in contract.source_columns if c not in staging.columns]
    staging.add_columns(missing)  # a failed or empty read: keep the SQL valid
    prior = staging.prior if staging.classified else build_prior(con, src, run_id, full_rebuild)
    assert prior is not None
    cls = scratch("_classified_" + src)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {q("_classified_" + src)} AS
        {classify_sql(staging, contract, prior)}""")
    wm = f"nullif(trim({q(contract.watermark)}), '')" if contract.watermark else "NULL"
    r = con.execute(f"""SELECT count(*), count(*) FILTER (WHERE _change = 'new'),
        count(*) FILTER (WHERE _change = 'changed'), count(*) FILTER (WHERE _change = 'unchanged'),
        count(*) FILTER (WHERE _dup_key > 0) FROM {cls}""").fetchone()
    wm_max = con.execute(f"SELECT {watermark_max_expr(wm)} FROM {staging.table}").fetchone()[0] \
        if contract.watermark else None
    out = LandOutcome(rows_read=r[0], rows_new=r[1], rows_changed=r[2], rows_unchanged=r[3],
                      rows_dup_key=r[4], watermark_max=wm_max)
    out.rows_landed = out.rows_read if land_unchanged else out.rows_new + out.rows_changed
    raw = ensure_raw_table(con, src, staging.columns)
    where = "" if land_unchanged else "WHERE c._change <> 'unchanged'"
    rid, exclude = ("_rid", f" EXCLUDE ({', '.join(CLASSIFIED)})") if staging.classified \
        else ("rowid", "")
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {raw} WHERE _run_id = ?", [run_id])
        con.execute(f"""INSERT INTO {raw} BY NAME
            SELECT ? AS _run_id, ? AS _source, ?::TIMESTAMPTZ AS _extracted_at, c._source_key,
                   c._row_hash, c._dup_key, c._change, s.*{exclude}
            FROM {cls} c JOIN {staging.table} s ON s.{rid} = c._rid {where}""",
                    [run_id, src, extracted_at])
        con.execute("DELETE FROM meta.source_state_log WHERE source = ? AND run_id = ?", [src, run_id])
        con.execute("DELETE FROM meta.disappeared WHERE source = ? AND run_id = ?", [src, run_id])
        if complete:
            con.execute(f"""INSERT INTO meta.source_state_log
                    (source, source_key, run_id, row_hash, event, row_hash64)
                SELECT ?, _source_key, ?, _row_hash, _change, _row_hash64 FROM {cls}
                WHERE _source_key IS NOT NULL AND _dup_key = 0 AND _change <> 'unchanged'""",
                        [src, run_id])
            if contract.snapshot == "full" and not full_rebuild:
                present = present_keys or f"(SELECT _source_key FROM {cls})"
                con.execute(f"""INSERT INTO meta.disappeared
                    SELECT ?, ?, p.source_key, p.row_hash, p.last_changed_run FROM {prior} p
                    WHERE p.event <> 'disappeared' AND NOT EXISTS (
                        SELECT 1 FROM {present} k WHERE k._source_key = p.source_key)""",
                            [run_id, src])
                con.execute("""INSERT INTO meta.source_state_log
                        (source, source_key, run_id, row_hash, event)
                    SELECT source, source_key, run_id, last_row_hash, 'disappeared'
                    FROM meta.disappeared WHERE source = ? AND run_id = ?""", [src, run_id])
                out.rows_disappeared = con.execute(
                    "SELECT count(*) FROM meta.disappeared WHERE source = ? AND run_id = ?",
                    [src, run_id]).fetchone()[0]
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return out


def store_rejected(con: duckdb.DuckDBPyConnection, run_id: str, source: str,
                   rejected: Sequence[Rejected]) -> None:
    """Keep the rows a reader could not parse (``meta.extract_reject``), replacing this run's."""
    con.execute("DELETE FROM meta.extract_reject WHERE run_id = ? AND source = ?", [run_id, source])
    if rejected:
        con.executemany("INSERT INTO meta.extract_reject VALUES (?, ?, ?, ?, ?, ?)",
                        [[run_id, source, r.file, r.row_no, r.reason, r.text] for r in rejected])


def record_source_run(con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> None:
    """Replace this run's ``meta.source_run`` row for the source."""
    cols = [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'meta' "
        "AND table_name = 'source_run' ORDER BY ordinal_position").fetchall()]
    con.execute("DELETE FROM meta.source_run WHERE run_id = ? AND source = ?",
                [row["run_id"], row["source"]])
    con.execute(f"INSERT INTO meta.source_run ({', '.join(cols)}) VALUES "
                f"({', '.join('?' * len(cols))})", [row.get(c) for c in cols])


def current_rows_sql(source: str) -> str:
    """SQL for the source as it stands now: the latest landed row per key (first of duplicates),
    without keys that disappeared since. Rows of an incremental run are only the changes; this
    gives the whole picture."""
    raw = f"raw.{q(source)}"
    return f"""SELECT r.* FROM {raw} r
        WHERE r._dup_key = 0 AND r._source_key IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM meta.source_state s WHERE s.source = '{source}'
                          AND s.source_key = r._source_key AND s.deleted_run IS NOT NULL)
        QUALIFY row_number() OVER (PARTITION BY r._source_key ORDER BY r._run_id DESC) = 1"""
