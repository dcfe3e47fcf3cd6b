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
import json
import os
import re
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


FOUND_DDL = """(rule VARCHAR, subject VARCHAR, person_id VARCHAR, subject_key VARCHAR,
        records STRUCT(source VARCHAR, source_key VARCHAR, row_hash VARCHAR)[], detail JSON,
        amount_monthly DECIMAL(18,2), amount_total DECIMAL(18,2), months INTEGER,
        event_date DATE)"""
"""Columns of a rule's raw output (``found_raw``, kept as ``"check".found``)."""

DAILY_RULES = frozenset({"death_not_cancelled", "birth_not_registered"})
"""Rules whose findings depend on the business date (a threshold of days, days since the
event in the detail): re-run over every record each night."""


def rules_fingerprint(rules: Sequence[Rule], overrides: Mapping[str, Mapping[str, int]] | None,
                      key: bytes) -> str:
    """Hash of the rules' SQL (parameters filled, a fixed date), their order and the finding
    key: kept findings are reused only while it is unchanged."""
    text = json.dumps([[r.id, r.render_sql("2000-01-01", (overrides or {}).get(r.id))]
                       for r in rules] + [hashlib.sha256(key).hexdigest()])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _rule_into_found(con: duckdb.DuckDBPyConnection, r: Rule, bd: str, key: bytes,
                     overrides: Mapping[str, Mapping[str, int]] | None,
                     rec: str = "chk_rec", pair: str = "chk_pair") -> None:
    """Run rule ``r`` (over the tables ``rec`` and ``pair`` in place of ``chk_rec`` and
    ``chk_pair``) and append its rows to ``found_raw``, secret subjects keyed-hashed."""
    sql = r.render_sql(bd, (overrides or {}).get(r.id))
    sql = re.sub(r"\bchk_rec\b", rec, re.sub(r"\bchk_pair\b", pair, sql))
    con.execute(f"CREATE OR REPLACE TEMP TABLE rule_out {FOUND_DDL}")
    con.execute(f"INSERT INTO rule_out SELECT '{r.id}', {', '.join(RULE_COLUMNS)} FROM ({sql}) q")
    if r.secret_subject:
        subj = [s for (s,) in con.execute("SELECT DISTINCT subject FROM rule_out "
                                          "WHERE subject IS NOT NULL").fetchall()]
        if subj:
            con.execute("CREATE OR REPLACE TEMP TABLE keyed_in AS SELECT "
                        "unnest(?::VARCHAR[]) AS subject, unnest(?::VARCHAR[]) AS keyed",
                        [subj, keyed_subjects(subj, key)])
            con.execute("""UPDATE rule_out f SET subject = k.keyed,
                               subject_key = 'id:' || substr(k.keyed, 1, 16)
                           FROM keyed_in k WHERE f.subject = k.subject""")
            con.execute("DROP TABLE keyed_in")
    con.execute("INSERT INTO found_raw SELECT * FROM rule_out")
    con.execute("DROP TABLE rule_out")


_TOUCHED = "(SELECT person_id FROM chk_touched)"
_HOUSEHOLD = "source || ':' || coalesce(subsidy_case_no, source_key)"


