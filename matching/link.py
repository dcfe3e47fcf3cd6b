"""The linkage engine over ``std.record``: deterministic pass, model scoring, bands, review queue,
clustering with human decisions, stable ids, golden records, events.

Everything lands in the work DB ``link`` schema, with the master column names:
``link.pair`` (scored candidate pairs with per-field match weights and band),
``link.review_queue``, ``link.person_link(source, source_key, person_id, method, score)``,
``link.person`` (golden records with lineage), ``link.person_event(event_id, run_id, event,
person_id, other_person_id, detail, at)``, and the history tables that make ids stable
(``link.person_link_history``, ``link.id_counter``). Incremental bookkeeping:
``link.record_state`` (record id and row hash the tables were built from), ``link.link_state``
(fingerprint of model, term frequencies and rules), and for the publish stage
``link.delta_person(person_id, change)`` and ``link.delta_meta(run_id, full, pairs_scored,
persons_touched)``. Pair sets stay in DuckDB (no pandas frame of pairs).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from matching.clustering import cluster
from matching.model import (BLOCKING_RULES, MODEL_INPUT_SQL, TF_COLUMNS, make_linker,
                            release_linker, score_into, term_frequency_sql)
from matching.stable_ids import ID_PREFIX, assign_person_ids
from matching.survivorship import golden_sql
from warehouse.connection import table_exists

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Thresholds:
    """Match-weight bands: ``>= match`` links, ``[review, match)`` goes to review, below is
    a non-match. Deterministic links are always in the match band."""

    match: float = 4.0
    review: float = 2.0


DETERMINISTIC_STRENGTH = 1e6
"""Edge strength of a deterministic link (beats any model weight, loses to a human 'same')."""

NAME_OK = """(l.name = r.name OR l.name_py = r.name_py OR l.name_pyf = r.name_pyf
    OR l.name IS NULL OR r.name IS NULL
    OR (l.name_unknown AND r.name LIKE replace(l.name, '?', '_'))
    OR (r.name_unknown AND l.name LIKE replace(r.name, '?', '_')))"""
"""Names compatible for the deterministic pass (equal, homophone, dialect, unknown chars)."""

DOB_OK = """(coalesce(l.birth_date, l.id_birth_date) = coalesce(r.birth_date, r.id_birth_date)
    OR coalesce(l.birth_date, l.birth_month) IS NULL OR coalesce(r.birth_date, r.birth_month) IS NULL
    OR (l.birth_date IS NULL OR r.birth_date IS NULL) AND l.birth_month = r.birth_month
    OR damerau_levenshtein(strftime(l.birth_date, '%Y%m%d'), strftime(r.birth_date, '%Y%m%d')) <= 1)"""
"""Birth dates compatible (equal, missing, same month for month-only sources, one typo)."""


NAME_CLOSE = """(l.surname_py = r.surname_py
    AND jaro_winkler_similarity(l.name_py, r.name_py) >= 0.88)"""
"""Names close enough that a typing error is plausible (the model's 'close pinyin' level)."""


def deterministic_sql(records: str = "std.record") -> str:
    """Pairs sharing a usable ID number, with the deterministic verdict.

    ``deterministic``: same ID and compatible names and birth dates.
    ``conflict``: same ID on clearly different names (one ID number on two people: 重号, or
    a typo landing on a real number): never merged, queued. The birth date does not clear a
    conflict: two people sharing one number usually share the birth date it encodes.
    """
    return f"""
SELECT l.record_id AS record_id_l, r.record_id AS record_id_r,
       CASE WHEN {NAME_OK} AND {DOB_OK} THEN 'deterministic'
            WHEN NOT {NAME_OK} AND NOT {NAME_CLOSE} THEN 'conflict' END AS verdict
FROM {records} l JOIN {records} r ON l.id_key = r.id_key AND l.record_id < r.record_id
"""


def deterministic_touching_sql(dirty: str = "dirty_ids") -> str:
    """The rows of :func:`deterministic_sql` whose pair has a record in ``dirty`` (a table of
    record ids), found from the dirty side (two joins on the ID key) instead of filtering the
    whole self-join."""
    sel = f"""SELECT l.record_id AS record_id_l, r.record_id AS record_id_r,
       CASE WHEN {NAME_OK} AND {DOB_OK} THEN 'deterministic'
            WHEN NOT {NAME_OK} AND NOT {NAME_CLOSE} THEN 'conflict' END AS verdict"""
    return f"""
WITH d AS (SELECT * FROM std.record WHERE id_key IS NOT NULL
           AND record_id IN (SELECT record_id FROM {dirty}))
{sel} FROM d l JOIN std.record r ON l.id_key = r.id_key AND l.record_id < r.record_id
UNION
{sel} FROM std.record l JOIN d r ON l.id_key = r.id_key AND l.record_id < r.record_id
"""


@dataclass
class MatchOutcome:
    """Counts of one match run."""

    counts: dict[str, Any] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


def model_input(con: duckdb.DuckDBPyConnection, table: str = "std.record") -> pd.DataFrame:
    """The model-input frame (derived columns) of the std records."""
    return con.execute(MODEL_INPUT_SQL.format(table=table) + " ORDER BY record_id").df()


TWO_ID_CANDIDATES_SQL = """
SELECT l.record_id AS record_id_l, r.record_id AS record_id_r
FROM std.record l JOIN std.record r
  ON l.name = r.name AND l.birth_date = r.birth_date AND l.sex = r.sex
 AND l.record_id < r.record_id
WHERE l.kind = 'household_registry' AND r.kind = 'household_registry'
  AND l.id_key IS NOT NULL AND r.id_key IS NOT NULL AND l.id_key <> r.id_key
"""
"""Two household-registry records with the same name, birth date and sex under two different
valid ID numbers: a possible double registration (重户) whatever the model's weight (their
houses usually differ, which pulls the weight below the review band)."""


def _decisions_as_ids(con: duckdb.DuckDBPyConnection, decisions: pd.DataFrame) -> pd.DataFrame:
    """Effective decisions mapped to record ids (pairs whose records exist in std.record)."""
    cols = ["record_id_l", "record_id_r", "verdict", "decision_id"]
    if decisions is None or decisions.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c != "verdict" else object)
                             for c in cols})
    con.register("dec_in", decisions[["left_source", "left_key", "right_source", "right_key",
                                      "verdict", "decision_id"]])
    out = con.execute("""
        SELECT least(a.record_id, b.record_id) AS record_id_l,
               greatest(a.record_id, b.record_id) AS record_id_r, d.verdict, d.decision_id
        FROM dec_in d
        JOIN std.record a ON a.source = d.left_source AND a.source_key = d.left_key
        JOIN std.record b ON b.source = d.right_source AND b.source_key = d.right_key""").df()
    con.unregister("dec_in")
    return out


