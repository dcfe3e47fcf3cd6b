"""Evaluation of a linkage run against the generator's truth (``truth/records.parquet``).

Pairwise precision, recall and F1, overall and per source pair, computed by cluster-size
arithmetic (no pair is enumerated): with ``n`` records of a cell (predicted person x true
person), true-positive pairs are ``n(n-1)/2``; predicted pairs come from predicted clusters
and true pairs from true persons the same way. Per source pair (a, b): ``n_a * n_b`` pairs
between two sources of one group, ``n_a(n_a-1)/2`` within one source.

The worst false merges (predicted persons holding several true persons) and missed links (true
persons split over several predicted persons) are listed for a human to read, masked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from warehouse.masking import mask_id_series, mask_name_series


@dataclass
class Evaluation:
    """Scores of one run."""

    overall: dict[str, float]
    per_source_pair: pd.DataFrame
    false_merges: pd.DataFrame = field(default_factory=pd.DataFrame)
    missed_links: pd.DataFrame = field(default_factory=pd.DataFrame)
    unmatched_records: dict[str, int] = field(default_factory=dict)


def _prf(tp: float, pp: float, tt: float) -> tuple[float, float, float]:
    p = tp / pp if pp else 1.0
    r = tp / tt if tt else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


_PAIR_COUNTS = """
WITH cnt AS (SELECT {group} AS g, source, count(*) AS n FROM j GROUP BY ALL)
SELECT a.source AS source_a, b.source AS source_b,
       sum(CASE WHEN a.source = b.source THEN a.n * (a.n - 1) / 2 ELSE a.n * b.n END) AS pairs