def _rows_where(con: duckdb.DuckDBPyConnection, where: str) -> None:
    """``chk_rec_s``: the records matching ``where``, found on the columns it names and then
    read by rowid (reading every column of two million records to keep a few costs ten times
    more)."""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE chk_rec_s AS SELECT * FROM "check".rec
                    WHERE rowid IN (SELECT rowid FROM "check".rec WHERE {where})""")


def _scope(con: duckdb.DuckDBPyConnection, rule_id: str, key: bytes) -> tuple[str, str]:
    """For an incremental night: the records whose findings of rule ``rule_id`` may have
    changed, complete per finding (``chk_rec_t``: every record of the touched persons, or a
    new ``chk_rec_s``; ``chk_pair_s`` for the 重户 pairs); return the predicate over
    ``found_raw f`` selecting the kept findings they replace, and the records' table.

    - per person (``deceased_pensioner``, ``wanted_person_seen``): the touched persons;
    - ``deceased_subsidy``: subsidy households with a record changed or a record of a touched
      person (whose death evidence may have changed);
    - ``duplicate_registration``: touched persons plus the persons their registrations are
      paired with (``link.pair`` now, pair findings before): linked findings of those persons
      and pair findings between two of them;
    - ``id_conflict``: the ID numbers of the changed records (before and after).
    """
    if rule_id in ("deceased_pensioner", "wanted_person_seen"):
        return f"f.person_id IN {_TOUCHED}", "chk_rec_t"
    if rule_id == "deceased_subsidy":
        con.execute(f"""CREATE OR REPLACE TEMP TABLE chk_part AS
            SELECT DISTINCT {_HOUSEHOLD} AS part FROM (
                SELECT source, source_key, subsidy_case_no, kind FROM chk_changed
                UNION ALL SELECT source, source_key, subsidy_case_no, kind FROM chk_rec_t)
            WHERE kind = 'subsistence_allowance'""")
        _rows_where(con, f"kind = 'subsistence_allowance' AND {_HOUSEHOLD} IN "
                         "(SELECT part FROM chk_part)")
        return "f.subject IN (SELECT part FROM chk_part)", "chk_rec_s"
    if rule_id == "duplicate_registration":
        from quality.rules.inputs import pair_sql

        con.execute("""CREATE OR REPLACE TEMP TABLE chk_keys AS
            SELECT source, source_key FROM chk_rec_t WHERE kind = 'household_registry'""")
        con.execute(f"""CREATE OR REPLACE TEMP TABLE chk_part AS
            WITH p AS ({pair_sql(con)}),
            other AS (SELECT p.source_r AS source, p.source_key_r AS source_key FROM p
                      SEMI JOIN chk_keys k ON k.source = p.source_l
                                          AND k.source_key = p.source_key_l
                      UNION SELECT p.source_l, p.source_key_l FROM p
                      SEMI JOIN chk_keys k ON k.source = p.source_r
                                          AND k.source_key = p.source_key_r),
            before AS (SELECT person_id AS pa,
                              substr(subject, length('pair:' || person_id || '+') + 1) AS pb
                       FROM found_raw WHERE rule = 'duplicate_registration'
                         AND subject LIKE 'pair:%')
            SELECT person_id AS part FROM chk_touched
            UNION SELECT r.person_id FROM chk_rec r
                  SEMI JOIN other o ON o.source = r.source AND o.source_key = r.source_key
            UNION SELECT pb FROM before WHERE pa IN {_TOUCHED}
            UNION SELECT pa FROM before WHERE pb IN {_TOUCHED}""")
        _rows_where(con, "kind = 'household_registry' AND person_id IN "
                         "(SELECT part FROM chk_part)")
        con.execute("CREATE OR REPLACE TEMP TABLE chk_pair_s AS "
                    + pair_sql(con, keys="chk_rec_s"))
        con.execute("DROP TABLE chk_keys")
        return ("f.person_id IN (SELECT part FROM chk_part) AND (f.subject NOT LIKE 'pair:%' "
                "OR substr(f.subject, length('pair:' || f.person_id || '+') + 1) IN "
                "(SELECT part FROM chk_part))"), "chk_rec_s"
    if rule_id == "id_conflict":
        ids = [i for (i,) in con.execute("SELECT DISTINCT id18 FROM chk_changed WHERE id_ok "
                                         "AND id18 IS NOT NULL").fetchall()]
        con.execute("CREATE OR REPLACE TEMP TABLE chk_part AS SELECT unnest(?::VARCHAR[]) AS "
                    "id18, unnest(?::VARCHAR[]) AS part", [ids, keyed_subjects(ids, key)])
        _rows_where(con, "id18 IN (SELECT id18 FROM chk_part)")
        return "f.subject IN (SELECT part FROM chk_part)", "chk_rec_s"
    raise KeyError(rule_id)


SCOPED_RULES = frozenset({"deceased_pensioner", "wanted_person_seen", "deceased_subsidy",
                          "duplicate_registration", "id_conflict"})
"""Rules an incremental night re-runs only where the records changed (:func:`_scope`)."""


def kept_findings(con: duckdb.DuckDBPyConnection, fingerprint: str, built_before: str | None
                  ) -> bool:
    """True when ``"check".found`` holds the rules' output for the record table as it was
    before this run's refresh (same rules fingerprint)."""
    from warehouse.connection import table_exists

    if not (built_before and table_exists(con, "check", "found")
            and table_exists(con, "check", "found_state")):
        return False
    return con.execute('SELECT run_id, fingerprint FROM "check".found_state'
                       ).fetchall() == [(built_before, fingerprint)]


