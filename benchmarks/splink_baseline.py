"""The plain Splink 5 baseline: "what a team would do without unigrid".

Input: the generically cleaned records of :mod:`benchmarks.generic`. Model: Splink's standard
comparisons from ``splink.comparison_library`` on raw characters (ID number by Levenshtein,
name by Jaro-Winkler, birth date, sex, address, phone), blocking on the ID number and on birth
date + name, the prior from the ID rule, u by random sampling, m by EM in two sessions (blocked
on the ID number, then on name + birth date: each session estimates the comparisons it does not
block on), then predictions at match probability 0.9 and connected-components clustering at 0.9.

Splink 5.0.0 raises ``ValueError: m_probability value 1.67e-317 is below the minimum allowed
value of 1e-300`` when an EM step estimates a level's m that small (at 200,000 persons, in the
session blocked on the ID number): its setters validate instead of clamping. The baseline clamps
such EM estimates to that floor (:func:`clamped_em`), which is what Splink itself does for
match weights; the count of clamped values is reported.

The *linking step* (training + prediction + clustering) is timed apart from reading and
cleaning: it is what unigrid's whole pipeline is compared with.

Standalone: ``python -m benchmarks.splink_baseline --city var/city`` prints P/R/F1 and times.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from benchmarks.generic import IDENTITY_FIELDS, assignments

THRESHOLD = 0.9
"""Match probability for predictions and for clustering."""

MAX_U_PAIRS = 5e6
"""Pairs sampled to estimate u (Splink's usual order of magnitude)."""


@contextmanager
def clamped_em() -> Iterator[list[str]]:
    """While active, EM estimates of m or u below Splink's floor are raised to the floor.

    Yields the list of ``comparison:level`` names clamped. Restores Splink afterwards.
    """
    from splink.internals import expectation_maximisation as em
    from splink.internals.comparison_level import M_U_CLAMP_MIN

    original = em.populate_m_u_from_lookup
    clamped: list[str] = []

    def populate(fixed, level, name, lookup):  # type: ignore[no-untyped-def]
        rec = lookup.get(name, {}).get(level.comparison_vector_value)
        for key in ("m_probability", "u_probability"):
            v = rec.get(key) if rec else None
            if isinstance(v, float) and v < M_U_CLAMP_MIN:
                rec[key] = M_U_CLAMP_MIN
                clamped.append(f"{name}:{level.label_for_charts}:{key[0]}")
        return original(fixed, level, name, lookup)

    em.populate_m_u_from_lookup = populate
    try:
        yield clamped
    finally:
        em.populate_m_u_from_lookup = original


@dataclass
class LinkOutcome:
    """What a baseline produced: one person id per record, and how long each step took."""

    assignments: pd.DataFrame
    """``source, source_key, person_id``."""
    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """E.g. which EM estimates were clamped (comparison:level:m|u)."""


def blocking_rules() -> list[Any]:
    """Blocking for predictions: ID number; birth date + name."""
    from splink import block_on

    return [block_on("id_number"), block_on("birth_date", "name")]


def settings() -> Any:
    """The Splink settings: standard library comparisons, dedupe only."""
    import splink.comparison_library as cl
    from splink import SettingsCreator

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            cl.LevenshteinAtThresholds("id_number", [1, 2]),
            cl.JaroWinklerAtThresholds("name", [0.92, 0.8]),
            cl.DateOfBirthComparison("birth_date", input_is_string=True,
                                     datetime_format="%Y-%m-%d"),
            cl.ExactMatch("sex"),
            cl.JaroWinklerAtThresholds("address", [0.9, 0.7]),
            cl.ExactMatch("phone"),
        ],
        blocking_rules_to_generate_predictions=blocking_rules(),
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )


def link(records: pd.DataFrame, seed: int = 42, threads: int | None = None) -> LinkOutcome:
    """Train, predict and cluster ``records`` (generic record frame) with plain Splink."""
    import duckdb
    from splink import DuckDBAPI, Linker, block_on

    t0 = time.perf_counter()
    frame = records[list(IDENTITY_FIELDS)].copy()
    frame.insert(0, "unique_id", range(len(frame)))
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads TO {int(threads)}")
    api = DuckDBAPI(con)
    sdf = api.register(frame, table_name="baseline_records")
    linker = Linker(sdf, settings(), log_level=logging.WARNING)
    t_setup = time.perf_counter()
    linker.training.estimate_probability_two_random_records_match(
        [block_on("id_number")], recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=MAX_U_PAIRS, seed=seed)
    with clamped_em() as clamped:
        linker.training.estimate_parameters_using_expectation_maximisation(
            block_on("id_number"))
        linker.training.estimate_parameters_using_expectation_maximisation(
            block_on("name", "birth_date"))
    t_train = time.perf_counter()
    pred = linker.inference.predict(threshold_match_probability=THRESHOLD)
    t_pred = time.perf_counter()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        pred, threshold_match_probability=THRESHOLD)
    c = con.execute(f"SELECT unique_id, cluster_id FROM {clusters.physical_name} "
                    f"ORDER BY unique_id").df()
    t_cluster = time.perf_counter()
    (n_pairs,) = con.execute(f"SELECT count(*) FROM {pred.physical_name}").fetchone()
    con.close()
    assert len(c) == len(frame), "Splink clustering lost records"
    labels = pd.factorize(c["cluster_id"])[0]
    out = assignments(records, labels, "S")
    return LinkOutcome(out, seconds={
        "setup": t_setup - t0, "train": t_train - t_setup, "predict": t_pred - t_train,
        "cluster": t_cluster - t_pred, "linking": t_cluster - t_setup},
        counts={"records": int(len(frame)), "predicted_pairs": int(n_pairs),
                "clusters": int(labels.max() + 1) if len(labels) else 0,
                "em_values_clamped": len(clamped)},
        notes=sorted(set(clamped)))


def main(argv: list[str] | None = None) -> int:
    """Run the baseline on a generated city and print its scores (JSON)."""
    from benchmarks.generic import load_records
    from matching.evaluate import evaluate_frames

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--city", type=Path, required=True, help="a generated city folder")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    records = load_records(a.city / "exports")
    t_load = time.perf_counter() - t0
    outcome = link(records, seed=a.seed)
    truth = pd.read_parquet(a.city / "truth" / "records.parquet",
                            columns=["source", "source_key", "person_id"])
    ev = evaluate_frames(outcome.assignments, truth, worst=0)
    print(json.dumps({"load_and_clean_seconds": round(t_load, 3),
                      "seconds": {k: round(v, 3) for k, v in outcome.seconds.items()},
                      "counts": outcome.counts, "notes": outcome.notes,
                      "accuracy": ev.overall}, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
