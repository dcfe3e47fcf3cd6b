"""The recordlinkage 0.16 baseline, on a subset it can handle.

recordlinkage works on in-memory pandas pair indexes and compares pairs in Python, so it is
run on the records of a sample of persons (``--persons`` of the truth's persons, chosen with a
seeded generator; all records of the city if it is small enough). Same generic input as the
Splink baseline (:mod:`benchmarks.generic`): standard blocking (ID number; birth date + name),
standard comparisons (exact ID, Jaro-Winkler name and address at 0.85, exact birth date, sex,
phone), the unsupervised ECM classifier, then connected components.

Choosing the subset reads the truth (which persons), never the links: every record of a chosen
person is in, as if the city had only those persons.

Standalone: ``python -m benchmarks.recordlinkage_baseline --city var/city --persons 20000``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.generic import assignments, connected_components
from benchmarks.splink_baseline import LinkOutcome

DEFAULT_PERSONS = 20_000
"""Persons whose records recordlinkage links (it compares pairs in Python)."""


def subset_records(records: pd.DataFrame, truth: pd.DataFrame, persons: int,
                   seed: int = 42) -> pd.DataFrame:
    """The records of ``persons`` true persons drawn with a seeded generator (all if fewer).

    ``truth``: source, source_key, person_id. Records absent from the truth are dropped.
    """
    t = truth[["source", "source_key", "person_id"]].astype({"source_key": str})
    ids = np.sort(t["person_id"].unique())
    if persons < len(ids):
        ids = np.random.default_rng(seed).choice(ids, size=persons, replace=False)
    chosen = t[t["person_id"].isin(ids)][["source", "source_key"]]
    r = records.astype({"source_key": str})
    return r.merge(chosen, on=["source", "source_key"], how="inner").reset_index(drop=True)


def link(records: pd.DataFrame) -> LinkOutcome:
    """Index, compare, classify (ECM) and cluster ``records`` with recordlinkage."""
    import recordlinkage as rl

    t0 = time.perf_counter()
    df = records.reset_index(drop=True).astype(object).where(records.notna().to_numpy(), np.nan)
    indexer = rl.Index()
    indexer.block("id_number")
    indexer.block(["birth_date", "name"])
    pairs = indexer.index(df)
    t_index = time.perf_counter()
    cmp = rl.Compare(n_jobs=1)
    cmp.exact("id_number", "id_number", label="id_number")
    cmp.string("name", "name", method="jarowinkler", threshold=0.85, label="name")
    cmp.exact("birth_date", "birth_date", label="birth_date")
    cmp.exact("sex", "sex", label="sex")
    cmp.string("address", "address", method="jarowinkler", threshold=0.85, label="address")
    cmp.exact("phone", "phone", label="phone")
    features = cmp.compute(pairs, df)
    t_compare = time.perf_counter()
    if len(features):
        matches = rl.ECMClassifier(binarize=None).fit_predict(features)
    else:
        matches = pd.MultiIndex.from_arrays([[], []])
    t_classify = time.perf_counter()
    labels = connected_components(len(df), matches.get_level_values(0).to_numpy(),
                                  matches.get_level_values(1).to_numpy())
    t_cluster = time.perf_counter()
    return LinkOutcome(assignments(df, labels, "R"), seconds={
        "index": t_index - t0, "compare": t_compare - t_index,
        "classify": t_classify - t_compare, "cluster": t_cluster - t_classify,
        "linking": t_cluster - t0},
        counts={"records": int(len(df)), "candidate_pairs": int(len(pairs)),
                "predicted_pairs": int(len(matches)),
                "clusters": int(labels.max() + 1) if len(labels) else 0})


def main(argv: list[str] | None = None) -> int:
    """Run the baseline on a generated city and print its scores (JSON)."""
    from benchmarks.generic import load_records
    from matching.evaluate import evaluate_frames

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--city", type=Path, required=True, help="a generated city folder")
    ap.add_argument("--persons", type=int, default=DEFAULT_PERSONS)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args(argv)
    truth = pd.read_parquet(a.city / "truth" / "records.parquet",
                            columns=["source", "source_key", "person_id"])
    records = subset_records(load_records(a.city / "exports"), truth, a.persons, a.seed)
    outcome = link(records)
    ev = evaluate_frames(outcome.assignments, truth, worst=0)
    print(json.dumps({"seconds": {k: round(v, 3) for k, v in outcome.seconds.items()},
                      "counts": outcome.counts, "accuracy": ev.overall}, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