def execute_rules(con: duckdb.DuckDBPyConnection, business_date: date, key: bytes,
                  rules: Sequence[Rule] = RULES,
                  overrides: Mapping[str, Mapping[str, int]] | None = None,
                  reuse: bool = False, run_id: str | None = None) -> dict[str, int]:
    """Run every rule over the ``chk_*`` tables into ``chk_found``; return findings per rule.

    ``chk_found`` has ``rule``, ``finding_id``, ``evidence_hash``, ``evidence`` (JSON) and the
    amount columns; secret subjects are already keyed-hashed.

    ``reuse`` (the record table was brought forward: temp tables ``chk_changed``,
    ``chk_touched``; and ``"check".found`` holds the rules' output for the record table as it
    was before: :func:`kept_findings`): the rules of :data:`SCOPED_RULES` re-run only over the
    records whose findings may have changed (:func:`_scope`) and keep their other findings;
    the :data:`DAILY_RULES` re-run whole. With ``run_id``, the raw output is kept in
    ``"check".found`` for the next night.
    """
    bd = business_date.isoformat()
    fp = rules_fingerprint(rules, overrides, key)
    con.execute(f"CREATE OR REPLACE TEMP TABLE found_raw {FOUND_DDL}")
    if reuse:
        con.execute('INSERT INTO found_raw SELECT * FROM "check".found')
    for r in rules:
        if reuse and r.id in SCOPED_RULES:
            where, rec = _scope(con, r.id, key)
            con.execute(f"DELETE FROM found_raw f WHERE f.rule = ? AND {where}", [r.id])
            _rule_into_found(con, r, bd, key, overrides, rec=rec,
                             pair="chk_pair_s" if r.id == "duplicate_registration"
                             else "chk_pair")
            for t in ("chk_rec_s", "chk_pair_s", "chk_part"):
                con.execute(f"DROP TABLE IF EXISTS {t}")
            continue
        if reuse:
            con.execute("DELETE FROM found_raw WHERE rule = ?", [r.id])
        if "chk_pair" in r.sql and not con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = "
                "'chk_pair'").fetchall()[0][0]:
            from quality.rules.inputs import pair_sql

            con.execute("CREATE OR REPLACE TEMP TABLE chk_pair AS " + pair_sql(con))
        _rule_into_found(con, r, bd, key, overrides)
    counts = {r.id: 0 for r in rules}
    counts.update({k: int(v) for k, v in con.execute(
        "SELECT rule, count(*) FROM found_raw GROUP BY rule").fetchall()})
    if run_id is not None:
        con.execute(f'CREATE SCHEMA IF NOT EXISTS {CHECK}')
        con.execute(f"CREATE OR REPLACE TABLE {CHECK}.found AS SELECT * FROM found_raw "
                    "ORDER BY rule, subject")
        con.execute(f"CREATE OR REPLACE TABLE {CHECK}.found_state AS SELECT ? AS run_id, "
                    "? AS fingerprint", [run_id, fp])
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

    ``full``: rebuild the rules' inputs from every record and re-run every rule over them even
    when the day's deltas allow bringing yesterday's forward
    (:func:`quality.rules.inputs.refresh_rec`, :func:`execute_rules`). One transaction.
    """
    con.execute("BEGIN TRANSACTION")  # the kept tables move forward together, or not at all
    try:
        inputs = prepare_inputs(con, run_id, contracts, full)
        refresh = inputs["refresh"]
        reuse = not refresh["full"] and kept_findings(
            con, rules_fingerprint(rules, overrides, key), refresh["built_before"])
        per_rule = execute_rules(con, business_date, key, rules, overrides, reuse=reuse,
                                 run_id=run_id)
        total = store_findings(con, run_id, reviews)
        status = dict(con.execute(f"SELECT status, count(*) FROM {CHECK}.finding "
                                  "WHERE last_seen_run = ? GROUP BY status ORDER BY status",
                                  [run_id]).fetchall())
        for t in ("chk_changed", "chk_touched", "chk_rec_t"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return {"records": inputs["rec"], "persons_with_death_evidence": inputs["death"],
            "findings": sum(per_rule.values()), "by_rule": per_rule, "by_status": status,
            "findings_all_runs": total, "inputs_full": inputs["refresh"]["full"],
            "rules_incremental": reuse,
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
