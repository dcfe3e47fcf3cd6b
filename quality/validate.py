"""Validate one source's raw rows of a run: stage the good ones, quarantine the bad ones.

:func:`validate_source` reads the run's rows of ``raw.<source>`` (in an incremental run only
rows whose ``_change`` is not ``unchanged``: those were validated when they were new), builds
the validation frame (:mod:`quality.parse`), runs the contract's generated suite
(:mod:`quality.suites`) with Great Expectations on one whole-dataframe pandas batch, and writes:

- ``staged.<source>``: one row per record key (its latest validated version): lineage columns,
  the canonical fields typed, ``_flags VARCHAR[]`` (soft findings);
- ``quarantine.row``: every row with a hard finding, with *every* hard reason
  (rule, column, value; personal values masked) and the raw row as JSON;
- ``meta.reconcile``: rows read = rows staged + rows quarantined, checked after writing;
- ``meta.expectation_result``: per expectation, rows checked and rows failing.

Idempotent per run id: the run's earlier rows for the source are deleted first, in the same
transaction. A record key seen again replaces its earlier staged version.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from connectors.contract import Contract
from quality.parse import build_frame
from quality.suites import (
    INDEX_COLUMN,
    ExpectationSpec,
    SuiteSpec,
    id_col,
    raw_col,
    suite_specs,
)
from warehouse.connection import table_exists
from warehouse.masking import field_kind, mask_series

log = logging.getLogger(__name__)

SQL_TYPES = {"text": "VARCHAR", "id": "VARCHAR", "sex": "VARCHAR", "date": "DATE",
             "month": "DATE", "timestamp": "TIMESTAMP", "decimal": "DECIMAL(18,2)",
             "integer": "BIGINT"}
"""Staged column type of each value type (a month is stored as its first day)."""

EXAMPLES_PER_REASON = 5

CHUNK_ROWS = 400_000
"""Rows per GX batch: bounds memory (about 2 GB at this size) at a small cost per chunk."""


class ValidationError(RuntimeError):
    """Validation of a source could not complete (nothing was written for it)."""


class ReconcileError(ValidationError):
    """Rows read != rows staged + rows quarantined: data would be lost. Never ignored.

    ``result`` is the :class:`ValidationResult` with the counts (status ``mismatch``).
    """

    def __init__(self, message: str, result: "ValidationResult | None" = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class ExpectationOutcome:
    """What one expectation found in one source's batch."""

    index: int
    label: str
    expectation: str
    column: str
    severity: str
    rule: str
    description: str
    element_count: int = 0
    unexpected_count: int = 0
    success: bool = True
    error: str | None = None
    by_status: bool = False
    """A resident-ID check whose flag is ``<rule>_<id status>``."""


@dataclass
class ValidationResult:
    """The outcome of validating one source in one run (for the stage summary and the report)."""

    source: str
    run_id: str
    required: bool = False
    status: str = "ok"
    """ok | failed (nothing written, see ``error``) | mismatch (reconcile failed)."""
    rows_read: int = 0
    rows_unchanged: int = 0
    """Rows of the run skipped as unchanged (incremental: validated in an earlier run)."""
    rows_staged: int = 0
    rows_quarantined: int = 0
    rows_flagged: int = 0
    rows_removed: int = 0
    """Staged records removed because their key disappeared from a full snapshot this run."""
    reconcile_ok: bool = False
    expectations: list[ExpectationOutcome] = field(default_factory=list)
    top_reasons: list[dict[str, Any]] = field(default_factory=list)
    """[{rule, column, rows, examples: [{row_no, file, value}]}], most frequent first."""
    flag_counts: dict[str, int] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, Any]:
        """JSON-friendly counts for the stage summary."""
        return {"read": self.rows_read, "staged": self.rows_staged,
                "quarantined": self.rows_quarantined, "flagged": self.rows_flagged,
                "unchanged": self.rows_unchanged, "removed": self.rows_removed,
                "reconcile_ok": self.reconcile_ok,
                "status": self.status}


# ---------------------------------------------------------------------------------------- schema

