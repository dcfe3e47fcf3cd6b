"""One runner for every declared rule: findings with stable ids, evidence hashes and statuses.

Per run (all SQL in the work database):

1. :func:`quality.rules.inputs.prepare_inputs` builds ``chk_rec`` and ``chk_death``;
2. each rule's query runs into ``chk_found`` (one row per finding);
3. the finding id is ``F`` + 16 hex digits of sha256(rule, subject). The subject is the
   person_id (subsidy household ``source:case number`` for ``deceased_subsidy``); for
   ``id_conflict`` it is the ID number, which is first replaced by its HMAC-SHA256 under the
   finding key (:func:`finding_key`), so neither ids nor stored rows expose an ID number;
4. the evidence hash is 16 hex digits of sha256 over the sorted evidence records
   ``(source, source_key, row_hash)``: it changes when a record is added or removed or its
   source row changes;
5. ``"check".finding_seen`` keeps every run's findings (a re-run replaces its run's rows), so
   first and last seen runs are exact and the stage is idempotent per run id;
6. ``"check".finding`` (columns exactly those of ``audit.finding``) is rebuilt: every finding
   ever seen up to this run, its latest version, and its status from the auditors' latest
   review: ``dismissed`` stays dismissed while the evidence hash equals the hash the auditor
   saw and reopens (``open``) when it differs; ``confirmed`` stays confirmed; no review is
   ``open``.

``check`` is an SQL keyword: write the schema as ``"check"``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence, Union

import duckdb

from quality.rules.catalog import RULE_COLUMNS, RULES, Rule
from quality.rules.inputs import prepare_inputs
from warehouse.schema import DUCKDB_TYPES, table

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from unigrid.settings import Settings
    from unigrid.stages import RunContext, StageResult

CHECK = '"check"'
"""The schema of the check stage's outputs (quoted: ``check`` is an SQL keyword)."""

FINDING_COLUMNS: tuple[str, ...] = table("audit.finding").column_names()
"""Columns of ``"check".finding`` = those of ``audit.finding``, in the same order."""

KEY_ENV = "UNIGRID_FINDING_KEY"
"""Environment variable holding the HMAC key for secret subjects (hex or text)."""


def finding_key(settings: "Settings") -> bytes:
    """The HMAC key for ID-number subjects.

    ``UNIGRID_FINDING_KEY`` if set; else ``<home>/keys/finding.key``, created once with 32
    random bytes (mode 0600). Keep the file apart from the data it protects (back it up: a new
    key gives ``id_conflict`` findings new ids).
    """
    env = settings.extra.get(KEY_ENV)
    if env:
        return env.encode("utf-8")
    path = Path(settings.home) / "keys" / "finding.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip().encode("utf-8")


def keyed_subjects(values: Sequence[str], key: bytes) -> list[str]:
    """HMAC-SHA256 (hex) of each value: a pseudonymous subject for an ID number."""
    return [hmac.new(key, v.encode("utf-8"), hashlib.sha256).hexdigest() for v in values]


def rule_overrides(extra: Mapping[str, str], rules: Sequence[Rule] = RULES
                   ) -> dict[str, dict[str, int]]:
    """Rule parameters set in the environment: ``UNIGRID_RULE_<RULE>_<PARAM>=<int>``.

    E.g. ``UNIGRID_RULE_DEATH_NOT_CANCELLED_DAYS=60``.
    """
    out: dict[str, dict[str, int]] = {}
    for r in rules:
        for p in r.params:
            v = extra.get(f"UNIGRID_RULE_{r.id.upper()}_{p.upper()}")
            if v is not None:
                out.setdefault(r.id, {})[p] = int(v)
    return out


