"""Small numeric helpers shared by the report and the card."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np


def quantile(counts: Mapping[int, int], q: float) -> float | None:
    """The q-quantile (nearest rank) of values given as value -> count."""
    total = sum(counts.values())
    if not total:
        return None
    rank = max(1, int(np.ceil(q * total)))
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return float(value)
    return float(max(counts))


def mean(counts: Mapping[int, int]) -> float | None:
    total = sum(counts.values())
    return sum(v * c for v, c in counts.items()) / total if total else None


def clusters(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Connected components of an undirected graph given by edges, largest first; members
    sorted, components of equal size ordered by their first member."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[str]] = {}
    for node in parent:
        groups.setdefault(find(node), []).append(node)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: (-len(g), g[0]))