def _previous_run(con: duckdb.DuckDBPyConnection, run_id: str) -> tuple[str | None, int]:
    """Latest earlier run with links, and the id counter after it."""
    row = con.execute("SELECT max(run_id) FROM link.person_link_history WHERE run_id < ?",
                      [run_id]).fetchall()[0]
    prev = row[0] if row else None
    counter = con.execute("SELECT coalesce(max(last_counter), 0) FROM link.id_counter "
                          "WHERE run_id < ?", [run_id]).fetchall()[0][0]
    return prev, int(counter)


_HISTORY_DDL = """
CREATE SCHEMA IF NOT EXISTS link;
CREATE TABLE IF NOT EXISTS link.person_link_history (
    run_id VARCHAR, source VARCHAR, source_key VARCHAR, person_id VARCHAR, method VARCHAR,
    score DOUBLE);
CREATE TABLE IF NOT EXISTS link.id_counter (run_id VARCHAR PRIMARY KEY, last_counter BIGINT);
CREATE TABLE IF NOT EXISTS link.person_event_history (
    event_id VARCHAR, run_id VARCHAR, event VARCHAR, person_id VARCHAR, other_person_id VARCHAR,
    detail VARCHAR, "at" TIMESTAMPTZ);
"""


_STATE_DDL = """
CREATE TABLE IF NOT EXISTS link.link_state (
    run_id VARCHAR, fingerprint VARCHAR, model_version VARCHAR, records BIGINT,
    "at" TIMESTAMPTZ);
"""
"""What the current ``link`` tables were built with (one row, written last: a run that
stopped half-way leaves no row, and the next run is then a full linkage)."""

LINK_LOGIC = "2"
"""Bump when the pair logic changes in a way the fingerprint's SQL texts do not show."""


VOLATILE_COLUMNS = ("run_id",)
"""``std.record`` columns left out of the record hash: they say when a record was
standardised, not what it says (nothing in linkage or survivorship reads them)."""


def _std_columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                      "WHERE table_schema = 'std' AND table_name = 'record'")
            .fetchall()}


def std_delta_full(con: duckdb.DuckDBPyConnection) -> bool:
    """True unless ``std.delta_meta`` exists and says the standardise stage was incremental."""
    if not table_exists(con, "std", "delta_meta"):
        return True
    row = con.execute('SELECT "full" FROM std.delta_meta ORDER BY run_id DESC LIMIT 1').fetchall()
    return not row or bool(row[0][0])


def _tf_digest(con: duckdb.DuckDBPyConnection, table: Any) -> str:
    if isinstance(table, (str, Path)):
        q = f"SELECT count(*), bit_xor(hash(t)) FROM read_parquet('{table}') t"
        return str(con.execute(q).fetchall()[0])
    con.register("tf_digest_in", table)
    try:
        return str(con.execute("SELECT count(*), bit_xor(hash(t)) FROM tf_digest_in t")
                   .fetchall()[0])
    finally:
        con.unregister("tf_digest_in")


def link_fingerprint(con: duckdb.DuckDBPyConnection, model: dict[str, Any],
                     model_version: Any, thresholds: Thresholds, tf: dict[str, Any]) -> str:
    """Digest of everything a stored pair's weight and band depend on besides its two
    records: model (and version), frozen term frequencies, thresholds, pair rules."""
    h = hashlib.sha256()
    for part in (json.dumps(model, sort_keys=True, ensure_ascii=False), str(model_version),
                 repr((thresholds.match, thresholds.review)), deterministic_sql(),
                 TWO_ID_CANDIDATES_SQL, repr(BLOCKING_RULES), LINK_LOGIC,
                 *(f"{c}:{_tf_digest(con, t)}" for c, t in sorted(tf.items()))):
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()


def _incremental_possible(con: duckdb.DuckDBPyConnection, fingerprint: str) -> bool:
    needed = ("link_state", "record_state", "pair", "person_link", "person")
    if not all(table_exists(con, "link", t) for t in needed):
        return False
    row = con.execute("SELECT fingerprint FROM link.link_state").fetchall()
    return len(row) == 1 and row[0][0] == fingerprint