def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the quarantine and meta tables this module writes (idempotent)."""
    for s in ("staged", "quarantine", "meta"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
    con.execute("""CREATE TABLE IF NOT EXISTS quarantine.row (
        source VARCHAR NOT NULL, run_id VARCHAR NOT NULL, source_key VARCHAR, row_no BIGINT,
        file VARCHAR, raw JSON,
        reasons STRUCT(rule VARCHAR, "column" VARCHAR, "value" VARCHAR)[] NOT NULL,
        quarantined_at TIMESTAMP)""")
    con.execute("""CREATE TABLE IF NOT EXISTS meta.reconcile (
        run_id VARCHAR NOT NULL, source VARCHAR NOT NULL, rows_read BIGINT, rows_staged BIGINT,
        rows_quarantined BIGINT, rows_unchanged BIGINT, ok BOOLEAN, checked_at TIMESTAMP)""")
    con.execute("""CREATE TABLE IF NOT EXISTS meta.expectation_result (
        run_id VARCHAR NOT NULL, source VARCHAR NOT NULL, idx INTEGER, expectation VARCHAR,
        "column" VARCHAR, severity VARCHAR, rule VARCHAR, element_count BIGINT,
        unexpected_count BIGINT, success BOOLEAN, error VARCHAR)""")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def staged_columns(contract: Contract) -> list[tuple[str, str]]:
    """(name, SQL type) of ``staged.<source>``, in order."""
    cols = [("_run_id", "VARCHAR"), ("_source", "VARCHAR"), ("_source_key", "VARCHAR"),
            ("_row_no", "BIGINT"), ("_file", "VARCHAR"), ("_row_hash", "VARCHAR"),
            ("_extracted_at", "TIMESTAMP")]
    cols += [(c.field, SQL_TYPES[c.value_type]) for c in contract.columns]
    cols += [("_flags", "VARCHAR[]"), ("_validated_at", "TIMESTAMP")]
    return cols


def ensure_staged(con: duckdb.DuckDBPyConnection, contract: Contract) -> None:
    """Create ``staged.<source>``, or add columns a changed contract maps anew."""
    cols = staged_columns(contract)
    table = f"staged.{_q(contract.name)}"
    con.execute(f"CREATE TABLE IF NOT EXISTS {table} ("
                + ", ".join(f"{_q(n)} {t}" for n, t in cols) + ")")
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema='staged' "
        "AND table_name=?", [contract.name]).fetchall()}
    for n, t in cols:
        if n not in have:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {_q(n)} {t}")


# ------------------------------------------------------------------------------------------ read

def raw_table_columns(con: duckdb.DuckDBPyConnection, source: str) -> list[str]:
    """Columns of ``raw.<source>`` (empty list when the table does not exist)."""
    return [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema='raw' "
        "AND table_name=? ORDER BY ordinal_position", [source]).fetchall()]


TRIM_CHARS = " \t\r\n\u3000\u00a0\ufeff"
"""Characters stripped from both ends of source text (ASCII and full-width spaces, NBSP, BOM)."""


def _run_rows(con: duckdb.DuckDBPyConnection, contract: Contract, run_id: str,
              ) -> tuple[str, list[Any], list[str]]:
    """(FROM ... WHERE clause, parameters, raw columns) of the run's rows to validate."""
    cols = raw_table_columns(con, contract.name)
    if not cols:
        raise ValidationError(f"{contract.name}: table raw.{contract.name} does not exist "
                              "(did the source extract?)")
    where = "_run_id = ?" if "_run_id" in cols else "TRUE"
    params: list[Any] = [run_id] if "_run_id" in cols else []
    if "_change" in cols:
        where += " AND coalesce(_change, '') <> 'unchanged'"
    return f"FROM raw.{_q(contract.name)} WHERE {where}", params, cols


def count_raw(con: duckdb.DuckDBPyConnection, contract: Contract, run_id: str) -> tuple[int, int]:
    """(rows to validate, rows skipped as unchanged) of the run."""
    source, params, cols = _run_rows(con, contract, run_id)
    n = con.execute(f"SELECT count(*) {source}", params).fetchone()[0]
    unchanged = 0
    if "_change" in cols:
        run = "_run_id = ? AND " if "_run_id" in cols else ""
        unchanged = con.execute(f"SELECT count(*) FROM raw.{_q(contract.name)} WHERE {run}"
                                "_change = 'unchanged'", params).fetchone()[0]
    return int(n), int(unchanged)


def read_raw(con: duckdb.DuckDBPyConnection, contract: Contract, run_id: str,
             start: int = 0, stop: int | None = None) -> pd.DataFrame:
    """The run's rows ``start <= _rid < stop`` to validate, ordered by file and row number.

    ``_rid`` numbers the run's rows from 0 in (file, row number) order. Only lineage columns and
    the contract's source columns are read; source text is stripped in SQL, blank becoming NULL.
    Without the connectors' ``_dup_key`` it is computed here over all the run's rows, so that
    reading in chunks still finds every duplicate key.
    Raises :class:`ValidationError` when ``raw.<source>`` does not exist.
    """
    source, params, cols = _run_rows(con, contract, run_id)
    order = ", ".join(c for c in ("_file", "_row_no") if c in cols) or "1"
    wanted = set(contract.source_columns)
    select = [_q(c) for c in cols if c.startswith("_")]
    select += [f"NULLIF(trim({_q(c)}, '{TRIM_CHARS}'), '') AS {_q(c)}"
               for c in cols if c in wanted]
    if "_dup_key" not in cols and "_source_key" in cols:
        select.append(f"CASE WHEN _source_key IS NULL THEN 0 ELSE row_number() OVER ("
                      f"PARTITION BY _source_key ORDER BY {order}) - 1 END AS _dup_key")
    bounds = "_rid >= ?" + (" AND _rid < ?" if stop is not None else "")
    bparams = [start] + ([stop] if stop is not None else [])
    df = con.execute(
        f"SELECT * EXCLUDE (_rid) FROM (SELECT row_number() OVER (ORDER BY {order}) - 1 AS _rid, "
        f"{', '.join(select)} {source}) WHERE {bounds} ORDER BY _rid", params + bparams).df()
    return df.reset_index(drop=True)


