"""Bounded-memory sketches: heavy hitters (Misra-Gries), lossy counting of documents per key, and
an order-independent bottom-k sample."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

LOSSY_BUCKET = 200  # documents per lossy-counting bucket: counts are off by at most n / 200


class MisraGries:
    """Heavy hitters in bounded memory. Counts are exact while the number of distinct keys stays
    within `capacity`; past it they are lower bounds, off by at most n / (capacity + 1)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.counts: dict[str, int] = {}
        self.exact = True
        self.n = 0

    def add(self, key: str) -> None:
        self.n += 1
        if key in self.counts:
            self.counts[key] += 1
        elif len(self.counts) < self.capacity:
            self.counts[key] = 1
        else:
            self.exact = False
            for other in list(self.counts):
                self.counts[other] -= 1
                if self.counts[other] == 0:
                    del self.counts[other]

    def top(self, n: int) -> list[tuple[str, int]]:
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


class LossyCounter:
    """In how many documents each key occurs, by lossy counting (Manku and Motwani 2002).

    Documents are taken in buckets of `width`; after bucket b (when the next document arrives)
    every key whose count plus its possible undercount is at most b is dropped. A key kept has a
    count that is low by at most n / width, and every key in more than that many documents is
    kept. Exact (`exact` stays true) as long as nothing was dropped, which holds for any corpus
    of up to `width` documents.
    """

    def __init__(self, width: int = LOSSY_BUCKET):
        self.width = width
        self.entries: dict[str, list[int]] = {}  # key -> [count, possible undercount]
        self.n = 0
        self.exact = True

    def add_document(self, keys: Iterable[str]) -> None:
        entries = self.entries
        if self.n and self.n % self.width == 0:
            done = self.n // self.width
            dropped = [k for k, (count, error) in entries.items() if count + error <= done]
            if dropped:
                self.exact = False
                for key in dropped:
                    del entries[key]
        bucket = self.n // self.width + 1
        for key in set(keys):
            entry = entries.get(key)
            if entry is None:
                entries[key] = [1, bucket - 1]
            else:
                entry[0] += 1
        self.n += 1

    def top(self, n: int, min_count: int = 2) -> list[tuple[str, int]]:
        ranked = sorted(
            ((k, c) for k, (c, _) in self.entries.items() if c >= min_count),
            key=lambda kv: (-kv[1], kv[0]),
        )
        return ranked[:n]


T = TypeVar("T")


class BottomK(Generic[T]):
    """The k items with the lowest ranks: a fixed-size sample (or shortlist) that does not
    depend on the order items arrive in, as long as ranks are distinct (end them with the
    document id). Memory stays within 2k items; `make` builds an item only if it may be kept."""

    def __init__(self, k: int):
        self.k = k
        self._items: list[tuple[tuple[Any, ...], T]] = []
        self._cut: tuple[Any, ...] | None = None  # ranks at or above this can no longer enter

    def offer(self, rank: tuple[Any, ...], make: Callable[[], T]) -> None:
        if self.k <= 0 or (self._cut is not None and rank >= self._cut):
            return
        self._items.append((rank, make()))
        if len(self._items) >= 2 * self.k:
            self._trim()

    def _trim(self) -> None:
        self._items.sort(key=lambda item: item[0])
        del self._items[self.k :]
        if len(self._items) == self.k:
            self._cut = self._items[-1][0]

    def items(self) -> list[T]:
        """The kept items, lowest rank first."""
        self._trim()
        return [item for _, item in self._items]

    def __len__(self) -> int:
        return min(len(self._items), self.k)
