"""Text measures the statistics share: word tokens, openings, distinct-n, phrases, token
counts, stable sampling ranks and excerpts."""

from __future__ import annotations

import functools
import hashlib
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

PHRASE_WORDS = 4

_WORD = re.compile(r"\w+", re.UNICODE)
_PACK_LIMIT = 1 << 21  # word ids must fit in the 21 bits each word of a packed n-gram gets

# Phrases made only of these words say nothing about style ("at the end of").
_STOPWORDS = frozenset(
    """a about after again all also am an and any are as at be because been before being but by
    can could did do does doing down during each few for from further had has have having he her
    here hers him his how i if in into is it its itself just me more most my no nor not now of off
    on once only or other our out over own same she should so some such than that the their them
    then there these they this those through to too under until up very was we were what when
    where which while who whom why will with would you your""".split()  # noqa: SIM905
)


def words_of(text: str) -> list[str]:
    """Lowercased word tokens, as distinct-n and phrases count them."""
    return _WORD.findall(text.lower())


def opening(text: str, words: int = 5) -> str:
    """The first `words` whitespace-separated words, case kept."""
    return " ".join(text.split()[:words])


def distinct_n(texts: Iterable[str], n: int) -> float | None:
    """Distinct n-grams / all n-grams over the texts (lowercased words); None if there are none."""
    return distinct_ns(texts, (n,))[n]


def distinct_ns(texts: Iterable[str], ns: Sequence[int] = (1, 2, 3)) -> dict[int, float | None]:
    """distinct-n for several n at once, reading each text once.

    Exact: n-grams of up to three words are packed into one 64-bit integer per gram (word ids
    below 2**21), so memory is 8 bytes a gram rather than a Python tuple each; longer n-grams
    (or a vocabulary past 2**21 words) fall back to sets of tuples.
    """
    vocabulary: dict[str, int] = {}
    packed: dict[int, list[np.ndarray]] = {n: [] for n in ns}
    grams: dict[int, set[tuple[str, ...]]] = {n: set() for n in ns}
    totals = dict.fromkeys(ns, 0)
    packable = {n: n <= 3 for n in ns}
    for text in texts:
        words = words_of(text)
        if not words:
            continue
        ids: np.ndarray | None = None
        for n in ns:
            count = len(words) - n + 1
            if count <= 0:
                continue
            totals[n] += count
            if packable[n]:
                if ids is None:
                    add = vocabulary.setdefault
                    ids = np.array([add(w, len(vocabulary)) for w in words], dtype=np.uint64)
                gram_ids = np.zeros(count, dtype=np.uint64)
                for k in range(n):
                    gram_ids = (gram_ids << np.uint64(21)) | ids[k : k + count]
                packed[n].append(gram_ids)
            else:
                grams[n].update(tuple(words[i : i + n]) for i in range(count))
        if len(vocabulary) >= _PACK_LIMIT:
            # Never for a sample of a few thousand documents; stay exact all the same.
            for n in ns:
                if packable[n]:
                    grams[n].update(_unpack(packed[n], vocabulary, n))
                    packed[n] = []
                    packable[n] = False
    result: dict[int, float | None] = {}
    for n in ns:
        distinct = len(grams[n])
        if packed[n]:
            distinct += int(np.unique(np.concatenate(packed[n])).size)
        result[n] = distinct / totals[n] if totals[n] else None
    return result


def _unpack(
    arrays: list[np.ndarray], vocabulary: dict[str, int], n: int
) -> Iterator[tuple[str, ...]]:
    words = sorted(vocabulary, key=vocabulary.__getitem__)
    mask = np.uint64((1 << 21) - 1)
    for packed in arrays:
        for value in np.unique(packed):
            parts = [int((value >> np.uint64(21 * (n - 1 - k))) & mask) for k in range(n)]
            yield tuple(words[p] for p in parts)


def phrases_of(words: Sequence[str], n: int = PHRASE_WORDS) -> set[str]:
    """The document's distinct n-word phrases with at least two words that are not stopwords."""
    content = [0 if (w in _STOPWORDS or w.isdigit()) else 1 for w in words]
    grams = zip(*(words[k:] for k in range(n)), strict=False)
    weights = map(sum, zip(*(content[k:] for k in range(n)), strict=False))
    return {" ".join(gram) for gram, weight in zip(grams, weights, strict=True) if weight >= 2}


def count_tokens(text: str) -> int:
    """Tokens in `text` with the default encoding (generator.tokens, o200k_base). Text that
    looks like a special token (e.g. "<|endoftext|>") counts as the plain text it is, as in
    `archetypes build`, rather than raising as `generator.tokens.count_tokens` does."""
    return len(_encoding().encode(text, disallowed_special=()))


@functools.cache
def _encoding() -> Any:
    from generator.tokens import encoding

    with warnings.catch_warnings():
        # bpe-openai reads its tables with importlib.resources' deprecated open_binary.
        warnings.simplefilter("ignore", DeprecationWarning)
        return encoding()


def priority(salt: str, doc_id: str) -> int:
    """A stable pseudo-random rank for a document: the sample is the lowest ranks."""
    digest = hashlib.sha256(f"{salt}{doc_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def excerpt(text: str, limit: int) -> str:
    """The start of `text`, cut at a word boundary, with an ellipsis if cut."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + " …"
