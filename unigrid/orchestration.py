"""What the Airflow tasks do, as plain functions (the DAG file only wires them).

Everything here takes and returns small JSON-able dicts (run id, dates, paths, counts): XCom
never carries data frames. Heavy modules are imported inside the functions.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from unigrid.settings import Settings, load_settings
from unigrid.stages import RunContext, StageFailed, run_stage

log = logging.getLogger("unigrid.orchestration")
CITY_TZ = ZoneInfo("Asia/Shanghai")


def business_date_for(logical_date: datetime | None, override: str | None = None) -> date:
    """The business date a nightly run processes.

    A run at 02:00 Asia/Shanghai on day D processes the exports of day D-1. Airflow 3 cron
    schedules have no data interval, so this is computed explicitly. ``override`` (the DAG's
    ``business_date`` param, ``YYYY-MM-DD``) wins when given.
    """
    if override:
        return date.fromisoformat(str(override))
    if logical_date is None:
        raise ValueError("no logical date and no business_date param")
    local = logical_date.astimezone(CITY_TZ) if logical_date.tzinfo else logical_date
    return local.date() - timedelta(days=1)


def plan_run(logical_date: datetime | None, params: Mapping[str, Any],
             settings: Settings | None = None) -> dict[str, Any]:
    """Decide the run: business date, run id, full or incremental, and the sources to extract."""
    from connectors.contract import load_contracts

    settings = settings or load_settings()
    d = business_date_for(logical_date, params.get("business_date"))
    ctx = RunContext.for_date(d, full_rebuild=bool(params.get("full_rebuild", False)))
    contracts = load_contracts(settings.contracts_dir)
    return {
        "run_id": ctx.run_id,
        "business_date": d.isoformat(),
        "full_rebuild": ctx.full_rebuild,
        "sources": [c.name for c in contracts],
        "required": [c.name for c in contracts if c.required],
    }


def _ctx(run: Mapping[str, Any], source: str | None = None) -> RunContext:
    return RunContext.for_date(date.fromisoformat(run["business_date"]),
                               full_rebuild=bool(run.get("full_rebuild")),
                               sources=(source,) if source else None)


def source_task(stage: str, run: Mapping[str, Any], source: str, last_try: bool,
                settings: Settings | None = None) -> dict[str, Any]:
    """Run a per-source stage (extract or validate) for one source.

    Failure policy: a failure raises (so Airflow retries with back-off) until the last try; on
    the last try an optional source is recorded as stale and the run goes on, while a required
    source fails the task, so nothing downstream runs and yesterday's master stays published.
    """
    settings = (settings or load_settings()).ensure_dirs()
    result = run_stage(stage, settings, _ctx(run, source))
    out = result.to_dict() | {"source": source}
    if result.status in ("failed", "partial", "not_implemented"):
        required = source in run.get("required", [])
        if result.status == "not_implemented" or required or not last_try:
            raise StageFailed(f"{stage} {source}: {result.status}: {'; '.join(result.messages)}")
        log.warning("%s %s failed on its last try; optional source marked stale", stage, source)
        out["stale"] = True
    return out


def stage_task(stage: str, run: Mapping[str, Any], settings: Settings | None = None
               ) -> dict[str, Any]:
    """Run a whole-run stage (standardise, match, publish, check, report); raise on failure."""
    settings = (settings or load_settings()).ensure_dirs()
    result = run_stage(stage, settings, _ctx(run))
    if result.status in ("failed", "not_implemented"):
        raise StageFailed(f"{stage}: {result.status}: {'; '.join(result.messages)}")
    return result.to_dict()


def notify_failure(context: Mapping[str, Any]) -> None:
    """Default ``on_failure_callback``: one log line without personal data.

    A deployment points alerting elsewhere by setting ``UNIGRID_ALERT_CALLBACK`` to a dotted
    path of its own callable (``package.module:function``), which receives the same context.
    """
    import importlib
    import os

    ti = context.get("task_instance") or context.get("ti")
    task_id = getattr(ti, "task_id", "?")
    run_id = getattr(context.get("dag_run"), "run_id", "?")
    log.error("unigrid task failed: task=%s dag_run=%s", task_id, run_id)
    target = os.environ.get("UNIGRID_ALERT_CALLBACK")
    if target:
        mod, _, fn = target.partition(":")
        getattr(importlib.import_module(mod), fn)(context)
