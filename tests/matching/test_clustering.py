"""Clustering with cannot-links: human 'different' wins over model edges, 'same' always holds."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from matching.clustering import cluster

INF = np.inf


def test_components_without_constraints() -> None:
    r = cluster(6, [0, 1, 3], [1, 2, 4], [5.0, 5.0, 5.0])
    assert list(r.labels) == [0, 0, 0, 3, 3, 5]
    assert r.reclustered_components == 0


def test_cannot_link_cuts_weakest_edge_on_path() -> None:
    # chain 0-1-2-3 with the weakest edge 1-2; 0 and 3 must differ
    r = cluster(4, [0, 1, 2], [1, 2, 3], [9.0, 2.0, 8.0], [0], [3])
    assert r.labels[0] == r.labels[1]
    assert r.labels[2] == r.labels[3]
    assert r.labels[0] != r.labels[3]
    assert r.reclustered_components == 1
    assert len(r.unsatisfied) == 0


def test_human_same_beats_model_edge_order() -> None:
    # model edge 0-1 is strong, but a human said 1 and 2 are the same and 0, 2 different
    r = cluster(3, [0, 1], [1, 2], [20.0, INF], [0], [2])
    assert r.labels[1] == r.labels[2]
    assert r.labels[0] != r.labels[2]


def test_contradicting_humans_reported() -> None:
    r = cluster(3, [0, 1], [1, 2], [INF, INF], [0], [2])
    assert r.labels[0] == r.labels[2]
    assert [tuple(x) for x in r.unsatisfied] == [(0, 2)]


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 12).flatmap(lambda n: st.tuples(
    st.just(n),
    st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1),
                       st.floats(0.1, 30.0)), max_size=30),
    st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=4))))
def test_cannot_links_always_honoured_without_human_edges(case) -> None:
    n, edges, cannots = case
    cannots = [(a, b) for a, b in cannots if a != b]
    left = [e[0] for e in edges]
    right = [e[1] for e in edges]
    strength = [e[2] for e in edges]
    r = cluster(n, left, right, strength, [c[0] for c in cannots], [c[1] for c in cannots])
    for a, b in cannots:
        assert r.labels[a] != r.labels[b]
    # every group is connected by the given edges only (never joins unlinked records)
    plain = cluster(n, left, right, strength)
    for i in range(n):
        assert plain.labels[i] == plain.labels[r.labels[i]]
    assert all(r.labels[i] <= i for i in range(n))
