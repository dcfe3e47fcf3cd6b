"""unigrid nightly run: 02:00 Asia/Shanghai, one run at a time, no catch-up.

Thin on purpose: every task calls a function of ``unigrid.orchestration``; nothing heavy is
imported at parse time. Extract and validate are mapped over the sources the contracts declare;
then standardise, match, check, publish, report (the checks run before the swap so that
findings are published together with the master they cite). Only run ids, dates and counts go through XCom.
The per-source tasks run one at a time inside a run (``max_active_tis_per_dagrun=1``) because the
work database has a single writer.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

RETRIES = int(os.environ.get("UNIGRID_AIRFLOW_RETRIES", "3"))
RETRY_DELAY = timedelta(seconds=int(os.environ.get("UNIGRID_AIRFLOW_RETRY_DELAY_SECONDS", "300")))


def _on_failure(context):  # resolved lazily so that parsing stays cheap
    from unigrid.orchestration import notify_failure
    notify_failure(context)


def _last_try() -> bool:
    ti = get_current_context()["ti"]
    return ti.try_number > ti.max_tries


@dag(
    dag_id="unigrid_nightly",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0, "on_failure_callback": _on_failure},
    params={
        "business_date": Param(None, type=["null", "string"],
                               description="YYYY-MM-DD; default: the day before the run date"),
        "full_rebuild": Param(False, type="boolean", description="Ignore incremental state"),
    },
    tags=["unigrid"],
    doc_md=__doc__,
)
def unigrid_nightly():
    @task
    def plan() -> dict:
        from unigrid.orchestration import plan_run
        ctx = get_current_context()
        return plan_run(ctx.get("logical_date"), ctx["params"])

    @task
    def sources_of(run: dict) -> list[str]:
        return run["sources"]

    @task(retries=RETRIES, retry_delay=RETRY_DELAY, retry_exponential_backoff=True,
          max_active_tis_per_dagrun=1)
    def extract(source: str, run: dict) -> dict:
        from unigrid.orchestration import source_task
        return source_task("extract", run, source, last_try=_last_try())

    @task(max_active_tis_per_dagrun=1)
    def validate(source: str, run: dict) -> dict:
        from unigrid.orchestration import source_task
        return source_task("validate", run, source, last_try=True)

    def whole_run(stage: str):
        @task(task_id=stage)
        def _stage(run: dict, *_upstream) -> dict:
            from unigrid.orchestration import stage_task
            return stage_task(stage, run)
        return _stage

    run = plan()
    names = sources_of(run)
    extracted = extract.partial(run=run).expand(source=names)
    validated = validate.partial(run=run).expand(source=names)
    extracted >> validated
    prev = validated
    for stage in ("standardise", "match", "check", "publish", "report"):
        step = whole_run(stage)(run)
        prev >> step
        prev = step


unigrid_nightly()