def _create_outputs(con: duckdb.DuckDBPyConnection) -> None:
    spec = table("audit.finding")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {CHECK}")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {CHECK}.finding_seen (
        run_id VARCHAR NOT NULL, finding_id VARCHAR NOT NULL, rule VARCHAR NOT NULL,
        person_id VARCHAR, subject_key VARCHAR, evidence JSON, amount_monthly DECIMAL(18,2),
        amount_total DECIMAL(18,2), months INTEGER, evidence_hash VARCHAR, event_date DATE)""")
    cols = ", ".join(f'"{c.name}" {DUCKDB_TYPES[c.type]}' for c in spec.columns)
    con.execute(f"CREATE OR REPLACE TABLE {CHECK}.finding ({cols})")


def execute_rules(con: duckdb.DuckDBPyConnection, business_date: date, key: bytes,
                  rules: Sequence[Rule] = RULES,
                  overrides: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, int]:
    """Run every rule over the ``chk_*`` tables into ``chk_found``; return findings per rule.

    ``chk_found`` has ``rule``, ``finding_id``, ``evidence_hash``, ``evidence`` (JSON) and the
    amount columns; secret subjects are already keyed-hashed.
    """
    bd = business_date.isoformat()
    con.execute("""CREATE OR REPLACE TEMP TABLE found_raw (
        rule VARCHAR, subject VARCHAR, person_id VARCHAR, subject_key VARCHAR,
        records STRUCT(source VARCHAR, source_key VARCHAR, row_hash VARCHAR)[], detail JSON,
        amount_monthly DECIMAL(18,2), amount_total DECIMAL(18,2), months INTEGER,
        event_date DATE)""")
    cols = ", ".join(RULE_COLUMNS)
    counts: dict[str, int] = {}
    for r in rules:
        sql = r.render_sql(bd, (overrides or {}).get(r.id))
        con.execute(f"INSERT INTO found_raw SELECT '{r.id}', {cols} FROM ({sql}) q")
        counts[r.id] = int(con.execute("SELECT count(*) FROM found_raw WHERE rule = ?",
                                       [r.id]).fetchall()[0][0])
        if r.secret_subject and counts[r.id]:
            subj = [s for (s,) in con.execute("SELECT DISTINCT subject FROM found_raw WHERE "
                                              "rule = ? AND subject IS NOT NULL",
                                              [r.id]).fetchall()]
            con.execute("CREATE OR REPLACE TEMP TABLE keyed_in AS SELECT "
                        "unnest(?::VARCHAR[]) AS subject, unnest(?::VARCHAR[]) AS keyed",
                        [subj, keyed_subjects(subj, key)])
            con.execute("""UPDATE found_raw f SET subject = k.keyed,
                               subject_key = 'id:' || substr(k.keyed, 1, 16)
                           FROM keyed_in k WHERE f.rule = ? AND f.subject = k.subject""",
                        [r.id])
            con.execute("DROP TABLE keyed_in")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE chk_found AS
        WITH f AS (SELECT *, list_sort(list_distinct(list_filter(records,
                          lambda x: x.source IS NOT NULL))) AS recs FROM found_raw)
        SELECT rule,
               'F' || substr(sha256(rule || chr(31) || subject), 1, 16) AS finding_id,
               person_id, subject_key,
               json_object('event_date', event_date, 'detail', detail,
                           'records', recs) AS evidence,
               amount_monthly, amount_total, months,
               substr(sha256(to_json(recs)::VARCHAR), 1, 16) AS evidence_hash, event_date
        FROM f ORDER BY rule, finding_id""")
    con.execute("DROP TABLE found_raw")
    dup = con.execute("SELECT count(*) - count(DISTINCT finding_id) FROM chk_found"
                      ).fetchall()[0][0]
    if dup:
        raise RuntimeError(f"check: {dup} findings share an id (a rule returned one subject "
                           "twice)")
    return counts


Reviews = Union["pd.DataFrame", Sequence[Sequence[Any]], None]
"""Latest reviews: a DataFrame with the columns of ``quality.rules.review.REVIEW_COLUMNS``, or
tuples in that order (:func:`quality.rules.review.latest_review_rows`), or None."""


def _reviews_into(con: duckdb.DuckDBPyConnection, reviews: Reviews) -> None:
    """Temp table ``review_in(finding_id, status, reason, user, rv_time, evidence_hash)``."""
    con.execute("""CREATE OR REPLACE TEMP TABLE review_in (finding_id VARCHAR, status VARCHAR,
        reason VARCHAR, "user" VARCHAR, rv_time TIMESTAMPTZ, evidence_hash VARCHAR)""")
    if reviews is None or not len(reviews):
        return
    if hasattr(reviews, "columns"):  # a DataFrame (tests, callers holding pandas)
        con.register("review_df", reviews[["finding_id", "status", "reason", "user", "at",
                                           "evidence_hash"]])
        con.execute("""INSERT INTO review_in SELECT finding_id, status, reason, "user",
                           CAST("at" AS TIMESTAMPTZ), CAST(evidence_hash AS VARCHAR)
                       FROM review_df""")
        con.unregister("review_df")
        return
    cols = list(zip(*reviews))  # review_id, finding_id, status, reason, user, at, hash
    con.execute("""INSERT INTO review_in SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),
                       unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::TIMESTAMPTZ[]),
                       unnest(?::VARCHAR[])""", [list(c) for c in cols[1:7]])