# ------------------------------------------------------------------------------------------- GX

class GxRunner:
    """One ephemeral Great Expectations context for a whole stage run, built on first use.

    Importing GX and building a context and a suite cost seconds and tenths of seconds: a stage
    run pays the import and the context once and each source's suite once (reused by every
    chunk), instead of once per source and chunk. Each batch gets its own short-lived pandas
    data source, deleted after validation: a data source's execution engine keeps every batch
    it loaded, which would hold all chunks of all sources in memory. Sources with no rows to
    validate never reach the runner, so a night in which nothing changed does not import GX.
    """

    def __init__(self) -> None:
        self._ctx: Any = None
        self._suites: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._batches = 0

    def _context(self) -> Any:
        """The context (GX imported here, once)."""
        if self._ctx is None:
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig
            from great_expectations.execution_engine import pandas_execution_engine

            # GX fingerprints every pandas batch (pandas_data_fingerprint: an md5 over a hash of
            # every cell, taken twice per Batch.validate; a third of GX's time on a day-1 batch)
            # unless the frame is larger than HASH_THRESHOLD bytes. Nothing here reads the
            # fingerprint (results are not stored): never take it.
            if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
                pandas_execution_engine.HASH_THRESHOLD = 0
            self._ctx = gx.get_context(mode="ephemeral")
            self._ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        return self._ctx

    def suite(self, spec: SuiteSpec) -> Any:
        """The GX suite of the specs (built and added to the context once per suite spec)."""
        from quality.suites import build_suite

        ctx = self._context()
        key = (spec.source, tuple(s.identity() for s in spec.specs))
        if key not in self._suites:
            name = f"unigrid.{spec.source}.{len(self._suites)}"
            self._suites[key] = ctx.suites.add(build_suite(spec, name=name, context=ctx))
        return self._suites[key]

    def validate(self, source: str, frame: pd.DataFrame, suite: Any,
                 result_format: dict[str, Any]) -> Any:
        """Validate one whole-dataframe batch of ``frame`` against ``suite``; the batch's data
        source is deleted afterwards (so GX keeps no reference to the frame)."""
        ctx = self._context()
        self._batches += 1
        name = f"unigrid_{self._batches}"
        ds = ctx.data_sources.add_pandas(name=name)
        try:
            batch = ds.add_dataframe_asset(name=source).add_batch_definition_whole_dataframe(
                "whole").get_batch(batch_parameters={"dataframe": frame})
            return batch.validate(suite, result_format=result_format)
        finally:
            ctx.data_sources.delete(name)


