"""Clustering records into persons, respecting human decisions and identity conflicts.

Algorithm (documented in docs/matching.md):

1. Positive edges are the deterministic links, the model's match-band pairs and the human
   ``same`` decisions. Cannot-links are the human ``different`` decisions and the identity
   conflicts (one ID number on clearly different people).
2. Connected components over all positive edges (``scipy.sparse.csgraph`` on integer arrays:
   no per-record Python).
3. Only components that contain a cannot-link pair are re-clustered, with a constrained
   Kruskal pass: first every human ``same`` edge joins unconditionally (a human "same" always
   holds); then the other edges in decreasing strength (deterministic links first, then model
   links by match weight) join two groups only if no cannot-link pair lies between them. The
   weakest edges on any path between a "different" pair are therefore the ones left out.
   A cannot-link that human ``same`` edges alone contradict cannot be honoured; it is returned
   as unsatisfied (for the review queue), never silently dropped.

The result is one integer label per record; labels are the smallest record index in the group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

HUMAN_STRENGTH = np.inf
"""Strength of a human ``same`` edge: it always joins."""


@dataclass(frozen=True)
class ClusterResult:
    """Labels (smallest member index per group) and the cannot-links that could not be kept."""

    labels: np.ndarray
    unsatisfied: np.ndarray
    """Array of shape (k, 2): cannot-link pairs that human ``same`` edges force together."""
    reclustered_components: int


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected-component label per node, as the smallest node index of its component."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    smallest = np.full(comp.max() + 1, n, dtype=np.int64)
    np.minimum.at(smallest, comp, np.arange(n, dtype=np.int64))
    return smallest[comp]


class _ConstrainedUnionFind:
    """Union-find whose groups carry the set of groups they must never join."""

    def __init__(self, nodes: np.ndarray) -> None:
        self.parent = {int(x): int(x) for x in nodes}
        self.forbidden: dict[int, set[int]] = {int(x): set() for x in nodes}

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def forbid(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        self.forbidden[ra].add(rb)
        self.forbidden[rb].add(ra)

    def union(self, a: int, b: int, force: bool = False) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if not force and rb in self.forbidden[ra]:
            return False
        if len(self.forbidden[ra]) < len(self.forbidden[rb]):
            ra, rb = rb, ra
        self.parent[rb] = ra
        merged = self.forbidden[ra] | self.forbidden.pop(rb)
        merged.discard(ra)
        merged.discard(rb)
        for other in merged:
            fs = self.forbidden[other]
            fs.discard(rb)
            fs.add(ra)
        self.forbidden[ra] = merged
        return True


def cluster(n: int, left: np.ndarray, right: np.ndarray, strength: np.ndarray,
            cannot_left: np.ndarray | None = None, cannot_right: np.ndarray | None = None
            ) -> ClusterResult:
    """Cluster ``n`` records given positive edges and cannot-link pairs.

    ``left``/``right`` are record indices (0..n-1) of the positive edges, ``strength`` their
    strength (``np.inf`` for a human ``same``); ``cannot_left``/``cannot_right`` the pairs that
    must end in different groups.
    """
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    strength = np.asarray(strength, dtype=np.float64)
    cl = np.asarray(cannot_left if cannot_left is not None else [], dtype=np.int64)
    cr = np.asarray(cannot_right if cannot_right is not None else [], dtype=np.int64)
    labels = _components(n, left, right)
    empty = np.zeros((0, 2), dtype=np.int64)
    if len(cl) == 0:
        return ClusterResult(labels, empty, 0)
    violated = labels[cl] == labels[cr]
    bad_components = np.unique(labels[cl[violated]])
    if len(bad_components) == 0:
        return ClusterResult(labels, empty, 0)
    in_bad = np.isin(labels, bad_components)
    nodes = np.flatnonzero(in_bad)
    edge_mask = in_bad[left]  # both ends share a component, so one end decides
    e_left, e_right, e_strength = left[edge_mask], right[edge_mask], strength[edge_mask]
    c_mask = in_bad[cl] & (labels[cl] == labels[cr])  # other cannot-links already hold
    c_left, c_right = cl[c_mask], cr[c_mask]

    uf = _ConstrainedUnionFind(nodes)
    human = np.isinf(e_strength)
    for a, b in zip(e_left[human], e_right[human]):
        uf.union(int(a), int(b), force=True)
    unsatisfied = []
    for a, b in zip(c_left, c_right):
        if uf.find(int(a)) == uf.find(int(b)):
            unsatisfied.append((int(a), int(b)))
        else:
            uf.forbid(int(a), int(b))
    order = np.argsort(-e_strength[~human], kind="stable")
    for a, b in zip(e_left[~human][order], e_right[~human][order]):
        uf.union(int(a), int(b))
    roots = np.array([uf.find(int(x)) for x in nodes], dtype=np.int64)
    # relabel to the smallest member index of each new group
    smallest: dict[int, int] = {}
    for node, root in zip(nodes, roots):
        smallest[int(root)] = min(smallest.get(int(root), int(node)), int(node))
    labels = labels.copy()
    labels[nodes] = [smallest[int(r)] for r in roots]
    unsat = np.array(unsatisfied, dtype=np.int64).reshape(-1, 2)
    return ClusterResult(labels, unsat, int(len(bad_components)))
