"""The extract stage: every contract's source read and landed in ``raw``; one failure stops no other.

``extract_stage(settings, ctx)`` is what ``unigrid extract`` and the Airflow task call;
``extract_source(con, contract, settings, ctx)`` lands one source into an open work database.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from connectors.contract import Contract, ContractError, load_contract
from connectors.landing import (LandOutcome, Staging, build_prior, ensure_meta, finish_landing,
                                last_watermark, missing_columns_message, record_source_run,
                                store_rejected)
from connectors.readers import (CHUNK_ROWS, SourceReadError, SqlReader, encoding_hint,
                                open_readers, open_sql, prefetched)

if TYPE_CHECKING:
    from unigrid.settings import Settings
    from unigrid.stages import RunContext, StageResult

MEMORY_LIMIT_VAR = "UNIGRID_EXTRACT_MEMORY_LIMIT"
"""Optional DuckDB memory limit for the extract stage (e.g. ``1GB``); working tables spill to disk."""
MAX_LISTED_REJECTS = 5
"""Rejected rows named one by one in a message; the rest are counted."""


def _encoding_hint(contract: Contract, path: str) -> str | None:
    """'the file looks like utf-8, the contract says gbk' when the bytes suggest so."""
    if contract.format.type not in ("csv", "jsonl"):
        return None
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return None
    return encoding_hint(contract.format.encoding, head)


def _rejects_message(rejected: list[Any]) -> str:
    """'3 row(s) could not be parsed: file row 7: has 5 fields, expected 14 (...); ...'."""
    shown = "; ".join(f"{r.file} row {r.row_no}: {r.reason}" for r in rejected[:MAX_LISTED_REJECTS])
    more = f"; and {len(rejected) - MAX_LISTED_REJECTS} more" if len(rejected) > MAX_LISTED_REJECTS else ""
    return f"{len(rejected)} row(s) could not be parsed (kept in meta.extract_reject): {shown}{more}"


def extract_source(con: duckdb.DuckDBPyConnection, contract: Contract, settings: "Settings",
                   ctx: "RunContext", *, data: Path | str | None = None,
                   chunk_rows: int = CHUNK_ROWS, land_unchanged: bool = False) -> dict[str, Any]:
    """Read one source and land it into ``raw.<name>``; never raises for bad input.

    Returns the ``meta.source_run`` row as a dict: ``status`` (``ok`` / ``failed``), counts,
    ``error`` (file, line and cause; no personal values), ``warnings``. On failure the rows read
    before the error still land, but the incremental state does not advance.
    """
    ensure_meta(con)
    started = dt.datetime.now(dt.timezone.utc)
    src = contract.name
    since = None if ctx.full_rebuild or not contract.watermark else last_watermark(con, src, ctx.run_id)
    prior = build_prior(con, src, ctx.run_id, ctx.full_rebuild)
    staging = Staging(con, src, contract=contract, prior=prior, keep_all=land_unchanged).start()
    errors: list[str] = []
    warnings: list[str] = []
    rejected: list[Any] = []
    present: str | None = None
    pushed = contract.format.type == "sql" and since is not None
    try:
        for reader in open_readers(contract, settings, since=since, data=data,
                                   chunk_rows=chunk_rows):
            with reader:
                msg = missing_columns_message(contract, reader.columns, reader.name,
                                              _encoding_hint(contract, reader.name))
                if msg:
                    errors.append(msg)
                    continue
                staging.add_columns(reader.columns)
                batches = reader.batches()
                if not isinstance(reader, SqlReader):  # a SQL connection stays in its thread
                    batches = prefetched(batches)
                try:
                    for batch in batches:
                        staging.append(batch)
                except SourceReadError as exc:
                    errors.append(str(exc))
                finally:
                    close = getattr(batches, "close", None)
                    if close is not None:  # stops a read-ahead thread before the reader closes
                        close()
                rejected += reader.rejected
                warnings += reader.notes.warnings
        if pushed and contract.snapshot == "full" and not errors:
            present = _stage_present_keys(con, contract, settings, data)
    except SourceReadError as exc:
        errors.append(str(exc))
    except duckdb.Error as exc:  # the work database itself: not the source's fault
        staging.drop()
        raise RuntimeError(f"{src}: work database error while landing: {exc}") from exc
    if rejected:
        errors.append(_rejects_message(rejected))
    if not errors and staging.rows == 0 and contract.snapshot == "full" and not pushed:
        errors.append(f"{src}: no data rows: an empty full snapshot is not taken as every record "
                      f"disappearing (is the export complete?)")
    out = LandOutcome()
    try:
        out = finish_landing(staging, contract, ctx.run_id, started, complete=not errors,
                             full_rebuild=ctx.full_rebuild, present_keys=present,
                             land_unchanged=land_unchanged)
        store_rejected(con, ctx.run_id, src, rejected)
    finally:
        staging.drop()
    if out.rows_dup_key:
        warnings.append(f"{src}: {out.rows_dup_key} row(s) repeat a key of an earlier row "
                        f"(landed, _dup_key > 0)")
    row: dict[str, Any] = {
        "run_id": ctx.run_id, "source": src, "status": "failed" if errors else "ok",
        "full_rebuild": ctx.full_rebuild, **out.counts(), "rows_rejected": len(rejected),
        "watermark_since": since, "watermark_max": out.watermark_max,
        "error": "\n".join(errors) or None, "warnings": "\n".join(warnings) or None,
        "started_at": started, "finished_at": dt.datetime.now(dt.timezone.utc),
    }
    record_source_run(con, row)
    return row


def _stage_present_keys(con: duckdb.DuckDBPyConnection, contract: Contract, settings: "Settings",
                        data: Path | str | None) -> str:
    """For a watermark pull of a full snapshot: every key at the source (a key-only query), to
    find the rows that disappeared. Returns the table name holding ``_source_key``."""
    from connectors.landing import key_expr, scratch
    from warehouse.connection import quote_ident as q

    keys = Staging(con, "keys_" + contract.name).start()
    reader = open_sql(contract, settings, only=contract.key,
                      url=str(data) if data is not None else None)
    with reader:
        for batch in reader.batches():
            keys.append(batch)
    keys.add_columns(contract.key)
    table = scratch("_present_" + contract.name)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {q('_present_' + contract.name)} AS "
                f"SELECT DISTINCT {key_expr(contract.key)} "
                f"AS _source_key FROM {keys.table} s")
    keys.drop()
    return table


def _load(settings: "Settings", names: tuple[str, ...] | None) -> tuple[list[Contract], list[str]]:
    """Contracts one by one: a broken contract file is reported, the others still load."""
    contracts: list[Contract] = []
    errors: list[str] = []
    for path in sorted(Path(settings.contracts_dir).glob("*.yaml")):
        if names and path.stem not in names:
            try:  # another source's broken file is that source's problem, not this run's
                contracts.append(load_contract(path))
            except ContractError:
                pass
            continue
        try:
            contracts.append(load_contract(path))
        except ContractError as exc:
            errors.append(str(exc))
    seen: set[str] = set()
    for c in contracts:
        if c.name in seen:
            errors.append(f"{c.path_}: contract name {c.name!r} used twice")
        seen.add(c.name)
    if names:
        unknown = sorted(set(names) - seen)
        if unknown:
            errors.append(f"no contract named {', '.join(unknown)} in {settings.contracts_dir}")
        contracts = [c for c in contracts if c.name in names]
    return contracts, errors


def with_run_variables(settings: "Settings", ctx: "RunContext") -> "Settings":
    """Settings whose contract variables include the run's: ``${UNIGRID_BUSINESS_DATE}``
    (``YYYY-MM-DD``) and ``${UNIGRID_RUN_ID}``, so a location can name a dated drop folder,
    e.g. ``path: "${UNIGRID_BUSINESS_DATE}/pension_*.csv"`` (what makes backfills read the
    exports of their own date)."""
    from dataclasses import replace

    extra = dict(settings.extra)
    extra["UNIGRID_BUSINESS_DATE"] = ctx.business_date.isoformat()
    extra["UNIGRID_RUN_ID"] = ctx.run_id
    return replace(settings, extra=extra)


def run_order_error(latest_run: str | None, run_id: str, full_rebuild: bool) -> str | None:
    """Why an incremental run of ``run_id`` may not run after ``latest_run`` (None if it may).

    The work database holds each source's state as of its latest run: an incremental run of an
    older date would diff that date's exports against a newer state and stage the wrong
    records. Re-running the latest date (idempotent) and any full rebuild are allowed.
    """
    if full_rebuild or not latest_run or latest_run <= run_id:
        return None
    return (f"run {run_id} is older than the latest run {latest_run} in the work database: an "
            f"incremental run only goes forward. Rebuild that date from its own exports with "
            f"a full rebuild (`unigrid run --full`, DAG param full_rebuild), then run the later "
            f"dates again in order "
            f"(docs/operations.md, Backfill)")


def latest_ok_run(con: duckdb.DuckDBPyConnection) -> str | None:
    """The latest run id with a successful extract of any source (None before the first)."""
    row = con.execute("SELECT max(run_id) FROM meta.source_run WHERE status = 'ok'").fetchone()
    return row[0] if row else None


def extract_stage(settings: "Settings", ctx: "RunContext") -> "StageResult":
    """Extract every contract (or ``ctx.sources``) into ``raw``; write ``meta.source_run``.

    Status: ``failed`` if a required source failed (or a contract file is broken), ``partial``
    if an optional one did, else ``ok``. Counts per source; messages say what failed and why.
    """
    from unigrid.stages import StageResult
    from warehouse.connection import work_db

    t0 = time.perf_counter()
    settings = with_run_variables(settings, ctx)
    contracts, contract_errors = _load(settings, ctx.sources)
    result = StageResult(stage="extract", messages=list(contract_errors))
    per_source: dict[str, dict[str, Any]] = {}
    failed_required, failed_optional = [], []
    with work_db(settings.work_db) as con:
        limit = dict(settings.extra).get(MEMORY_LIMIT_VAR)
        if limit:
            con.execute("SET memory_limit = ?", [limit])
        ensure_meta(con)
        order = run_order_error(latest_ok_run(con), ctx.run_id, ctx.full_rebuild)
        if order:
            result.status, result.messages = "failed", [*result.messages, order]
            result.seconds = time.perf_counter() - t0
            return result
        for c in contracts:
            try:
                row = extract_source(con, c, settings, ctx)
            except Exception as exc:  # noqa: BLE001 - one source never stops the others
                row = {"source": c.name, "status": "failed", "rows_read": 0,
                       "error": f"{c.name}: unexpected error: {type(exc).__name__}: {exc}"}
            per_source[c.name] = {k: row.get(k) for k in (
                "status", "rows_read", "rows_landed", "rows_new", "rows_changed",
                "rows_unchanged", "rows_disappeared", "rows_rejected", "rows_dup_key")}
            if row["status"] != "ok":
                (failed_required if c.required else failed_optional).append(c.name)
                result.messages.append(f"{c.name} ({'required' if c.required else 'optional'}) "
                                       f"failed: {row['error']}")
            elif row.get("warnings"):
                result.messages.extend(row["warnings"].splitlines())
        con.execute("CHECKPOINT")
    if failed_required or contract_errors:
        result.status = "failed"
    elif failed_optional:
        result.status = "partial"
    result.counts = {
        "sources": len(contracts),
        "sources_ok": sum(1 for v in per_source.values() if v["status"] == "ok"),
        "sources_failed": len(failed_required) + len(failed_optional),
        "rows_read": sum(v["rows_read"] or 0 for v in per_source.values()),
        "rows_landed": sum(v["rows_landed"] or 0 for v in per_source.values()),
        "per_source": per_source,
    }
    result.seconds = time.perf_counter() - t0
    return result
