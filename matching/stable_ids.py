"""Stable person ids across runs, and the merge / split events between two runs.

Given this run's clusters (record -> cluster label) and the previous run's links
(record -> person_id), each cluster inherits a previous id when it can:

1. Votes: for each (cluster, previous id), the number of the cluster's records that had that id.
2. Each previous id goes to the cluster holding most of its records (ties: smallest label);
   each cluster keeps, among the ids sent to it, the one with most votes (ties: the oldest id).
   Ids left over (their best cluster kept another id) try their next-best cluster that has no
   id yet; rounds repeat until nothing changes (typically one or two rounds).
3. Clusters without an inherited id get a new id from the counter.

Events (``person_event.event``): ``merge`` (a previous id no longer kept: its records joined a
kept id; ``person_id`` = survivor, ``other_person_id`` = absorbed id), ``split`` (a kept id lost
records to a cluster with another id; ``person_id`` = kept id, ``other_person_id`` = the
other), ``create`` (a new id not born from a split) and ``retire`` (a previous id none of whose
records exist any more). Ids are opaque: ``P`` + 12 hex digits of a counter, never derived from
any personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

ID_PREFIX = "P"
ID_WIDTH = 12


def format_person_id(n: int) -> str:
    """The opaque id of counter value ``n`` (``P`` + 12 upper-case hex digits)."""
    return f"{ID_PREFIX}{n:0{ID_WIDTH}X}"


def parse_person_id(pid: str) -> int:
    """Counter value of an id made by :func:`format_person_id`."""
    return int(pid[len(ID_PREFIX):], 16)


@dataclass(frozen=True)
class IdAssignment:
    """Result of :func:`assign_person_ids`."""

    clusters: pd.DataFrame
    """cluster, person_id, inherited (bool)"""
    events: pd.DataFrame
    """event, person_id, other_person_id, detail"""
    last_counter: int
    """Highest counter value issued so far (store it for the next run)."""


def _columns(frame: Any, cols: list[str]) -> Any:
    """The named columns of a pandas frame or an Arrow table (Arrow is not copied)."""
    return frame[cols] if isinstance(frame, pd.DataFrame) else frame.select(cols)


def assign_person_ids(current: Any, previous: Any, last_counter: int = 0,
                      max_rounds: int = 10) -> IdAssignment:
    """Give every cluster of ``current`` a person id, inheriting ids from ``previous``.

    ``current``: columns source, source_key, cluster (integer label); a pandas frame or an
    Arrow table (so is ``previous``).
    ``previous``: columns source, source_key, person_id (may be empty).
    ``last_counter``: highest counter value ever issued (new ids start after it and after
    every id in ``previous``).
    """
    con = duckdb.connect()
    try:
        con.register("cur", _columns(current, ["source", "source_key", "cluster"]))
        con.register("prev", _columns(previous, ["source", "source_key", "person_id"])
                     if len(previous) else
                     pd.DataFrame({"source": pd.Series(dtype=str),
                                   "source_key": pd.Series(dtype=str),
                                   "person_id": pd.Series(dtype=str)}))
        con.execute("""
            CREATE TEMP TABLE votes AS
            SELECT c.cluster, p.person_id, count(*) AS n
            FROM cur c JOIN prev p USING (source, source_key)
            GROUP BY ALL""")
        con.execute("CREATE TEMP TABLE kept (cluster BIGINT, person_id VARCHAR)")
        for _ in range(max_rounds):
            added = con.execute("""
                INSERT INTO kept
                WITH open_votes AS (
                    SELECT v.* FROM votes v
                    WHERE v.person_id NOT IN (SELECT person_id FROM kept)
                      AND v.cluster NOT IN (SELECT cluster FROM kept)),
                home AS (
                    SELECT * FROM open_votes
                    QUALIFY row_number() OVER (PARTITION BY person_id
                                               ORDER BY n DESC, cluster) = 1)
                SELECT cluster, person_id FROM home
                QUALIFY row_number() OVER (PARTITION BY cluster ORDER BY n DESC, person_id) = 1
                """).fetchall()[0][0]
            if not added:
                break
        prev_max = con.execute(
            f"SELECT coalesce(max(('0x' || substr(person_id, {len(ID_PREFIX) + 1}))::UBIGINT), 0) "
            "FROM prev").fetchall()[0][0]
        start = max(int(last_counter), int(prev_max))
        clusters = con.execute("""
            WITH c AS (SELECT cluster, min(source || chr(31) || source_key) AS first_rec
                       FROM cur GROUP BY cluster)
            SELECT c.cluster, k.person_id,
                   CASE WHEN k.person_id IS NULL
                        THEN row_number() OVER (PARTITION BY k.person_id IS NULL
                                                ORDER BY c.first_rec) END AS new_no
            FROM c LEFT JOIN kept k USING (cluster)""").df()
        new = clusters["person_id"].isna()
        numbers = start + clusters.loc[new, "new_no"].astype("int64")
        clusters.loc[new, "person_id"] = [format_person_id(int(x)) for x in numbers]
        clusters["inherited"] = ~new
        last = int(numbers.max()) if new.any() else start
        clusters = clusters[["cluster", "person_id", "inherited"]].sort_values("cluster",
                                                                                ignore_index=True)
        con.register("assigned", clusters)
        events = con.execute("""
            WITH v AS (SELECT v.cluster, v.person_id AS prev_id, v.n, a.person_id AS now_id
                       FROM votes v JOIN assigned a USING (cluster)),
            kept_ids AS (SELECT person_id FROM kept),
            merges AS (
                SELECT 'merge' AS event, now_id AS person_id, prev_id AS other_person_id,
                       n AS records
                FROM v WHERE prev_id NOT IN (SELECT person_id FROM kept_ids)),
            splits AS (
                SELECT 'split' AS event, prev_id AS person_id, now_id AS other_person_id,
                       n AS records
                FROM v WHERE prev_id IN (SELECT person_id FROM kept_ids) AND now_id <> prev_id),
            creates AS (
                SELECT 'create' AS event, a.person_id, NULL AS other_person_id, NULL AS records
                FROM assigned a WHERE NOT a.inherited
                  AND a.person_id NOT IN (SELECT other_person_id FROM splits)),
            retires AS (
                SELECT DISTINCT 'retire' AS event, p.person_id, NULL AS other_person_id,
                       NULL AS records
                FROM prev p WHERE p.person_id NOT IN (SELECT prev_id FROM v))
            SELECT event, person_id, other_person_id,
                   CASE WHEN records IS NULL THEN NULL
                        ELSE '{"records": ' || records || '}' END AS detail
            FROM (SELECT * FROM merges UNION ALL SELECT * FROM splits
                  UNION ALL SELECT * FROM creates UNION ALL SELECT * FROM retires)
            ORDER BY event, person_id, other_person_id""").df()
        return IdAssignment(clusters, events, last)
    finally:
        con.close()