def _pair_sql(thresholds: Thresholds, scope: str) -> str:
    """New pairs (model, deterministic, two-ID candidates) with method and band, from the
    temp tables ``model_pairs`` and ``det_pairs``; ``scope`` restricts the candidates."""
    two_id = TWO_ID_CANDIDATES_SQL + (f" AND ({scope})" if scope else "")
    return f"""
WITH j AS (
    SELECT coalesce(m.record_id_l, d.record_id_l) AS record_id_l,
           coalesce(m.record_id_r, d.record_id_r) AS record_id_r,
           m.* EXCLUDE (record_id_l, record_id_r), d.verdict
    FROM model_pairs m FULL JOIN det_pairs d
      ON m.record_id_l = d.record_id_l AND m.record_id_r = d.record_id_r),
b AS (
    SELECT j.* EXCLUDE (verdict),
           CASE verdict WHEN 'deterministic' THEN 'deterministic'
                        WHEN 'conflict' THEN 'conflict' ELSE 'model' END AS method,
           CASE WHEN verdict = 'deterministic' THEN 'match'
                WHEN verdict = 'conflict' THEN 'conflict'
                WHEN match_weight >= {thresholds.match} THEN 'match'
                WHEN match_weight >= {thresholds.review} THEN 'review'
                ELSE 'non_match' END AS band
    FROM j),
t AS (SELECT c.record_id_l, c.record_id_r FROM ({two_id}) c
      ANTI JOIN b ON b.record_id_l = c.record_id_l AND b.record_id_r = c.record_id_r)
SELECT * FROM b
UNION ALL BY NAME
SELECT record_id_l, record_id_r, 'identity_candidate' AS method, 'review' AS band FROM t
"""


_WITH_SOURCES = """
SELECT p.*, a.source AS source_l, a.source_key AS source_key_l,
       b.source AS source_r, b.source_key AS source_key_r,
       (a.id_key IS NOT NULL AND b.id_key IS NOT NULL AND a.id_key <> b.id_key
        AND damerau_levenshtein(a.id_key, b.id_key) > 1) AS two_ids
FROM new_pairs p JOIN std.record a ON a.record_id = p.record_id_l
JOIN std.record b ON b.record_id = p.record_id_r
"""


_L = re.compile(r"\bl\.")


def blocking_keys(rules: list[str] = BLOCKING_RULES) -> list[list[str]] | None:
    """Each blocking rule as its key expressions over the left record (``l.x = r.x AND
    f(l.y) = f(r.y)`` -> ``["l.x", "f(l.y)"]``), or None if a rule is not such a conjunction
    of equalities (then every record is a candidate)."""
    out = []
    for rule in rules:
        keys = []
        for part in rule.split(" AND "):
            left, sep, right = part.partition(" = ")
            if not sep or _L.sub("r.", left.strip()) != right.strip():
                return None
            keys.append(left.strip())
        out.append(keys)
    return out


def _incremental_candidates_sql() -> str:
    """Record ids the model may pair with a dirty record: the dirty ones and every record
    sharing all keys of some blocking rule with a dirty one (so scoring only these gives
    exactly the blocked pairs of a full run that touch a dirty record)."""
    rules = blocking_keys()
    if rules is None:
        return "SELECT record_id FROM std.record"
    parts = ["SELECT record_id FROM dirty_ids"]
    for keys in rules:
        on = " AND ".join(f"({_L.sub('c.', k)}) = ({_L.sub('d.', k)})" for k in keys)
        parts.append(f"SELECT c.record_id FROM mi c JOIN mi_dirty d ON {on}")
    return (f"WITH mi AS MATERIALIZED ({MODEL_INPUT_SQL.format(table='std.record')}), "
            "mi_dirty AS MATERIALIZED (SELECT * FROM mi SEMI JOIN dirty_ids USING (record_id)) "
            + " UNION ".join(parts))


SCORING_WORK_MEMORY = "1GB"
"""Work DB memory limit while Splink scores (its output spills past it)."""


def _score_pairs(con: duckdb.DuckDBPyConnection, model: dict[str, Any], tf: dict[str, Any],
                 thresholds: Thresholds, incremental: bool, out: MatchOutcome) -> None:
    """Write ``link.pair``: all pairs (full) or the pairs touching ``dirty_ids`` replacing
    those touching changed or removed records (incremental). Pairs stay in DuckDB."""
    scope = ("l.record_id IN (SELECT record_id FROM dirty_ids) OR "
             "r.record_id IN (SELECT record_id FROM dirty_ids)") if incremental else ""
    con.execute("CREATE OR REPLACE TEMP TABLE det_pairs AS SELECT * FROM ("
                + (deterministic_touching_sql() if incremental else deterministic_sql())
                + ") WHERE verdict IS NOT NULL")
    dirty = (con.execute("SELECT record_id FROM dirty_ids ORDER BY 1").fetchnumpy()["record_id"]
             if incremental else None)
    t1 = time.perf_counter()
    if dirty is not None and len(dirty) == 0:
        con.execute("CREATE OR REPLACE TEMP TABLE model_pairs AS SELECT record_id_l, "
                    "record_id_r, match_weight, match_probability, COLUMNS('^mw_') "
                    "FROM link.pair LIMIT 0")
    else:
        mi = MODEL_INPUT_SQL.format(table="std.record")
        frame = con.sql(mi if dirty is None else
                        f"SELECT * FROM ({mi}) WHERE record_id IN "
                        f"({_incremental_candidates_sql()})").to_arrow_table()
        out.counts["records_scored"] = frame.num_rows
        # while Splink's engine works, the work DB only receives its output: shrink its
        # buffer pool so the two databases do not both hold their full budget
        limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        try:
            con.execute(f"SET memory_limit = '{SCORING_WORK_MEMORY}'")
        except duckdb.Error:  # pragma: no cover - more than that pinned: keep the limit
            pass
        try:
            score_into(con, "model_pairs", frame, model, tf, thresholds.review, dirty)
        finally:
            con.execute(f"SET memory_limit = '{limit}'")
        del frame
    out.counts["model_seconds"] = round(time.perf_counter() - t1, 1)
    con.execute("CREATE OR REPLACE TEMP TABLE new_pairs AS " + _pair_sql(thresholds, scope))
    out.counts["pairs_scored"] = int(con.execute("SELECT count(*) FROM new_pairs")
                                     .fetchall()[0][0])
    if incremental:
        leaving = """link.pair WHERE
                     record_id_l IN (SELECT record_id FROM gone_ids UNION ALL
                                     SELECT record_id FROM dirty_ids)
                     OR record_id_r IN (SELECT record_id FROM gone_ids UNION ALL
                                        SELECT record_id FROM dirty_ids)"""
        # both ends of every pair leaving or entering: their person_link rows may change
        con.execute(f"""CREATE OR REPLACE TEMP TABLE edge_touched AS
                        WITH p AS (SELECT record_id_l, record_id_r FROM {leaving}
                                   UNION ALL SELECT record_id_l, record_id_r FROM new_pairs)
                        SELECT record_id_l AS record_id FROM p
                        UNION SELECT record_id_r FROM p""")
        con.execute(f"DELETE FROM {leaving}")
        con.execute("INSERT INTO link.pair BY NAME " + _WITH_SOURCES)
    else:
        con.execute("CREATE OR REPLACE TABLE link.pair AS " + _WITH_SOURCES
                    + " ORDER BY p.record_id_l, p.record_id_r")
    for name in ("det_pairs", "model_pairs", "new_pairs"):
        con.execute(f"DROP TABLE IF EXISTS {name}")