def store_findings(con: duckdb.DuckDBPyConnection, run_id: str, reviews: Reviews = None) -> int:
    """Record the run's findings and rebuild ``"check".finding`` with statuses; return its rows."""
    _create_outputs(con)
    con.execute(f"DELETE FROM {CHECK}.finding_seen WHERE run_id = ?", [run_id])
    con.execute(f"""INSERT INTO {CHECK}.finding_seen
        SELECT ?, finding_id, rule, person_id, subject_key, evidence, amount_monthly,
               amount_total, months, evidence_hash, event_date FROM chk_found""", [run_id])
    _reviews_into(con, reviews)
    con.execute(f"""
        INSERT INTO {CHECK}.finding
        WITH s AS (SELECT * FROM {CHECK}.finding_seen WHERE run_id <= $run),
        latest AS (SELECT * FROM s QUALIFY row_number() OVER (PARTITION BY finding_id
                                                              ORDER BY run_id DESC) = 1),
        span AS (SELECT finding_id, min(run_id) AS first_seen_run, max(run_id) AS last_seen_run
                 FROM s GROUP BY finding_id),
        rv AS (SELECT * FROM review_in),
        j AS (
            SELECT l.*, span.first_seen_run, span.last_seen_run,
                   CASE WHEN rv.status = 'dismissed' AND rv.evidence_hash IS NOT DISTINCT FROM
                             l.evidence_hash THEN 'dismissed'
                        WHEN rv.status = 'confirmed' THEN 'confirmed'
                        ELSE 'open' END AS st,
                   rv.status AS rv_status, rv.reason, rv."user" AS rv_user, rv.rv_time AS rv_at
            FROM latest l JOIN span USING (finding_id) LEFT JOIN rv USING (finding_id))
        SELECT finding_id, rule, person_id, subject_key, evidence, amount_monthly, amount_total,
               months, st,
               CASE WHEN st = 'dismissed' THEN reason END,
               CASE WHEN st = rv_status THEN rv_user END,
               CASE WHEN st = rv_status THEN rv_at END,
               first_seen_run, last_seen_run, evidence_hash
        FROM j ORDER BY rule, finding_id""", {"run": run_id})
    con.execute("DROP TABLE review_in")
    return int(con.execute(f"SELECT count(*) FROM {CHECK}.finding").fetchall()[0][0])


def run_checks(con: duckdb.DuckDBPyConnection, run_id: str, business_date: date,
               contracts: Mapping[str, Any], key: bytes, reviews: Reviews = None,
               rules: Sequence[Rule] = RULES,
               overrides: Mapping[str, Mapping[str, int]] | None = None,
               full: bool = False) -> dict[str, Any]:
    """Prepare the inputs, run the rules, store the findings; return counts for the summary.

    ``full``: rebuild the rules' inputs from every record even when the day's deltas allow
    bringing yesterday's forward (:func:`quality.rules.inputs.refresh_rec`).
    """
    inputs = prepare_inputs(con, run_id, contracts, full)
    per_rule = execute_rules(con, business_date, key, rules, overrides)
    total = store_findings(con, run_id, reviews)
    status = dict(con.execute(f"SELECT status, count(*) FROM {CHECK}.finding "
                              "WHERE last_seen_run = ? GROUP BY status ORDER BY status",
                              [run_id]).fetchall())
    return {"records": inputs["rec"], "persons_with_death_evidence": inputs["death"],
            "findings": sum(per_rule.values()), "by_rule": per_rule, "by_status": status,
            "findings_all_runs": total, "inputs_full": inputs["refresh"]["full"],
            "records_reselected": inputs["refresh"]["rebuilt"]}


def check_stage(settings: "Settings", ctx: "RunContext") -> "StageResult":
    """The ``check`` stage: every declared rule over the run's linked records (work DB)."""
    from quality.rules.inputs import contract_roles
    from quality.rules.review import latest_review_rows
    from unigrid.stages import StageFailed, StageResult
    from warehouse.connection import table_exists, work_db

    contracts = contract_roles(settings.contracts_dir)
    reviews = latest_review_rows(settings.decisions_db)
    key = finding_key(settings)
    with work_db(settings.work_db) as con:
        if not table_exists(con, "link", "person_link"):
            raise StageFailed("check: no link.person_link (run the match stage first)")
        counts = run_checks(con, ctx.run_id, ctx.business_date, contracts, key, reviews,
                            overrides=rule_overrides(settings.extra), full=ctx.full_rebuild)
    return StageResult(stage="check", counts=counts)