FROM cnt a JOIN cnt b ON a.g = b.g AND a.source <= b.source
GROUP BY ALL
"""


def evaluate_frames(pred: pd.DataFrame, truth: pd.DataFrame, records: pd.DataFrame | None = None,
                    worst: int = 20) -> Evaluation:
    """Score predicted links against truth.

    ``pred``: source, source_key, person_id (the run's person_link);
    ``truth``: source, source_key, person_id (the generator's records);
    ``records`` (optional): std records (source, source_key, name, id18, birth_date) used to
    show the worst errors, masked.
    """
    con = duckdb.connect()
    try:
        con.register("pred_in", pred[["source", "source_key", "person_id"]])
        con.register("truth_in", truth[["source", "source_key", "person_id"]])
        con.execute("""
            CREATE TEMP TABLE j AS
            SELECT p.source, CAST(p.source_key AS VARCHAR) AS source_key,
                   p.person_id AS pred, t.person_id AS truth
            FROM pred_in p JOIN truth_in t
              ON p.source = t.source AND CAST(p.source_key AS VARCHAR) = CAST(t.source_key AS VARCHAR)
        """)
        (n_pred,) = con.execute("SELECT count(*) FROM pred_in").fetchall()[0]
        (n_truth,) = con.execute("SELECT count(*) FROM truth_in").fetchall()[0]
        (n_joined,) = con.execute("SELECT count(*) FROM j").fetchall()[0]
        tp, pp, tt = con.execute("""
            SELECT (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM
                        (SELECT count(*) n FROM j GROUP BY pred, truth)),
                   (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM
                        (SELECT count(*) n FROM j GROUP BY pred)),
                   (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM
                        (SELECT count(*) n FROM j GROUP BY truth))
        """).fetchall()[0]
        p, r, f = _prf(float(tp), float(pp), float(tt))
        overall = {"precision": p, "recall": r, "f1": f, "true_positive_pairs": int(tp),
                   "predicted_pairs": int(pp), "true_pairs": int(tt), "records": int(n_joined),
                   "predicted_persons": con.execute(
                       "SELECT count(DISTINCT pred) FROM j").fetchall()[0][0],
                   "true_persons": con.execute(
                       "SELECT count(DISTINCT truth) FROM j").fetchall()[0][0]}
        tpd = con.execute(_PAIR_COUNTS.format(group="pred || chr(31) || truth")).df()
        ppd = con.execute(_PAIR_COUNTS.format(group="pred")).df()
        ttd = con.execute(_PAIR_COUNTS.format(group="truth")).df()
        per = (ttd.rename(columns={"pairs": "true_pairs"})
               .merge(ppd.rename(columns={"pairs": "predicted_pairs"}),
                      on=["source_a", "source_b"], how="outer")
               .merge(tpd.rename(columns={"pairs": "true_positive_pairs"}),
                      on=["source_a", "source_b"], how="outer")
               .fillna(0))
        for c in ("true_pairs", "predicted_pairs", "true_positive_pairs"):
            per[c] = per[c].astype("int64")
        per = per[(per.true_pairs > 0) | (per.predicted_pairs > 0)]
        scores = [_prf(a, b, c) for a, b, c in zip(per.true_positive_pairs,
                                                   per.predicted_pairs, per.true_pairs)]
        per["precision"] = [s[0] for s in scores]
        per["recall"] = [s[1] for s in scores]
        per["f1"] = [s[2] for s in scores]
        per = per.sort_values(["source_a", "source_b"], ignore_index=True)

        if records is not None and len(records):
            con.register("rec_in", records[["source", "source_key", "name", "id18",
                                            "birth_date"]])
            detail = ("LEFT JOIN rec_in r ON r.source = j.source "
                      "AND CAST(r.source_key AS VARCHAR) = j.source_key")
            cols = "r.name AS name, r.id18 AS id_number, r.birth_date"
        else:
            detail, cols = "", "NULL AS name, NULL AS id_number, NULL AS birth_date"
        false_merges = con.execute(f"""
            WITH cell AS (SELECT pred, truth, count(*) n FROM j GROUP BY ALL),
            grp AS (SELECT pred, sum(n) AS size, count(*) AS true_persons,
                           (sum(n) * (sum(n) - 1) - sum(n * (n - 1))) / 2 AS wrong_pairs
                    FROM cell GROUP BY pred HAVING count(*) > 1
                    ORDER BY wrong_pairs DESC, pred LIMIT {int(worst)})
            SELECT g.pred AS predicted_person, g.wrong_pairs, g.true_persons,
                   j.truth AS true_person, j.source, j.source_key, {cols}
            FROM grp g JOIN j USING (pred) {detail}
            ORDER BY g.wrong_pairs DESC, g.pred, j.truth, j.source, j.source_key
        """).df()
        missed = con.execute(f"""
            WITH cell AS (SELECT pred, truth, count(*) n FROM j GROUP BY ALL),
            grp AS (SELECT truth, sum(n) AS size, count(*) AS predicted_persons,
                           (sum(n) * (sum(n) - 1) - sum(n * (n - 1))) / 2 AS missed_pairs
                    FROM cell GROUP BY truth HAVING count(*) > 1
                    ORDER BY missed_pairs DESC, truth LIMIT {int(worst)})
            SELECT g.truth AS true_person, g.missed_pairs, g.predicted_persons,
                   j.pred AS predicted_person, j.source, j.source_key, {cols}
            FROM grp g JOIN j USING (truth) {detail}
            ORDER BY g.missed_pairs DESC, g.truth, j.pred, j.source, j.source_key
        """).df()
        for worst_rows in (false_merges, missed):
            worst_rows["name"] = mask_name_series(worst_rows["name"])
            worst_rows["id_number"] = mask_id_series(worst_rows["id_number"])
        unmatched = {"predicted_not_in_truth": int(n_pred - n_joined),
                     "truth_not_predicted": int(n_truth - n_joined)}
        return Evaluation(overall, per, false_merges, missed, unmatched)
    finally:
        con.close()


def evaluate_run(work_db: Path | str, truth_dir: Path | str, worst: int = 20) -> Evaluation:
    """Score ``link.person_link`` in the work DB against ``truth_dir/records.parquet``."""
    from warehouse.connection import connect

    truth = pd.read_parquet(Path(truth_dir) / "records.parquet",
                            columns=["source", "source_key", "person_id"])
    truth["source_key"] = truth["source_key"].astype(str)
    con = connect(work_db, read_only=True)
    try:
        pred = con.execute("SELECT source, source_key, person_id FROM link.person_link").df()
        records = con.execute(
            "SELECT source, source_key, name, id18, birth_date FROM std.record").df()
    finally:
        con.close()
    return evaluate_frames(pred, truth, records, worst=worst)


def to_markdown(ev: Evaluation) -> str:
    """The figures as a Markdown section (for docs/accuracy.md and the CLI)."""
    o = ev.overall
    lines = [f"Overall: precision {o['precision']:.4f}, recall {o['recall']:.4f}, "
             f"F1 {o['f1']:.4f} ({o['records']} records, {o['true_persons']} true persons, "
             f"{o['predicted_persons']} predicted persons; pairs: true {o['true_pairs']}, "
             f"predicted {o['predicted_pairs']}, correct {o['true_positive_pairs']})", "",
             "| source a | source b | true pairs | predicted | correct | precision | recall | F1 |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in ev.per_source_pair.itertuples():
        lines.append(f"| {r.source_a} | {r.source_b} | {r.true_pairs} | {r.predicted_pairs} | "
                     f"{r.true_positive_pairs} | {r.precision:.4f} | {r.recall:.4f} | "
                     f"{r.f1:.4f} |")
    return "\n".join(lines)
