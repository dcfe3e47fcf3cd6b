"""The linkage engine over ``std.record``: deterministic pass, model scoring, bands, review queue,
clustering with human decisions, stable ids, golden records, events.

Everything lands in the work DB ``link`` schema, with the master column names:
``link.pair`` (scored candidate pairs with per-field match weights and band),
``link.review_queue``, ``link.person_link(source, source_key, person_id, method, score)``,
``link.person`` (golden records with lineage), ``link.person_event(event_id, run_id, event,
person_id, other_person_id, detail, at)``, and the history tables that make ids stable
(``link.person_link_history``, ``link.id_counter``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from matching.clustering import HUMAN_STRENGTH, cluster
from matching.model import MODEL_INPUT_SQL, make_linker
from matching.stable_ids import assign_person_ids
from matching.survivorship import golden_sql

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


@dataclass
class MatchOutcome:
    """Counts of one match run."""

    counts: dict[str, Any] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


def model_input(con: duckdb.DuckDBPyConnection, table: str = "std.record") -> pd.DataFrame:
    """The model-input frame (derived columns) of the std records."""
    return con.execute(MODEL_INPUT_SQL.format(table=table) + " ORDER BY record_id").df()


def predict_pairs(frame: pd.DataFrame, model: dict[str, Any], threshold: float) -> pd.DataFrame:
    """Score blocked candidate pairs with the model; keep those with weight >= ``threshold``.

    Columns: record_id_l, record_id_r, match_weight, match_probability, mw_<comparison>...
    """
    linker = make_linker(frame, model)
    df = linker.inference.predict(threshold_match_weight=threshold, warning_mode="never")
    out = df.as_pandas_dataframe()
    keep = ["record_id_l", "record_id_r", "match_weight", "match_probability"]
    keep += [c for c in out.columns if c.startswith("mw_")]
    out = out[keep].copy()
    lo = np.minimum(out.record_id_l.to_numpy(), out.record_id_r.to_numpy())
    hi = np.maximum(out.record_id_l.to_numpy(), out.record_id_r.to_numpy())
    out["record_id_l"], out["record_id_r"] = lo, hi
    return out


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


def add_two_id_candidates(con: duckdb.DuckDBPyConnection, pairs: pd.DataFrame) -> pd.DataFrame:
    """Add the :data:`TWO_ID_CANDIDATES_SQL` pairs the model did not keep, in the review band.

    They are never linked by this (band ``review``); a human decides from the review queue.
    """
    cand = con.execute(TWO_ID_CANDIDATES_SQL).df()
    if cand.empty:
        return pairs
    have = pairs[["record_id_l", "record_id_r"]].drop_duplicates()
    new = cand.merge(have, how="left", indicator=True)
    new = new[new["_merge"] == "left_only"].drop(columns="_merge")
    if new.empty:
        return pairs
    new = new.assign(method="identity_candidate", band="review")
    return pd.concat([pairs, new], ignore_index=True)


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


def run_linkage(con: duckdb.DuckDBPyConnection, run_id: str, model: dict[str, Any],
                decisions: pd.DataFrame | None = None, thresholds: Thresholds = Thresholds(),
                at: datetime | None = None) -> MatchOutcome:
    """Link ``std.record`` (in ``con``'s work DB) and write the ``link`` tables for ``run_id``."""
    at = at or datetime.now(timezone.utc)
    out = MatchOutcome()
    t0 = time.perf_counter()
    con.execute(_HISTORY_DDL)
    n = int(con.execute("SELECT count(*) FROM std.record").fetchall()[0][0])
    out.counts["records"] = n

    # 1. deterministic pass
    det = con.execute(deterministic_sql() + " ORDER BY 1, 2").df()
    det = det[det.verdict.notna()]
    n_det = int((det.verdict == "deterministic").sum())
    out.counts["deterministic_pairs"] = n_det
    out.counts["id_conflicts"] = int((det.verdict == "conflict").sum())

    # 2. model
    frame = model_input(con)
    t1 = time.perf_counter()
    pairs = predict_pairs(frame, model, thresholds.review)
    out.counts["model_seconds"] = round(time.perf_counter() - t1, 1)
    pairs = pairs.merge(det, on=["record_id_l", "record_id_r"], how="outer")
    pairs["method"] = np.where(pairs.verdict == "deterministic", "deterministic",
                               np.where(pairs.verdict == "conflict", "conflict", "model"))
    pairs["band"] = np.select(
        [pairs.method == "deterministic", pairs.method == "conflict",
         pairs.match_weight >= thresholds.match, pairs.match_weight >= thresholds.review],
        ["match", "conflict", "match", "review"], default="non_match")
    pairs = pairs.drop(columns=["verdict"])
    pairs = add_two_id_candidates(con, pairs)
    con.register("pairs_in", pairs)
    con.execute("""
        CREATE OR REPLACE TABLE link.pair AS
        SELECT p.*, a.source AS source_l, a.source_key AS source_key_l,
               b.source AS source_r, b.source_key AS source_key_r,
               (a.id_key IS NOT NULL AND b.id_key IS NOT NULL AND a.id_key <> b.id_key
                AND damerau_levenshtein(a.id_key, b.id_key) > 1) AS two_ids
        FROM pairs_in p JOIN std.record a ON a.record_id = p.record_id_l
        JOIN std.record b ON b.record_id = p.record_id_r
        ORDER BY p.record_id_l, p.record_id_r""")
    con.unregister("pairs_in")
    for band, cnt in con.execute("SELECT band, count(*) FROM link.pair GROUP BY band").fetchall():
        out.counts[f"pairs_{band}"] = int(cnt)

    # 3. human decisions
    dec = _decisions_as_ids(con, decisions if decisions is not None else pd.DataFrame())
    out.counts["decisions_applied"] = int(len(dec))

    # 4. clustering
    match = con.execute("""SELECT record_id_l, record_id_r, method, match_weight
                           FROM link.pair WHERE band = 'match'""").df()
    strength = np.where(match.method == "deterministic", DETERMINISTIC_STRENGTH,
                        match.match_weight.fillna(0.0).to_numpy())
    same = dec[dec.verdict == "same"]
    diff = dec[dec.verdict == "different"]
    conflicts = con.execute("SELECT record_id_l, record_id_r FROM link.pair "
                            "WHERE band = 'conflict'").df()
    # a human "same" on a conflict pair overrides the conflict
    if len(same):
        conflicts = conflicts.merge(same[["record_id_l", "record_id_r"]], how="left",
                                    indicator=True)
        conflicts = conflicts[conflicts._merge == "left_only"].drop(columns="_merge")
    left = np.concatenate([match.record_id_l.to_numpy(), same.record_id_l.to_numpy()])
    right = np.concatenate([match.record_id_r.to_numpy(), same.record_id_r.to_numpy()])
    strengths = np.concatenate([strength, np.full(len(same), HUMAN_STRENGTH)])
    cl = np.concatenate([diff.record_id_l.to_numpy(), conflicts.record_id_l.to_numpy()])
    cr = np.concatenate([diff.record_id_r.to_numpy(), conflicts.record_id_r.to_numpy()])
    res = cluster(n, left.astype(np.int64), right.astype(np.int64), strengths,
                  cl.astype(np.int64), cr.astype(np.int64))
    out.counts["reclustered_components"] = res.reclustered_components
    out.counts["unsatisfied_cannot_links"] = int(len(res.unsatisfied))
    labels = pd.DataFrame({"record_id": np.arange(n, dtype=np.int64), "cluster": res.labels})
    con.register("labels_in", labels)
    con.execute("CREATE OR REPLACE TEMP TABLE cluster_of AS SELECT * FROM labels_in")
    con.unregister("labels_in")

    # 5. review queue
    edges_h = same.assign(method="human")[["record_id_l", "record_id_r", "method"]]
    con.register("human_in", edges_h)
    con.register("dec_ids", dec)
    unsat = pd.DataFrame(res.unsatisfied, columns=["record_id_l", "record_id_r"])
    con.register("unsat_in", unsat)
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

    # 6. stable ids
    prev_run, counter = _previous_run(con, run_id)
    current = con.execute("""SELECT r.source, r.source_key, c.cluster FROM std.record r
                             JOIN cluster_of c USING (record_id)""").df()
    previous = (con.execute("SELECT source, source_key, person_id FROM link.person_link_history "
                            "WHERE run_id = ?", [prev_run]).df() if prev_run else
                pd.DataFrame(columns=["source", "source_key", "person_id"]))
    ids = assign_person_ids(current, previous, counter)
    con.register("ids_in", ids.clusters)
    # method / score per record: strongest within-cluster edge touching it
    con.execute("""
        CREATE OR REPLACE TABLE link.person_link AS
        WITH e AS (
            SELECT record_id_l, record_id_r, method,
                   CASE WHEN method = 'deterministic' THEN 1.0 ELSE match_probability END AS score,
                   CASE method WHEN 'deterministic' THEN 2 ELSE 1 END AS rank
            FROM link.pair WHERE band = 'match'
            UNION ALL SELECT record_id_l, record_id_r, 'human', 1.0, 3 FROM human_in),
        inside AS (
            SELECT e.* FROM e JOIN cluster_of a ON a.record_id = e.record_id_l
            JOIN cluster_of b ON b.record_id = e.record_id_r WHERE a.cluster = b.cluster),
        ends AS (SELECT record_id_l AS record_id, method, score, rank FROM inside
                 UNION ALL SELECT record_id_r, method, score, rank FROM inside),
        best AS (SELECT record_id, arg_max(method, rank * 10 + coalesce(score, 0)) AS method,
                        max(score) AS score FROM ends GROUP BY record_id)
        SELECT r.source, r.source_key, i.person_id,
               coalesce(b.method, 'single') AS method, b.score
        FROM std.record r JOIN cluster_of c USING (record_id)
        JOIN ids_in i ON i.cluster = c.cluster
        LEFT JOIN best b ON b.record_id = r.record_id
        ORDER BY r.source, r.source_key""")
    con.unregister("ids_in")
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

    # 7. golden records
    con.execute("CREATE OR REPLACE TABLE link.person AS " +
                golden_sql("std.record", "link.person_link") + " ORDER BY person_id")
    out.counts["persons"] = int(con.execute("SELECT count(*) FROM link.person").fetchall()[0][0])
    for name in ("human_in", "dec_ids", "unsat_in"):
        con.unregister(name)
    out.counts["link_seconds"] = round(time.perf_counter() - t0, 1)
    return out


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
    scored = linker.inference.score_pair(l_rec, r_rec).as_pandas_dataframe().iloc[0]
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