def run_expectations(frame: pd.DataFrame, spec: SuiteSpec, runner: GxRunner | None = None,
                     ) -> tuple[list[ExpectationOutcome], list[np.ndarray]]:
    """Run the suite on the frame with GX (one whole-dataframe batch).

    ``runner`` holds the stage run's context (a fresh one is made when omitted). Returns one
    outcome per spec (in spec order) and, per spec, the ``_rid`` of every failing row
    (from ``unexpected_index_list``, which COMPLETE result format gives in full).
    """
    outcomes = [ExpectationOutcome(i, s.label(), s.expectation, s.column, s.severity, s.rule,
                                   s.description, by_status=s.flags_by_status)
                for i, s in enumerate(spec.specs)]
    failing = [np.empty(0, dtype=np.int64) for _ in spec.specs]
    if frame.empty:
        return outcomes, failing
    runner = runner or GxRunner()
    suite = runner.suite(spec)
    # Batch.validate, not ValidationDefinition.run: the latter stores the results, serialising
    # every failing row's index (minutes on a million rows) for a store we never read.
    # The row id is the frame's *named index*: GX then lists failing rows without reading a
    # cell per row, and exclude_unexpected_values makes it one list per expectation.
    # Only the columns the suite reads: GX copies the domain frame for many of its metrics.
    used = spec.columns()
    indexed = frame[[c for c in frame.columns if c in used]]
    indexed = indexed.set_axis(pd.Index(frame[INDEX_COLUMN].to_numpy(), name=INDEX_COLUMN))
    res = runner.validate(spec.source, indexed, suite,
                          {"result_format": "COMPLETE",
                           "unexpected_index_column_names": [INDEX_COLUMN],
                           "exclude_unexpected_values": True,
                           "return_unexpected_index_query": False})
    seen: set[int] = set()
    for r in res.results:
        i = int(r.expectation_config.meta["spec"])
        seen.add(i)
        o = outcomes[i]
        info = r.exception_info or {}
        errs = [info] if "raised_exception" in info else [v for v in info.values()
                                                          if isinstance(v, dict)]
        raised = [e for e in errs if e.get("raised_exception")]
        if raised:
            o.success, o.error = False, str(raised[0].get("exception_message"))[:500]
            continue
        result = r.result or {}
        o.element_count = int(result.get("element_count") or 0)
        o.unexpected_count = int(result.get("unexpected_count") or 0)
        o.success = bool(r.success)
        failing[i] = _failing_rids(result.get("unexpected_index_list"))
        if len(failing[i]) != o.unexpected_count:
            o.error = (f"GX listed {len(failing[i])} failing rows but counted "
                       f"{o.unexpected_count}")
    for i, j in enumerate(spec.first_of_kind()):
        if j != i and j in seen:  # a twin of an earlier expectation: same rows fail
            src, o = outcomes[j], outcomes[i]
            o.element_count, o.unexpected_count = src.element_count, src.unexpected_count
            o.success, o.error, failing[i] = src.success, src.error, failing[j]
        elif i not in seen:
            outcomes[i].success, outcomes[i].error = False, "no result from Great Expectations"
    return outcomes, failing


def _failing_rids(index_list: Any) -> np.ndarray:
    """Row ids from GX's ``unexpected_index_list``: ``[{_rid: [..]}]`` (values excluded) or
    ``[{_rid: i, <column>: v}, ...]`` (values included)."""
    if not index_list:
        return np.empty(0, dtype=np.int64)
    first = index_list[0]
    if isinstance(first, dict) and isinstance(first.get(INDEX_COLUMN), list):
        return np.asarray([r for d in index_list for r in d[INDEX_COLUMN]], dtype=np.int64)
    if isinstance(first, dict):
        return np.fromiter((d[INDEX_COLUMN] for d in index_list), dtype=np.int64,
                           count=len(index_list))
    return np.asarray(index_list, dtype=np.int64)


# --------------------------------------------------------------------------------- findings

def _field_types(contract: Contract) -> dict[str, str]:
    return {c.field: c.value_type for c in contract.columns}


def reasons_frame(frame: pd.DataFrame, raw: pd.DataFrame, contract: Contract,
                  specs: list[ExpectationSpec], failing: list[np.ndarray]) -> pd.DataFrame:
    """Long frame of hard findings: (_rid, ord, rule, column, value), values masked."""
    types = _field_types(contract)
    parts = []
    for i, (s, rids) in enumerate(zip(specs, failing)):
        if s.severity != "hard" or len(rids) == 0:
            continue
        if s.field is None:  # the key: show the key columns' text
            keys = [raw[k] if k in raw.columns else pd.Series(None, index=raw.index)
                    for k in contract.key]
            text = keys[0].astype("object").fillna("")
            for k in keys[1:]:
                text = text + "|" + k.astype("object").fillna("")
            text = text.where(text.str.strip("|") != "", None)
            value = text.to_numpy(dtype=object)[rids]
            key_is_id = any(c.value_type == "id" for c in contract.columns
                            if c.column in contract.key)
            vtype, fname = ("id" if key_is_id else "text"), ""
        else:
            value = frame[raw_col(s.field)].to_numpy(dtype=object)[rids]
            vtype, fname = types.get(s.field, "text"), s.field
        v = pd.Series(value, dtype="object")
        parts.append(pd.DataFrame({"_rid": rids, "ord": i, "rule": s.rule,
                                   "column": s.source_column or s.column,
                                   "value": mask_series("id" if vtype == "id" else field_kind(fname),
                                                        v).to_numpy(dtype=object)}))
    if not parts:
        return pd.DataFrame({"_rid": pd.Series(dtype="int64"), "ord": pd.Series(dtype="int64"),
                             "rule": pd.Series(dtype="object"), "column": pd.Series(dtype="object"),
                             "value": pd.Series(dtype="object")})
    return pd.concat(parts, ignore_index=True)