def _cluster_records(con: duckdb.DuckDBPyConnection, out: MatchOutcome) -> np.ndarray:
    """Cluster ``std.record`` from ``link.pair`` and the registered ``dec_ids``; write the
    temp table ``cluster_of(record_id, cluster)`` (cluster = smallest record id of the
    group). Record ids may have gaps: they are mapped to dense indices for :func:`cluster`.
    Returns the unsatisfied cannot-links as record-id pairs (k, 2)."""
    ids = con.execute("SELECT record_id FROM std.record ORDER BY record_id"
                      ).fetchnumpy()["record_id"].astype(np.int64)
    edges = con.execute(f"""
            SELECT record_id_l, record_id_r,
                   CASE WHEN method = 'deterministic' THEN {DETERMINISTIC_STRENGTH}
                        ELSE coalesce(match_weight, 0.0) END AS strength
            FROM link.pair WHERE band = 'match'
            UNION ALL
            SELECT record_id_l, record_id_r, 'inf'::DOUBLE FROM dec_ids WHERE verdict = 'same'
            ORDER BY strength = 'inf'::DOUBLE, record_id_l, record_id_r""").fetchnumpy()
    left, right, strength = edges["record_id_l"], edges["record_id_r"], edges["strength"]
    cannot = con.execute("""
        SELECT record_id_l, record_id_r FROM dec_ids WHERE verdict = 'different'
        UNION ALL
        (SELECT p.record_id_l, p.record_id_r FROM link.pair p
         ANTI JOIN (SELECT * FROM dec_ids WHERE verdict = 'same') s
           ON s.record_id_l = p.record_id_l AND s.record_id_r = p.record_id_r
         WHERE p.band = 'conflict')""").fetchnumpy()

    def dense(a: Any) -> np.ndarray:
        return np.searchsorted(ids, np.asarray(a, dtype=np.int64))

    res = cluster(len(ids), dense(left), dense(right), np.asarray(strength, dtype=np.float64),
                  dense(cannot["record_id_l"]), dense(cannot["record_id_r"]))
    out.counts["reclustered_components"] = res.reclustered_components
    out.counts["unsatisfied_cannot_links"] = int(len(res.unsatisfied))
    con.register("labels_in", pa.table({"record_id": ids, "cluster": ids[res.labels]}))
    con.execute("CREATE OR REPLACE TEMP TABLE cluster_of AS SELECT * FROM labels_in")
    con.unregister("labels_in")
    return ids[res.unsatisfied] if len(res.unsatisfied) else np.zeros((0, 2), dtype=np.int64)


STATE_COLUMNS = {"cluster": "BIGINT", "person_id": "VARCHAR", "method": "VARCHAR"}
"""Columns of ``link.record_state`` besides ``record_id, h``: each record's cluster (smallest
record id of its group), person id and link method when the link tables were built. They let
the next run find the clusters that changed without comparing every link."""


def _state_run(con: duckdb.DuckDBPyConnection) -> str | None:
    """Run id of the finished link tables (``link.link_state``), None if there are none."""
    if not table_exists(con, "link", "link_state"):
        return None
    row = con.execute("SELECT max(run_id) FROM link.link_state").fetchall()
    return row[0][0] if row else None


def _cluster_state_ready(con: duckdb.DuckDBPyConnection) -> bool:
    """True when ``link.record_state`` holds every record's cluster, person id and method.

    A state written before these columns existed is completed once from ``link.person_link``
    (the tables it was finished with; record ids from ``std.record_key``)."""
    cols = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'link' "
        "AND table_name = 'record_state'").fetchall()}
    if not set(STATE_COLUMNS) <= cols:
        if not table_exists(con, "std", "record_key"):
            return False
        con.execute("""
            CREATE OR REPLACE TABLE link.record_state AS
            WITH l AS (SELECT k.record_id, l.person_id, l.method
                       FROM link.person_link l JOIN std.record_key k USING (source, source_key)),
            c AS (SELECT *, min(record_id) OVER (PARTITION BY person_id) AS cluster FROM l)
            SELECT s.record_id, s.h, c.cluster, c.person_id, c.method
            FROM link.record_state s LEFT JOIN c USING (record_id)""")
    missing = con.execute("SELECT count(*) FILTER (WHERE person_id IS NULL OR cluster IS NULL) "
                          "FROM link.record_state").fetchall()[0][0]
    return missing == 0


