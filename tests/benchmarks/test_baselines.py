"""The plain baselines on a tiny hand-made population: shape and sanity of their links."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks import recordlinkage_baseline, splink_baseline
from benchmarks.generic import RECORD_COLUMNS
from matching.evaluate import evaluate_frames

CHARS = list("王李张刘陈杨黄赵周吴徐孙马朱胡郭何高林罗伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂")


def population(persons: int, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each person: a registry record, and (for 2 in 3) a second source's record with noise.

    Returns (records, truth) in the baselines' generic-record shape.
    """
    rng = np.random.default_rng(seed)
    name = ["".join(rng.choice(CHARS, 3)) for _ in range(persons)]
    dob = pd.to_datetime("1950-01-01") + pd.to_timedelta(rng.integers(0, 25000, persons), "D")
    ids = ["4205" + "".join(map(str, rng.integers(0, 10, 14))) for _ in range(persons)]
    sex = rng.choice(["男", "女"], persons)
    reg = pd.DataFrame({"source": "registry", "source_key": [f"R{i}" for i in range(persons)],
                        "id_number": ids, "name": name, "sex": sex,
                        "birth_date": dob.strftime("%Y-%m-%d"), "address": "幸福路1号",
                        "phone": None, "person_id": [f"P{i}" for i in range(persons)]})
    second = reg.sample(frac=2 / 3, random_state=seed).copy()
    second["source"], second["source_key"] = "grid", [f"G{i}" for i in range(len(second))]
    typo = rng.random(len(second)) < 0.2
    second.loc[typo, "name"] = second.loc[typo, "name"].str[:2] + "某"
    missing = rng.random(len(second)) < 0.2
    second.loc[missing, "id_number"] = None
    recs = pd.concat([reg, second], ignore_index=True)
    for c in RECORD_COLUMNS[2:]:
        recs[c] = recs[c].astype("string")
    return recs[list(RECORD_COLUMNS)], recs[["source", "source_key", "person_id"]]


@pytest.mark.slow
def test_splink_baseline_links_the_obvious_pairs():
    records, truth = population(150)
    out = splink_baseline.link(records, seed=1)
    a = out.assignments
    assert len(a) == len(records) and a["person_id"].notna().all()
    assert set(out.seconds) >= {"train", "predict", "cluster", "linking"}
    assert out.seconds["linking"] >= out.seconds["train"] >= 0
    assert out.counts["records"] == len(records)
    ev = evaluate_frames(a, truth, worst=0).overall
    assert ev["records"] == len(records)
    assert ev["precision"] > 0.9 and ev["recall"] > 0.7


@pytest.mark.slow
def test_recordlinkage_baseline_on_a_subset():
    records, truth = population(150)
    sub = recordlinkage_baseline.subset_records(records, truth, persons=60, seed=5)
    kept = sub.merge(truth, on=["source", "source_key"])
    assert kept["person_id"].nunique() == 60
    assert len(sub) == len(truth[truth["person_id"].isin(kept["person_id"])])  # all their records
    out = recordlinkage_baseline.link(sub)
    assert len(out.assignments) == len(sub)
    assert out.counts["candidate_pairs"] >= out.counts["predicted_pairs"] >= 0
    ev = evaluate_frames(out.assignments, truth, worst=0).overall
    assert ev["records"] == len(sub) and 0.0 <= ev["f1"] <= 1.0
    assert ev["precision"] > 0.9


def test_subset_takes_everything_when_the_city_is_small():
    records, truth = population(20)
    sub = recordlinkage_baseline.subset_records(records, truth, persons=1000)
    assert len(sub) == len(records)


def test_clamped_em_raises_tiny_estimates_to_the_floor(monkeypatch):
    from splink.internals import expectation_maximisation as em
    from splink.internals.comparison_level import M_U_CLAMP_MIN

    seen = []

    def fake(fixed, level, name, lookup):
        seen.append(dict(lookup[name].get(level.comparison_vector_value, {})))

    monkeypatch.setattr(em, "populate_m_u_from_lookup", fake)
    level = type("L", (), {"comparison_vector_value": 1, "label_for_charts": "lev1"})()
    lookup = {"dob": {1: {"m_probability": 1.6e-317, "u_probability": 0.2}}}
    with splink_baseline.clamped_em() as clamped:
        em.populate_m_u_from_lookup(set(), level, "dob", lookup)
        em.populate_m_u_from_lookup(set(), level, "other", {"other": {}})  # level not observed
    assert seen[0] == {"m_probability": M_U_CLAMP_MIN, "u_probability": 0.2}
    assert clamped == ["dob:lev1:m"]
    assert em.populate_m_u_from_lookup is fake          # restored