def flags_frame(frame: pd.DataFrame, specs: list[ExpectationSpec],
                failing: list[np.ndarray]) -> pd.DataFrame:
    """Long frame of soft findings: (_rid, flag). Resident-ID flags carry the ID's status."""
    parts = []
    for s, rids in zip(specs, failing):
        if s.severity != "soft" or len(rids) == 0:
            continue
        if s.flags_by_status and s.field:
            status = frame[id_col(s.field, "status")].to_numpy(dtype=object)[rids]
            flag = pd.Series(status, dtype="object").radd(s.rule + "_")
        else:
            flag = pd.Series(s.rule, index=range(len(rids)), dtype="object")
        parts.append(pd.DataFrame({"_rid": rids, "flag": flag.to_numpy(dtype=object)}))
    if not parts:
        return pd.DataFrame({"_rid": pd.Series(dtype="int64"), "flag": pd.Series(dtype="object")})
    return pd.concat(parts, ignore_index=True).drop_duplicates()


def with_rows(reasons: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
    """Reasons with the source row number and file of each row (for examples across chunks)."""
    r = reasons.copy()
    rid = r["_rid"].to_numpy(dtype=np.int64)
    r["row_no"] = raw["_row_no"].to_numpy()[rid] if "_row_no" in raw else rid + 1
    r["file"] = raw["_file"].to_numpy(dtype=object)[rid] if "_file" in raw else None
    return r


def top_reasons(reasons: pd.DataFrame, limit: int = 20) -> list[dict[str, Any]]:
    """Most frequent (rule, column) reasons with a few example rows (values already masked).

    ``reasons`` as from :func:`with_rows` (columns rule, column, value, row_no, file).
    """
    if reasons.empty:
        return []
    r = reasons.sort_values(["file", "row_no"], kind="stable", na_position="first")
    counts = r.groupby(["rule", "column"]).size().reset_index(name="n") \
        .sort_values(["n", "rule", "column"], ascending=[False, True, True])
    out = []
    for rule, column, n in counts.head(limit).itertuples(index=False):
        ex = r[(r["rule"] == rule) & (r["column"] == column)].head(EXAMPLES_PER_REASON)
        out.append({"rule": rule, "column": column, "rows": int(n),
                    "examples": [{"row_no": int(a),
                                  "file": (os.path.basename(str(f)) if f is not None else None),
                                  "value": v} for a, f, v in
                                 zip(ex["row_no"], ex["file"], ex["value"])]})
    return out


# ----------------------------------------------------------------------------------------- write

def _raw_json_sql(con: duckdb.DuckDBPyConnection, source: str, only: str | None = None) -> str:
    """SELECT of the run's raw rows as ``(_file, _row_no, raw JSON)``: every source column
    (not the lineage ones) exactly as landed. Parameter ``$run_id``.

    ``only``: a relation with columns ``file, row_no``; just those rows are read and turned
    into JSON (not the whole run: quarantined rows are few).
    """
    all_cols = raw_table_columns(con, source)
    cols = [c for c in all_cols if not c.startswith("_")]
    pairs = ", ".join(f"'{c.replace(chr(39), chr(39) * 2)}', r.{_q(c)}" for c in cols)
    has_file = "_file" in all_cols
    file = "r._file" if has_file else "NULL::VARCHAR AS _file"
    semi = ""
    if only is not None:
        same_file = "r._file IS NOT DISTINCT FROM o.file" if has_file else "o.file IS NULL"
        semi = f"SEMI JOIN {only} o ON {same_file} AND r._row_no = o.row_no "
    return (f"SELECT {file}, r._row_no, json_object({pairs}) AS raw "
            f"FROM raw.{_q(source)} r {semi}WHERE r._run_id = $run_id")


def _staged_select(contract: Contract) -> str:
    """SELECT list that casts the staging frame into ``staged.<source>`` columns."""
    exprs = []
    for n, t in staged_columns(contract):
        if n == "_flags":
            exprs.append("coalesce(f.flags, []::VARCHAR[])")
        elif n == "_validated_at":
            exprs.append("now()::TIMESTAMP")
        elif n == "_run_id":
            exprs.append("$run_id")
        elif n == "_source":
            exprs.append("$source")
        else:
            exprs.append(f"TRY_CAST(s.{_q(n)} AS {t})" if n == "_extracted_at"
                         else f"CAST(s.{_q(n)} AS {t})")
    return ", ".join(exprs)


def begin_replace(con: duckdb.DuckDBPyConnection, contract: Contract, run_id: str,
                  full_rebuild: bool = False) -> int:
    """Inside the caller's transaction: remove what an earlier validation of this run wrote and
    the staged versions this run supersedes. Returns the staged records removed because their
    key disappeared from a full snapshot in this run (``meta.disappeared``, from extract).

    Deleted: the run's staged rows; staged rows of every key among the run's rows to validate
    (a new version replaces the old, whether it is staged or quarantined); the run's quarantine
    and expectation rows. A full rebuild (the extract landed everything) empties the staged
    table: keys absent from the source now are not recorded as disappeared then; the count of
    earlier-run records dropped is returned as removed.
    """
    src = contract.name
    table = f"staged.{_q(src)}"
    ensure_tables(con)
    ensure_staged(con, contract)
    con.execute(f"DELETE FROM {table} WHERE _run_id = ?", [run_id])
    if full_rebuild:
        n = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        source, params, _ = _run_rows(con, contract, run_id)
        kept = con.execute(f"SELECT count(*) FROM {table} WHERE _source_key IN "
                           f"(SELECT _source_key {source})", params).fetchone()[0]
        con.execute(f"DELETE FROM {table}")
        con.execute("DELETE FROM quarantine.row WHERE source = ? AND run_id = ?", [src, run_id])
        con.execute("DELETE FROM meta.expectation_result WHERE run_id = ? AND source = ?",
                    [run_id, src])
        return int(n - kept)
    source, params, cols = _run_rows(con, contract, run_id)
    if "_source_key" in cols:
        # only a key's first row in this extract is a new version of the record: a later row
        # repeating the key is quarantined as duplicate_key and must not displace it
        first = " AND coalesce(_dup_key, 0) = 0" if "_dup_key" in cols else ""
        con.execute(f"DELETE FROM {table} WHERE _source_key IN "
                    f"(SELECT _source_key {source} AND _source_key IS NOT NULL{first})", params)
    removed = _remove_disappeared(con, src, run_id)
    con.execute("DELETE FROM quarantine.row WHERE source = ? AND run_id = ?", [src, run_id])
    con.execute("DELETE FROM meta.expectation_result WHERE run_id = ? AND source = ?",
                [run_id, src])
    return removed


def write_results(con: duckdb.DuckDBPyConnection, contract: Contract, run_id: str,
                  raw: pd.DataFrame, frame: pd.DataFrame, reasons: pd.DataFrame,
                  flags: pd.DataFrame) -> None:
    """Insert one chunk's staged rows (with ``_flags``) and quarantine rows (with every reason).

    Runs inside the caller's transaction, after :func:`begin_replace`.
    """
    src = contract.name
    table = f"staged.{_q(src)}"
    bad = np.unique(reasons["_rid"].to_numpy(dtype=np.int64))
    good_mask = np.ones(len(frame), dtype=bool)
    good_mask[bad] = False

    st = pd.DataFrame({INDEX_COLUMN: frame[INDEX_COLUMN].to_numpy()[good_mask]})
    for c in ("_source_key", "_row_no", "_file", "_row_hash", "_extracted_at"):
        if c == "_source_key":
            st[c] = frame["_source_key"].to_numpy(dtype=object)[good_mask]
        elif c in raw.columns and isinstance(raw[c].dtype, pd.DatetimeTZDtype):
            st[c] = raw[c].array[good_mask]  # to_numpy() would box every value in Python
        elif c in raw.columns:
            st[c] = raw[c].to_numpy()[good_mask]
        else:
            st[c] = None
    for cm in contract.columns:
        col = frame[cm.field]
        if cm.value_type in ("date", "month", "timestamp"):
            col = pd.to_datetime(col, errors="coerce")
        if isinstance(col.dtype, pd.api.extensions.ExtensionDtype):
            col = col.astype("object").where(col.notna(), None)
        st[cm.field] = col.to_numpy()[good_mask]
    qrows = pd.DataFrame({
        "_rid": bad,
        "source_key": frame["_source_key"].to_numpy(dtype=object)[bad],
        "row_no": raw["_row_no"].to_numpy()[bad] if "_row_no" in raw else bad + 1,
        "file": raw["_file"].to_numpy(dtype=object)[bad] if "_file" in raw else None,
    })
    try:
        con.register("_q_stage", st)
        con.register("_q_flags", flags)
        con.execute(f"""
            INSERT INTO {table} ({', '.join(_q(n) for n, _ in staged_columns(contract))})
            SELECT {_staged_select(contract)}
            FROM _q_stage s LEFT JOIN (
                SELECT _rid, list(DISTINCT flag ORDER BY flag) AS flags FROM _q_flags GROUP BY _rid
            ) f USING (_rid)
            ORDER BY s._rid""", {"run_id": run_id, "source": src})
        if len(qrows):
            con.register("_q_rows", qrows)
            con.register("_q_reasons", reasons)
            con.execute(f"""
                INSERT INTO quarantine.row
                SELECT $source, $run_id, q.source_key, q.row_no, q.file, j.raw, r.reasons,
                       now()::TIMESTAMP
                FROM _q_rows q JOIN (
                    SELECT _rid, list({{'rule': rule, 'column': "column", 'value': "value"}}
                                      ORDER BY ord, rule) AS reasons
                    FROM _q_reasons GROUP BY _rid
                ) r USING (_rid)
                LEFT JOIN ({_raw_json_sql(con, src, only='_q_rows')}) j
                  ON j._file IS NOT DISTINCT FROM q.file AND j._row_no = q.row_no
                ORDER BY q._rid""", {"run_id": run_id, "source": src})
    finally:
        for v in ("_q_stage", "_q_flags", "_q_rows", "_q_reasons"):
            try:
                con.unregister(v)
            except Exception:  # noqa: BLE001 - not registered
                pass


def write_expectations(con: duckdb.DuckDBPyConnection, source: str, run_id: str,
                       outcomes: list[ExpectationOutcome]) -> None:
    """Insert ``meta.expectation_result`` rows (inside the caller's transaction), in one
    statement (``executemany`` costs a statement per expectation)."""
    if not outcomes:
        return
    rows = pd.DataFrame({
        "idx": pd.Series([o.index for o in outcomes], dtype="int32"),
        "expectation": pd.Series([o.label for o in outcomes], dtype="object"),
        "column": pd.Series([o.column for o in outcomes], dtype="object"),
        "severity": pd.Series([o.severity for o in outcomes], dtype="object"),
        "rule": pd.Series([o.rule for o in outcomes], dtype="object"),
        "element_count": pd.Series([o.element_count for o in outcomes], dtype="int64"),
        "unexpected_count": pd.Series([o.unexpected_count for o in outcomes], dtype="int64"),
        "success": pd.Series([o.success for o in outcomes], dtype="bool"),
        "error": pd.Series([o.error for o in outcomes], dtype="object"),
    })
    con.register("_q_expect", rows)
    try:
        con.execute("""INSERT INTO meta.expectation_result
                       SELECT $run_id, $source, idx, expectation, "column", severity, rule,
                              element_count, unexpected_count, success, error::VARCHAR
                       FROM _q_expect ORDER BY idx""", {"run_id": run_id, "source": source})
    finally:
        con.unregister("_q_expect")


def _remove_disappeared(con: duckdb.DuckDBPyConnection, source: str, run_id: str) -> int:
    """Delete staged records whose key disappeared from the source in this run; return the count."""
    if not table_exists(con, "meta", "disappeared"):
        return 0
    sub = "SELECT source_key FROM meta.disappeared WHERE source = ? AND run_id = ?"
    n = con.execute(f"SELECT count(*) FROM staged.{_q(source)} WHERE _source_key IN ({sub})",
                    [source, run_id]).fetchone()[0]
    con.execute(f"DELETE FROM staged.{_q(source)} WHERE _source_key IN ({sub})", [source, run_id])
    return int(n)


def reconcile(con: duckdb.DuckDBPyConnection, source: str, run_id: str, rows_read: int,
              rows_unchanged: int = 0) -> tuple[int, int, bool]:
    """Count what landed and store ``meta.reconcile``; return (staged, quarantined, ok)."""
    ensure_tables(con)
    staged = con.execute(f"SELECT count(*) FROM staged.{_q(source)} WHERE _run_id = ?",
                         [run_id]).fetchone()[0]
    quarantined = con.execute("SELECT count(*) FROM quarantine.row WHERE source = ? "
                              "AND run_id = ?", [source, run_id]).fetchone()[0]
    ok = rows_read == staged + quarantined
    con.execute("DELETE FROM meta.reconcile WHERE run_id = ? AND source = ?", [run_id, source])
    con.execute("INSERT INTO meta.reconcile VALUES (?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
                [run_id, source, rows_read, staged, quarantined, rows_unchanged, ok])
    return int(staged), int(quarantined), bool(ok)


# ------------------------------------------------------------------------------------------ main

def run_date(run_id: str) -> date:
    """The business date of a run id ``YYYYMMDD`` (today when the id is not a date)."""
    try:
        return datetime.strptime(run_id[:8], "%Y%m%d").date()
    except ValueError:
        return date.today()


def merge_outcomes(total: list[ExpectationOutcome], part: list[ExpectationOutcome]) -> None:
    """Add one chunk's expectation outcomes to the running totals (in place)."""
    for t, p in zip(total, part):
        t.element_count += p.element_count
        t.unexpected_count += p.unexpected_count
        t.success = t.success and p.success
        t.error = t.error or p.error


def validate_source(con: duckdb.DuckDBPyConnection, contract: Contract, run_id: str,
                    today: date | None = None, chunk_rows: int = CHUNK_ROWS,
                    full_rebuild: bool = False, runner: GxRunner | None = None,
                    ) -> ValidationResult:
    """Validate the run's raw rows of one source; write staged, quarantine and reconcile rows.

    Rows are validated in chunks of ``chunk_rows`` (one GX whole-dataframe batch each) to bound
    memory; duplicate keys are numbered over the whole run first, so chunks do not hide them
    (a declared ``unique`` expectation, though, is checked within each chunk). Everything is
    written in one transaction: a failure leaves the previous state of the run untouched.
    ``full_rebuild``: the extract landed the whole source; staged is rebuilt from this run only.
    ``runner``: the stage run's shared GX context (one is made on first need when omitted).

    Raises :class:`ValidationError` if the source cannot be validated (nothing is written then)
    and :class:`ReconcileError` if rows read != staged + quarantined after writing.
    """
    t0 = time.perf_counter()
    src = contract.name
    res = ValidationResult(source=src, run_id=run_id, required=contract.required)
    res.rows_read, res.rows_unchanged = count_raw(con, contract, run_id)
    spec = suite_specs(contract, today or run_date(run_id))
    res.expectations = [ExpectationOutcome(i, s.label(), s.expectation, s.column, s.severity,
                                           s.rule, s.description, by_status=s.flags_by_status)
                        for i, s in enumerate(spec.specs)]
    timings = dict.fromkeys(("read", "parse", "gx", "write"), 0.0)
    all_reasons: list[pd.DataFrame] = []
    flag_counts: dict[str, int] = {}
    runner = runner or GxRunner()
    con.execute("BEGIN TRANSACTION")
    try:
        res.rows_removed = begin_replace(con, contract, run_id, full_rebuild)
        for start in range(0, max(res.rows_read, 1), chunk_rows):
            t = time.perf_counter()
            raw = read_raw(con, contract, run_id, start, start + chunk_rows)
            t1 = time.perf_counter()
            timings["read"] += t1 - t
            frame, warnings = build_frame(raw, contract, cleaned=True)
            res.messages += [w for w in warnings if w not in res.messages]
            t2 = time.perf_counter()
            outcomes, failing = run_expectations(frame, spec, runner)
            t3 = time.perf_counter()
            broken = [o for o in outcomes if o.error and o.severity == "hard"]
            if broken:
                raise ValidationError(f"{src}: hard expectation(s) could not be evaluated: "
                                      + "; ".join(f"{o.label}: {o.error}" for o in broken))
            merge_outcomes(res.expectations, outcomes)
            reasons = reasons_frame(frame, raw, contract, spec.specs, failing)
            flags = flags_frame(frame, spec.specs, failing)
            bad = np.unique(reasons["_rid"].to_numpy(dtype=np.int64))
            staged_flags = flags[~flags["_rid"].isin(bad)]
            for k, v in staged_flags.groupby("flag").size().items():
                flag_counts[str(k)] = flag_counts.get(str(k), 0) + int(v)
            res.rows_flagged += int(staged_flags["_rid"].nunique())
            all_reasons.append(with_rows(reasons, raw))
            write_results(con, contract, run_id, raw, frame, reasons, flags)
            del raw, frame, reasons, flags, failing
            timings["parse"] += t2 - t1
            timings["gx"] += t3 - t2
            timings["write"] += time.perf_counter() - t3
        write_expectations(con, src, run_id, res.expectations)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    res.messages += [f"{src}: soft expectation {o.label} not evaluated: {o.error}"
                     for o in res.expectations if o.error]
    res.flag_counts = dict(sorted(flag_counts.items(), key=lambda kv: (-kv[1], kv[0])))
    res.top_reasons = top_reasons(pd.concat(all_reasons, ignore_index=True)
                                  if all_reasons else pd.DataFrame())
    t4 = time.perf_counter()
    res.rows_staged, res.rows_quarantined, res.reconcile_ok = reconcile(
        con, src, run_id, res.rows_read, res.rows_unchanged)
    res.timings = {**timings, "reconcile": time.perf_counter() - t4}
    res.seconds = time.perf_counter() - t0
    if not res.reconcile_ok:
        res.status = "mismatch"
        msg = (f"RECONCILE FAILED for {src} run {run_id}: read {res.rows_read} != "
               f"staged {res.rows_staged} + quarantined {res.rows_quarantined}")
        log.error(msg)
        res.messages.append(msg)
        raise ReconcileError(msg, res)
    if res.rows_read == 0:
        res.messages.append(f"{src}: no rows to validate in run {run_id}"
                            + (f" ({res.rows_unchanged} unchanged)" if res.rows_unchanged else ""))
    log.info("validated %s: read %d, staged %d, quarantined %d, flagged %d in %.1fs",
             src, res.rows_read, res.rows_staged, res.rows_quarantined, res.rows_flagged,
             res.seconds)
    return res