def _previous_links(con: duckdb.DuckDBPyConnection, persons: str | None = None) -> None:
    """TEMP ``prev_links(source, source_key, person_id)``: the current ``link.person_link``
    rows (before this run rewrites them), only those of ``persons`` (a SELECT of person ids)
    when given."""
    if table_exists(con, "link", "person_link"):
        where = f" WHERE person_id IN ({persons})" if persons else ""
        con.execute("CREATE OR REPLACE TEMP TABLE prev_links AS "
                    f"SELECT source, source_key, person_id FROM link.person_link{where}")
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE prev_links "
                    "(source VARCHAR, source_key VARCHAR, person_id VARCHAR)")


def _assign_ids_locally(con: duckdb.DuckDBPyConnection, counter: int) -> Any:
    """Stable ids for the clusters whose links can differ from last run's; the others keep
    theirs. Writes TEMP ``w_records(record_id, cluster)`` (records of those clusters) and
    ``prev_links`` (the previous links of their persons); returns the
    :class:`~matching.stable_ids.IdAssignment` of those clusters.

    A cluster is rewritten when its members are not exactly one previous cluster's (new,
    removed or moved records), or when it holds a touched record: changed (``dirty_ids``),
    an end of a pair that left or entered ``link.pair`` (``edge_touched``), or an end of a
    human decision now or last run (method ``human``). Every other cluster is some previous
    person's records, unchanged, with unchanged edges: it keeps that person's id, method and
    score. The rewritten clusters and the previous persons of their records (and of removed
    records) are closed under sharing a record, i.e. a union of components of the vote graph of
    :func:`assign_person_ids`, so assigning them alone gives what a global assignment gives
    them (new ids are numbered after the largest id of *all* previous links, as it does)."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE touched AS
        SELECT record_id FROM dirty_ids UNION SELECT record_id FROM edge_touched
        UNION SELECT record_id_l FROM dec_ids UNION SELECT record_id_r FROM dec_ids
        UNION SELECT record_id FROM link.record_state WHERE method = 'human'""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE w_records AS
        WITH j AS (SELECT c.cluster, s.cluster AS old
                   FROM cluster_of c LEFT JOIN link.record_state s USING (record_id)),
        g AS (SELECT cluster, count(*) AS n, count(old) AS n_old, min(old) AS lo, max(old) AS hi
              FROM j GROUP BY cluster),
        o AS (SELECT cluster AS old, count(*) AS n FROM link.record_state GROUP BY cluster),
        w AS (SELECT g.cluster FROM g LEFT JOIN o ON o.old = g.lo
              WHERE g.n_old < g.n OR g.lo <> g.hi OR o.n IS DISTINCT FROM g.n
              UNION SELECT c.cluster FROM cluster_of c SEMI JOIN touched USING (record_id))
        SELECT record_id, cluster FROM cluster_of SEMI JOIN w USING (cluster)""")
    _previous_links(con, "SELECT person_id FROM link.record_state WHERE record_id IN "
                         "(SELECT record_id FROM w_records UNION ALL "
                         "SELECT record_id FROM gone_ids)")
    largest = con.execute(
        f"SELECT max(('0x' || substr(person_id, {len(ID_PREFIX) + 1}))::UBIGINT) "
        "FROM link.person_link").fetchall()[0][0]
    current = con.sql("""SELECT r.source, r.source_key, w.cluster FROM w_records w
                         JOIN std.record r USING (record_id)""").to_arrow_table()
    previous = con.sql("SELECT * FROM prev_links").to_arrow_table()
    return assign_person_ids(current, previous, max(int(counter), int(largest or 0)))


def _person_link_sql(members: str) -> str:
    """``person_link`` rows (plus ``record_id, cluster``) of the records in ``members
    (record_id, cluster)``, ids from the registered ``ids_in``; method and score per record:
    its strongest edge inside its cluster."""
    return f"""
        WITH e AS (
            SELECT record_id_l, record_id_r, method,
                   CASE WHEN method = 'deterministic' THEN 1.0 ELSE match_probability END AS score,
                   CASE method WHEN 'deterministic' THEN 2 ELSE 1 END AS rank
            FROM link.pair WHERE band = 'match'
            UNION ALL SELECT record_id_l, record_id_r, 'human', 1.0, 3 FROM human_in),
        inside AS (
            SELECT e.* FROM e JOIN {members} a ON a.record_id = e.record_id_l
            JOIN {members} b ON b.record_id = e.record_id_r WHERE a.cluster = b.cluster),
        ends AS (SELECT record_id_l AS record_id, method, score, rank FROM inside
                 UNION ALL SELECT record_id_r, method, score, rank FROM inside),
        best AS (SELECT record_id, arg_max(method, rank * 10 + coalesce(score, 0)) AS method,
                        max(score) AS score FROM ends GROUP BY record_id)
        SELECT c.record_id, c.cluster, r.source, r.source_key, i.person_id,
               coalesce(b.method, 'single') AS method, b.score
        FROM {members} c JOIN std.record r USING (record_id)
        JOIN ids_in i ON i.cluster = c.cluster
        LEFT JOIN best b ON b.record_id = c.record_id"""


