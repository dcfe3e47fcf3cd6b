"""Stage functions of the matching package (called by ``unigrid.stages`` and the DAG).

- :func:`standardise_stage`: ``staged.<source>`` -> ``std.record`` (incremental) and its
  delta ``std.delta`` / ``std.delta_meta``.
- :func:`match_stage`: ``std.record`` -> ``link.*`` (pairs, review queue, person_link,
  person, person_event) with the current model; trains one first if none exists.
- :func:`train_stage`: train a new model version on ``std.record`` (``unigrid model train``).

Retraining on a nightly run is opt-in: ``UNIGRID_MATCH_RETRAIN=1`` in the environment (read
through ``settings.extra``) makes ``match_stage`` train a new version before linking.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from unigrid.settings import Settings
    from unigrid.stages import RunContext, StageResult


def _contracts(settings: "Settings") -> dict[str, Any]:
    from connectors.contract import ContractError, load_contracts

    try:
        return {c.name: c for c in load_contracts(settings.contracts_dir)}
    except (ContractError, FileNotFoundError):
        return {}


def _memory_limit(settings: "Settings") -> str:
    """DuckDB memory cap for the match stage (``UNIGRID_MATCH_MEMORY_LIMIT``, default 4GB)."""
    from matching.model import LINK_MEMORY_LIMIT

    return settings.extra.get("UNIGRID_MATCH_MEMORY_LIMIT") or LINK_MEMORY_LIMIT


def standardise_stage(settings: "Settings", ctx: "RunContext") -> "StageResult":
    """Bring ``std.record`` up to the staged sources (one row per staged record).

    Incremental unless ``ctx.full_rebuild`` (or ``std.record`` is missing or has other
    columns): only new and changed staged records are standardised, removed keys are deleted;
    ``std.delta`` / ``std.delta_meta`` say what changed (matching/README.md). A re-run of the
    last run first undoes it, so it gives the same table and delta.
    """
    from matching.std import (apply_std, iter_staged, plan_keys, rollback_run, staged_queries,
                              standardise_records, std_record_current)
    from unigrid.stages import StageFailed, StageResult
    from warehouse.connection import work_db

    contracts = _contracts(settings)
    with work_db(settings.work_db) as con:
        rollback_run(con, ctx.run_id)
        full = ctx.full_rebuild or not std_record_current(con)
        keys, todo = plan_keys(con, ctx.run_id, full, contracts, ctx.sources)
        if keys == 0:
            raise StageFailed("standardise: no staged records (run extract and validate first)")
        queries = staged_queries(con, ctx.run_id, contracts, ctx.sources, only_todo=not full)
        # chunked: standardise a bounded number of rows at a time (memory stays flat)
        meta = apply_std(con, (standardise_records(chunk) for chunk in iter_staged(con, queries)),
                         ctx.run_id, full, scope=ctx.sources)
        con.execute("DROP TABLE IF EXISTS std.stage_keys")
        by_source = dict(con.execute(
            "SELECT source, count(*) FROM std.record GROUP BY source ORDER BY source").fetchall())
        ids = dict(con.execute(
            "SELECT id_status, count(*) FROM std.record GROUP BY id_status").fetchall())
    return StageResult(stage="standardise", counts={
        "records": meta["records"], "sources": len(by_source), "by_source": by_source,
        "id_status": ids, "new": meta["new"], "changed": meta["changed"],
        "removed": meta["removed"], "standardised": todo, "full": meta["full"]})


def _model_frame(settings: "Settings"):
    from matching.link import model_input
    from warehouse.connection import work_db

    with work_db(settings.work_db) as con:
        return model_input(con)


def train_and_save(settings: "Settings", ctx: "RunContext", seed: int = 42) -> tuple[int, str]:
    """Train a model on the current ``std.record`` and save it as the next version."""
    from matching.model import current_model, save_model, train

    frame = _model_frame(settings)
    model = train(frame, seed=seed)
    path = save_model(model, settings.model_dir, on=ctx.business_date,
                      meta={"trained_on_run": ctx.run_id, "records": int(len(frame)),
                            "seed": seed})
    version, _ = current_model(settings.model_dir)  # type: ignore[misc]
    return version, path.name


def train_stage(settings: "Settings", ctx: "RunContext") -> "StageResult":
    """Train and save a new model version (``unigrid model train``)."""
    from unigrid.stages import StageResult

    t0 = time.perf_counter()
    version, name = train_and_save(settings, ctx)
    return StageResult(stage="train", seconds=time.perf_counter() - t0,
                       counts={"model_version": version}, messages=[f"model saved: {name}"])


def match_stage(settings: "Settings", ctx: "RunContext") -> "StageResult":
    """Link ``std.record`` into persons with stable ids; write the ``link`` tables.

    Incremental (only pairs touching new or changed records) unless this is a full rebuild,
    a retrain, a new model version or standardise rebuilt everything (``std.delta_meta``)."""
    from matching.decisions import effective_decisions
    from matching.link import run_linkage
    from matching.model import current_model, ensure_frozen_tf
    from unigrid.stages import StageResult
    from warehouse.connection import work_db

    messages = []
    retrain = settings.extra.get("UNIGRID_MATCH_RETRAIN", "").lower() in ("1", "true", "yes")
    loaded = None if retrain else current_model(settings.model_dir)
    if loaded is None:
        version, name = train_and_save(settings, ctx)
        messages.append(f"trained model {name}")
        loaded = current_model(settings.model_dir)
    version, model = loaded  # type: ignore[misc]
    decisions = effective_decisions(settings.decisions_db)
    with work_db(settings.work_db) as con:
        con.execute(f"SET memory_limit = '{_memory_limit(settings)}'")
        tf = ensure_frozen_tf(con, settings.model_dir, version)
        outcome = run_linkage(con, ctx.run_id, model, decisions, tf=tf, model_version=version,
                              full=retrain or ctx.full_rebuild)
    counts = {"model_version": version, **outcome.counts}
    return StageResult(stage="match", counts=counts, messages=messages + outcome.messages)
