"""Pairwise evaluation by cluster-size arithmetic, checked against brute-force pair counts."""

from __future__ import annotations

from itertools import combinations

import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from matching.evaluate import evaluate_frames, to_markdown


def frame(rows):
    return pd.DataFrame(rows, columns=["source", "source_key", "person_id"])


def brute(pred, truth):
    p = dict(zip(zip(pred.source, pred.source_key), pred.person_id))
    t = dict(zip(zip(truth.source, truth.source_key), truth.person_id))
    keys = sorted(set(p) & set(t))
    pp = {(a, b) for a, b in combinations(keys, 2) if p[a] == p[b]}
    tt = {(a, b) for a, b in combinations(keys, 2) if t[a] == t[b]}
    return len(pp & tt), len(pp), len(tt)


def test_known_case() -> None:
    truth = frame([("a", "1", "T1"), ("b", "1", "T1"), ("b", "2", "T1"), ("a", "2", "T2")])
    pred = frame([("a", "1", "X"), ("b", "1", "X"), ("b", "2", "Y"), ("a", "2", "Y")])
    ev = evaluate_frames(pred, truth)
    assert ev.overall["true_positive_pairs"] == 1
    assert ev.overall["predicted_pairs"] == 2
    assert ev.overall["true_pairs"] == 3
    assert ev.overall["precision"] == pytest.approx(0.5)
    assert ev.overall["recall"] == pytest.approx(1 / 3)
    per = ev.per_source_pair.set_index(["source_a", "source_b"])
    assert per.loc[("a", "b"), "true_pairs"] == 2
    assert per.loc[("b", "b"), "true_pairs"] == 1
    assert per.loc[("b", "b"), "predicted_pairs"] == 0
    assert set(ev.false_merges.predicted_person) == {"Y"}
    assert set(ev.missed_links.true_person) == {"T1"}
    assert "| a | b |" in to_markdown(ev)


def test_masks_personal_fields() -> None:
    truth = frame([("a", "1", "T1"), ("a", "2", "T2"), ("a", "3", "T3")])
    pred = frame([("a", "1", "X"), ("a", "2", "X"), ("a", "3", "X")])
    recs = pd.DataFrame({"source": ["a", "a", "a"], "source_key": ["1", "2", "3"],
                         "name": ["张三明", "李四", "买买提·艾力"],
                         "id18": ["420502199001011234", None, None],
                         "birth_date": [None, None, None]})
    ev = evaluate_frames(pred, truth, recs)
    assert set(ev.false_merges.name) == {"张*明", "李*", "买*提·艾*"}
    assert "420502********1234" in set(ev.false_merges.id_number)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 4), st.integers(0, 4)),
                min_size=1, max_size=30))
def test_matches_brute_force(rows) -> None:
    truth = frame([(s, str(i), f"T{t}") for i, (s, t, _) in enumerate(rows)])
    pred = frame([(s, str(i), f"P{p}") for i, (s, _, p) in enumerate(rows)])
    ev = evaluate_frames(pred, truth)
    tp, pp, tt = brute(pred, truth)
    assert (ev.overall["true_positive_pairs"], ev.overall["predicted_pairs"],
            ev.overall["true_pairs"]) == (tp, pp, tt)
    per = ev.per_source_pair
    assert per.true_pairs.sum() == tt and per.predicted_pairs.sum() == pp
    assert per.true_positive_pairs.sum() == tp