def _write_record_state(con: duckdb.DuckDBPyConnection, local: bool) -> None:
    """``link.record_state``: row hash (``rec_now``), cluster, person id and method of every
    record. Locally: only the rows of removed records and rewritten clusters change."""
    rows = ("SELECT n.record_id, n.h, p.cluster, p.person_id, p.method "
            "FROM rec_now n JOIN pl_rows p USING (record_id)")
    if local:
        con.execute("DELETE FROM link.record_state WHERE record_id IN (SELECT record_id FROM "
                    "gone_ids UNION ALL SELECT record_id FROM w_records)")
        con.execute("INSERT INTO link.record_state " + rows)
    else:
        con.execute("CREATE OR REPLACE TABLE link.record_state AS " + rows
                    + " ORDER BY n.record_id")


def run_linkage(con: duckdb.DuckDBPyConnection, run_id: str, model: dict[str, Any],
                decisions: pd.DataFrame | None = None, thresholds: Thresholds = Thresholds(),
                at: datetime | None = None, *, tf: dict[str, Any] | None = None,
                model_version: Any = None, full: bool = False) -> MatchOutcome:
    """Link ``std.record`` (in ``con``'s work DB) and write the ``link`` tables for ``run_id``.

    ``tf``: the frozen term-frequency tables of the model (:func:`matching.model.
    ensure_frozen_tf`); without them they are derived from today's records, which is fine
    for one-off runs but makes weights depend on the data. The linkage is incremental when
    nothing asks for a full one (``full``, ``std.delta_meta.full``), the previous link tables
    were finished with the same fingerprint (:func:`link_fingerprint`): then only pairs
    touching new or changed records are scored and only touched persons' golden records
    recomputed. Either way the tables equal those of a full linkage.
    """
    at = at or datetime.now(timezone.utc)
    out = MatchOutcome()
    t0 = time.perf_counter()
    con.execute(_HISTORY_DDL)
    con.execute(_STATE_DDL)
    n = int(con.execute("SELECT count(*) FROM std.record").fetchall()[0][0])
    out.counts["records"] = n
    if tf is None:
        tf = {c: con.sql(term_frequency_sql(c)).to_arrow_table() for c in TF_COLUMNS}
    fingerprint = link_fingerprint(con, model, model_version, thresholds, tf)
    incremental = (not full and not std_delta_full(con)
                   and _incremental_possible(con, fingerprint))
    out.counts["full"] = not incremental
    prev_run, counter = _previous_run(con, run_id)
    # stable ids only for what changed: needs last run's link tables and cluster state
    local_ids = incremental and _state_run(con) == prev_run and _cluster_state_ready(con)
    out.counts["ids_incremental"] = local_ids

    # 0. what changed since the link tables were built (row hash per record id)
    volatile = [c for c in VOLATILE_COLUMNS if c in _std_columns(con)]
    exclude = f" EXCLUDE ({', '.join(volatile)})" if volatile else ""
    con.execute("CREATE OR REPLACE TEMP TABLE rec_now AS SELECT record_id, hash(r) AS h "
                f"FROM (SELECT *{exclude} FROM std.record) r")
    if incremental:
        con.execute("CREATE OR REPLACE TEMP TABLE dirty_ids AS SELECT record_id FROM rec_now "
                    "ANTI JOIN link.record_state USING (record_id, h)")
        con.execute("CREATE OR REPLACE TEMP TABLE gone_ids AS SELECT record_id FROM "
                    "link.record_state ANTI JOIN rec_now USING (record_id, h)")
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE dirty_ids AS SELECT record_id FROM rec_now")
    out.counts["records_dirty"] = int(con.execute("SELECT count(*) FROM dirty_ids")
                                      .fetchall()[0][0])
    con.execute("DELETE FROM link.link_state")  # until this run finishes

    # 1-2. deterministic pass, model, two-ID candidates -> link.pair
    out.counts["state_seconds"] = round(time.perf_counter() - t0, 1)
    t = time.perf_counter()
    _score_pairs(con, model, tf, thresholds, incremental, out)
    out.counts["pairs_seconds"] = round(time.perf_counter() - t, 1)
    for band, cnt in con.execute("SELECT band, count(*) FROM link.pair GROUP BY band").fetchall():
        out.counts[f"pairs_{band}"] = int(cnt)
    det_counts = dict(con.execute("SELECT method, count(*) FROM link.pair WHERE method IN "
                                  "('deterministic', 'conflict') GROUP BY method").fetchall())
    out.counts["deterministic_pairs"] = int(det_counts.get("deterministic", 0))
    out.counts["id_conflicts"] = int(det_counts.get("conflict", 0))

    # 3. human decisions
    dec = _decisions_as_ids(con, decisions if decisions is not None else pd.DataFrame())
    out.counts["decisions_applied"] = int(len(dec))
    con.register("dec_ids", dec)

    # 4. clustering (global: cheap; edges read as arrays)
    t = time.perf_counter()
    unsat_ids = _cluster_records(con, out)
    out.counts["cluster_seconds"] = round(time.perf_counter() - t, 1)

    # 5. review queue
    con.register("human_in", dec[dec.verdict == "same"].assign(method="human")[
        ["record_id_l", "record_id_r", "method"]])
    con.register("unsat_in", pd.DataFrame(unsat_ids.reshape(-1, 2),
                                          columns=["record_id_l", "record_id_r"]))
    mw_cols = explanation_columns(con)
    explanation = ("to_json(struct_pack(" + ", ".join(f"{c} := round(p.{c}, 3)" for c in mw_cols)
                   + "))") if mw_cols else "NULL"
    con.execute(f"""
        CREATE OR REPLACE TABLE link.review_queue AS
        WITH q AS (
            SELECT record_id_l, record_id_r,
                   CASE WHEN band = 'conflict' THEN 'one_id_two_people'
                        WHEN two_ids THEN 'one_person_two_ids'
                        ELSE 'review_band' END AS reason,
                   match_weight, match_probability
            FROM link.pair
            WHERE band IN ('review', 'conflict') OR (band = 'match' AND two_ids)
            UNION ALL
            SELECT least(record_id_l, record_id_r), greatest(record_id_l, record_id_r),
                   'contradicting_decisions', NULL, NULL FROM unsat_in)
        SELECT '{run_id}' AS run_id,
               row_number() OVER (ORDER BY q.reason, q.match_weight DESC NULLS LAST,
                                  q.record_id_l, q.record_id_r) AS queue_no,
               q.reason, a.source AS left_source, a.source_key AS left_key,
               b.source AS right_source, b.source_key AS right_key,
               q.match_weight, q.match_probability,
               ca.cluster = cb.cluster AS linked_now, d.verdict AS decided,
               CAST({explanation} AS VARCHAR) AS explanation
        FROM q JOIN std.record a ON a.record_id = q.record_id_l
        LEFT JOIN link.pair p ON p.record_id_l = q.record_id_l AND p.record_id_r = q.record_id_r
        JOIN std.record b ON b.record_id = q.record_id_r
        JOIN cluster_of ca ON ca.record_id = q.record_id_l
        JOIN cluster_of cb ON cb.record_id = q.record_id_r
        LEFT JOIN dec_ids d ON d.record_id_l = q.record_id_l AND d.record_id_r = q.record_id_r
        WHERE d.verdict IS NULL OR d.verdict = 'unsure' OR q.reason = 'contradicting_decisions'
        ORDER BY queue_no""")
    out.counts["review_queue"] = int(con.execute(
        "SELECT count(*) FROM link.review_queue").fetchall()[0][0])

    # 6. stable ids (only for the clusters that can differ from last run's, when possible)
    t = time.perf_counter()
    if local_ids:
        ids = _assign_ids_locally(con, counter)
        scope = "w_records"
    else:
        _previous_links(con)
        previous = con.sql("SELECT source, source_key, person_id FROM link.person_link_history "
                           f"WHERE run_id = '{prev_run or ''}'").to_arrow_table()
        current = con.sql("""SELECT r.source, r.source_key, c.cluster FROM std.record r
                             JOIN cluster_of c USING (record_id)""").to_arrow_table()
        ids = assign_person_ids(current, previous, counter)
        scope = "cluster_of"
    out.counts["persons_relinked"] = int(len(ids.clusters))
    con.register("ids_in", ids.clusters)
    con.execute("CREATE OR REPLACE TEMP TABLE pl_rows AS " + _person_link_sql(scope))
    con.unregister("ids_in")
    if local_ids:
        con.execute("DELETE FROM link.person_link WHERE person_id IN "
                    "(SELECT person_id FROM prev_links)")
        con.execute("INSERT INTO link.person_link SELECT source, source_key, person_id, method, "
                    "score FROM pl_rows ORDER BY source, source_key")
    else:
        con.execute("CREATE OR REPLACE TABLE link.person_link AS SELECT source, source_key, "
                    "person_id, method, score FROM pl_rows ORDER BY source, source_key")
    con.execute("DELETE FROM link.person_link_history WHERE run_id = ?", [run_id])
    con.execute("INSERT INTO link.person_link_history SELECT ?, * FROM link.person_link",
                [run_id])
    con.execute("DELETE FROM link.id_counter WHERE run_id = ?", [run_id])
    con.execute("INSERT INTO link.id_counter VALUES (?, ?)", [run_id, ids.last_counter])
    ev = ids.events.copy()
    ev.insert(0, "run_id", run_id)
    ev.insert(0, "event_id", [f"{run_id}-{i + 1:07d}" for i in range(len(ev))])
    ev["at"] = at
    con.register("ev_in", ev)
    con.execute("""CREATE OR REPLACE TABLE link.person_event AS
                   SELECT event_id, run_id, event, person_id, other_person_id, detail,
                          CAST("at" AS TIMESTAMPTZ) AS "at" FROM ev_in""")
    con.unregister("ev_in")
    con.execute("DELETE FROM link.person_event_history WHERE run_id = ?", [run_id])
    con.execute("INSERT INTO link.person_event_history SELECT * FROM link.person_event")
    for event, cnt in con.execute(
            "SELECT event, count(*) FROM link.person_event GROUP BY event").fetchall():
        out.counts[f"events_{event}"] = int(cnt)

    out.counts["ids_seconds"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()

    # 7. persons touched, golden records (only theirs recomputed when incremental)
    _write_delta_persons(con, incremental)
    if incremental:
        con.execute("""CREATE OR REPLACE TEMP TABLE touched_links AS
                       SELECT l.* FROM link.person_link l SEMI JOIN link.delta_person d
                       ON d.person_id = l.person_id AND d.change IN ('new', 'changed')""")
        con.execute("DELETE FROM link.person WHERE person_id IN "
                    "(SELECT person_id FROM link.delta_person)")
        con.execute("INSERT INTO link.person BY NAME "
                    + golden_sql("std.record", "touched_links"))
        con.execute("DROP TABLE touched_links")
    else:
        con.execute("CREATE OR REPLACE TABLE link.person AS " +
                    golden_sql("std.record", "link.person_link") + " ORDER BY person_id")
    out.counts["golden_seconds"] = round(time.perf_counter() - t, 1)
    out.counts["persons"] = int(con.execute("SELECT count(*) FROM link.person").fetchall()[0][0])
    out.counts["persons_touched"] = int(con.execute("SELECT count(*) FROM link.delta_person")
                                        .fetchall()[0][0])
    con.execute("CREATE OR REPLACE TABLE link.delta_meta AS SELECT ? AS run_id, "
                '?::BOOLEAN AS "full", ?::BIGINT AS pairs_scored, ?::BIGINT AS persons_touched',
                [run_id, not incremental, out.counts["pairs_scored"],
                 out.counts["persons_touched"]])
    _write_record_state(con, local_ids)
    con.execute("INSERT INTO link.link_state VALUES (?, ?, ?, ?, ?)",
                [run_id, fingerprint, None if model_version is None else str(model_version), n,
                 at])
    for name in ("human_in", "dec_ids", "unsat_in"):
        con.unregister(name)
    for name in ("rec_now", "dirty_ids", "gone_ids", "prev_links", "cluster_of", "pl_rows",
                 "edge_touched", "touched", "w_records"):
        con.execute(f"DROP TABLE IF EXISTS {name}")
    out.counts["link_seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _write_delta_persons(con: duckdb.DuckDBPyConnection, incremental: bool) -> None:
    """``link.delta_person(person_id, change)``: persons new, changed (members or member
    records changed) or removed since the previous link tables. A full linkage reports every
    person ``new`` plus the removed ones.

    Compares this run's rewritten rows ``pl_rows`` with ``prev_links``, the previous rows of
    the same persons: all rows on a global id assignment; on a local one (:func:`_assign_ids_
    locally`) the rows of the rewritten clusters, which hold every person that can differ."""
    touched = """
        WITH x AS (SELECT c.person_id AS now_id, p.person_id AS prev_id
                   FROM pl_rows c FULL JOIN prev_links p USING (source, source_key)
                   WHERE c.person_id IS DISTINCT FROM p.person_id)
        SELECT now_id AS person_id FROM x WHERE now_id IS NOT NULL
        UNION SELECT prev_id FROM x WHERE prev_id IS NOT NULL
        UNION SELECT person_id FROM pl_rows
              WHERE record_id IN (SELECT record_id FROM dirty_ids)"""
    changed = (f"""SELECT t.person_id, 'changed' FROM ({touched}) t
                   SEMI JOIN now ON now.person_id = t.person_id
                   SEMI JOIN before ON before.person_id = t.person_id"""
               if incremental else
               "SELECT NULL::VARCHAR, NULL::VARCHAR WHERE FALSE")
    new = ("SELECT person_id, 'new' FROM now ANTI JOIN before USING (person_id)"
           if incremental else "SELECT person_id, 'new' FROM now")
    con.execute(f"""
        CREATE OR REPLACE TABLE link.delta_person AS
        WITH now AS (SELECT DISTINCT person_id FROM pl_rows),
        before AS (SELECT DISTINCT person_id FROM prev_links),
        d(person_id, change) AS ({new}
              UNION ALL SELECT person_id, 'removed' FROM before ANTI JOIN now USING (person_id)
              UNION ALL {changed})
        SELECT person_id::VARCHAR AS person_id, change::VARCHAR AS change
        FROM d ORDER BY person_id""")



def explanation_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The per-comparison match-weight columns present in ``link.pair``."""
    return [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'link' "
        "AND table_name = 'pair' AND column_name LIKE 'mw\\_%' ESCAPE '\\'").fetchall()]


def explain_pair(con: duckdb.DuckDBPyConnection, left: tuple[str, str], right: tuple[str, str],
                 model: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per-field match weights of a record pair: from ``link.pair`` if it was scored, else
    scored now with ``model`` (Splink ``score_pairs``). Values only, no personal data."""
    cols = explanation_columns(con)
    row = con.execute(f"""
        SELECT match_weight, match_probability, band, method{''.join(', ' + c for c in cols)}
        FROM link.pair
        WHERE (source_l, source_key_l, source_r, source_key_r) IN ((?, ?, ?, ?), (?, ?, ?, ?))
        """, [*left, *right, *right, *left]).fetchall()
    row = row[0] if row else None
    if row is not None:
        names = ["match_weight", "match_probability", "band", "method", *cols]
        return {k: (None if isinstance(v, float) and np.isnan(v) else v)
                for k, v in zip(names, row)}
    if model is None:
        raise KeyError("pair was not scored in this run and no model was given")
    frame = model_input(con)
    ids = con.execute("""SELECT (SELECT record_id FROM std.record WHERE source = ? AND
                                 source_key = ?),
                                (SELECT record_id FROM std.record WHERE source = ? AND
                                 source_key = ?)""", [*left, *right]).fetchall()[0]
    if None in ids:
        raise KeyError("record not found in std.record")
    linker = make_linker(frame, model)
    l_rec = {k: (None if pd.isna(v) else v) for k, v in frame[frame.record_id == ids[0]]
             .iloc[0].items()}
    r_rec = {k: (None if pd.isna(v) else v) for k, v in frame[frame.record_id == ids[1]]
             .iloc[0].items()}
    try:
        scored = linker.inference.score_pair(l_rec, r_rec).as_pandas_dataframe().iloc[0]
    finally:
        release_linker(linker)
    res = {"match_weight": float(scored["match_weight"]),
           "match_probability": float(scored["match_probability"]),
           "band": None, "method": "scored_on_request"}
    for c in scored.index:
        if c.startswith("mw_"):
            res[c] = float(scored[c])
    return res


def explanation_json(values: dict[str, Any]) -> str:
    """Compact JSON of an explanation (for the queue and the API)."""
    return json.dumps({k: (round(v, 3) if isinstance(v, float) else v)
                       for k, v in values.items()}, ensure_ascii=False)
