"""The validate stage: every source that extracted in this run validated; one failure stops no other.

``validate_stage(settings, ctx)`` is what ``unigrid validate`` and the Airflow task call.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from connectors.contract import Contract, ContractError, load_contract
from quality.report import overall_status, write_report
from quality.validate import GxRunner, ReconcileError, ValidationResult, validate_source
from warehouse.connection import table_exists

if TYPE_CHECKING:
    from unigrid.settings import Settings
    from unigrid.stages import RunContext, StageResult

log = logging.getLogger(__name__)


def load_contracts_lenient(folder: Path, names: tuple[str, ...] | None,
                           ) -> tuple[list[Contract], list[str]]:
    """Contracts one by one: a broken file is an error message, the others still load."""
    contracts: list[Contract] = []
    errors: list[str] = []
    for path in sorted(Path(folder).glob("*.yaml")):
        try:
            c = load_contract(path)
        except ContractError as exc:
            if not names or path.stem in names:
                errors.append(str(exc))
            continue
        if not names or c.name in names:
            contracts.append(c)
    return contracts, errors


def extracted_sources(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, dict[str, Any]]:
    """``meta.source_run`` rows of the run by source (status, error); empty if none."""
    if not table_exists(con, "meta", "source_run"):
        return {}
    rows = con.execute("SELECT source, status, error FROM meta.source_run WHERE run_id = ?",
                       [run_id]).fetchall()
    return {s: {"status": st, "error": err} for s, st, err in rows}


def validate_all(con: duckdb.DuckDBPyConnection, contracts: list[Contract], run_id: str,
                 full_rebuild: bool = False) -> list[ValidationResult]:
    """Validate every contract's source that extracted ``ok`` in the run; never raises for one.

    A source whose extract failed (or that did not run) is reported ``skipped``; its raw rows
    stay in ``raw`` for the re-run. A validation error is that source's ``failed`` result.
    """
    runs = extracted_sources(con, run_id)
    results: list[ValidationResult] = []
    runner = GxRunner()  # one GX context for every source, made when the first one needs it
    for c in contracts:
        run = runs.get(c.name)
        if run is None or run["status"] != "ok":
            why = "did not extract in this run" if run is None else \
                f"extract {run['status']}: not validated (its rows stay in raw.{c.name})"
            results.append(ValidationResult(source=c.name, run_id=run_id, required=c.required,
                                            status="skipped", messages=[f"{c.name}: {why}"]))
            continue
        try:
            results.append(validate_source(con, c, run_id, full_rebuild=full_rebuild,
                                           runner=runner))
        except ReconcileError as exc:
            r = exc.result or ValidationResult(source=c.name, run_id=run_id,
                                               required=c.required, status="mismatch")
            r.error = str(exc)
            results.append(r)
        except Exception as exc:  # noqa: BLE001 - one source never stops the others
            log.exception("validation of %s failed", c.name)
            results.append(ValidationResult(
                source=c.name, run_id=run_id, required=c.required, status="failed",
                error=f"{c.name}: validation failed: {type(exc).__name__}: {exc}"))
    return results


def validate_stage(settings: "Settings", ctx: "RunContext") -> "StageResult":
    """Validate the run's extracted sources, write the HTML report, return counts and status.

    Status: ``failed`` when a required source failed validation or any source's rows do not
    reconcile (read != staged + quarantined); ``partial`` when an optional source failed;
    else ``ok``. Sources skipped because their extract failed are named in the messages.
    """
    from unigrid.stages import StageResult
    from warehouse.connection import work_db

    t0 = time.perf_counter()
    contracts, errors = load_contracts_lenient(settings.contracts_dir, ctx.sources)
    result = StageResult(stage="validate", messages=list(errors))
    with work_db(settings.work_db) as con:
        results = validate_all(con, contracts, ctx.run_id, ctx.full_rebuild)
        con.execute("CHECKPOINT")
    report = write_report(results, ctx.run_id, settings.report_dir)
    per_source = {r.source: r.counts() for r in results}
    done = [r for r in results if r.status in ("ok", "mismatch")]
    result.counts = {
        "sources": per_source,
        "rows_read": sum(r.rows_read for r in done),
        "rows_staged": sum(r.rows_staged for r in done),
        "rows_quarantined": sum(r.rows_quarantined for r in done),
        "rows_flagged": sum(r.rows_flagged for r in done),
        "report": str(report),
    }
    for r in results:
        if r.status in ("failed", "mismatch"):
            result.messages.append(r.error or f"{r.source}: {r.status}")
        elif r.status == "skipped":
            result.messages.extend(r.messages)
        elif r.rows_quarantined:
            top = ", ".join(f"{t['rule']} ({t['column']}) {t['rows']}" for t in r.top_reasons[:3])
            result.messages.append(f"{r.source}: {r.rows_quarantined} of {r.rows_read} row(s) "
                                   f"quarantined: {top}")
    result.status = overall_status(results)
    if errors and result.status == "ok":
        result.status = "partial"
    if not contracts:
        result.status = "failed"
        result.messages.append(f"no contract to validate in {settings.contracts_dir}")
    result.messages.append(f"validation report: {report}")
    result.seconds = time.perf_counter() - t0
    return result
