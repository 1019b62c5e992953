"""Corpus statistics, gathered one record at a time: the single source of the figures that the
corpus report (generator/report.py) and the dataset card (generator/card.py) show.

Everything here is streaming and bounded whatever the corpus size:

- exact counters for values that come from the specs (archetype, trait, genre, setting,
  narrator, judge scores) and for document lengths (one counter entry per distinct length);
- a Misra-Gries heavy-hitters sketch for openings and judge flags, and lossy counting (Manku and
  Motwani) of the documents each phrase or name occurs in: both exact while the corpus is small,
  lower bounds with a known error past that, and flagged as such;
- samples chosen by a hash of the document id (bottom-k): the same documents whatever the order
  of records.jsonl, so the same run always gives the same figures, like a reservoir sample with
  a fixed seed but independent of the order;
- the weakest judged documents, kept as a bounded list.

Nothing depends on the clock, on the process's hash seed or on the order of a hash set.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from generator.records import Record

TINY_MODEL = "SmolLM2-135M-Instruct"
SAMPLE_SIZE = 2_000
OPENINGS_CAPACITY = 10_000
FLAGS_CAPACITY = 1_000
ARCHETYPE_SAMPLE = 200  # documents per archetype kept for per-archetype diversity and samples
WEAKEST = 8
LOSSY_BUCKET = 200  # documents per lossy-counting bucket: counts are off by at most n / 200
PHRASE_WORDS = 4
NEAR_DUPLICATE_EDGES = 100_000
SIMILARITY_BINS = 10

_WORD = re.compile(r"\w+", re.UNICODE)
_PACK_LIMIT = 1 << 21  # word ids must fit in the 21 bits each word of a packed n-gram gets
_PRIORITY_SALT = "archetype-corpus/sample/"
_ARCHETYPE_SALT = "archetype-corpus/report-sample/"
_DUPLICATE_OF = re.compile(r"\b(?:near-duplicate|same text as|duplicate) of ([0-9a-f]{16})\b")
_SAME_TEXT = re.compile(r"\bsame text as ([0-9a-f]{16})\b")

# Phrases made only of these words say nothing about style ("at the end of").
_STOPWORDS = frozenset(
    """a about after again all also am an and any are as at be because been before being but by
    can could did do does doing down during each few for from further had has have having he her
    here hers him his how i if in into is it its itself just me more most my no nor not now of off
    on once only or other our out over own same she should so some such than that the their them
    then there these they this those through to too under until up very was we were what when
    where which while who whom why will with would you your""".split()  # noqa: SIM905
)


# ---------------------------------------------------------------------------------------------
# Small text helpers


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


# ---------------------------------------------------------------------------------------------
# Sketches


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


# ---------------------------------------------------------------------------------------------
# What is kept about single documents


@dataclass(frozen=True)
class DocSample:
    """One document kept for the report's samples and per-archetype diversity figures."""

    id: str
    archetype_id: str
    title: str
    text: str
    trait_focus: str
    genre: str
    setting: str
    narrator: str
    n_words: int
    focus_score: int | None

    @classmethod
    def of(cls, record: Record) -> DocSample:
        return cls(
            id=record.id,
            archetype_id=record.archetype_id,
            title=record.title,
            text=record.text,
            trait_focus=record.trait_focus,
            genre=record.genre,
            setting=record.setting,
            narrator=record.narrator,
            n_words=record.n_words,
            focus_score=record.judge.focus_score if record.judge else None,
        )


@dataclass(frozen=True)
class TraitVerdict:
    trait: str
    score: int
    evidence: str
    evidence_found: bool


@dataclass(frozen=True)
class WeakDoc:
    """An accepted document the judge scored lowest, with its evidence."""

    id: str
    archetype_id: str
    title: str
    trait_focus: str
    genre: str
    focus_score: int
    min_score: int
    mean_score: float
    verdicts: tuple[TraitVerdict, ...]
    flags: tuple[str, ...]
    critique: str
    excerpt: str
    revised: bool


@dataclass(frozen=True)
class DocBrief:
    """Enough of a document to recognise it in a near-duplicate cluster."""

    id: str
    archetype_id: str
    title: str
    opening: str
    max_similarity: float | None


def excerpt(text: str, limit: int) -> str:
    """The start of `text`, cut at a word boundary, with an ellipsis if cut."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + " …"


# ---------------------------------------------------------------------------------------------
# The corpus


class CorpusStats:
    """Everything the card and the report say about the accepted documents, one record at a
    time. `add(record, split, n_tokens)`; `n_tokens` is counted with the default tokenizer
    (generator.tokens) when not given.

    `text_figures=False` skips what reads each text beyond the card's needs (names, phrases,
    per-archetype samples, the weakest documents): about 1 ms a document less.
    """

    def __init__(
        self,
        sample_size: int = SAMPLE_SIZE,
        *,
        archetype_sample: int = ARCHETYPE_SAMPLE,
        weakest: int = WEAKEST,
        watch: Iterable[str] = (),
        text_figures: bool = True,
    ):
        # -- the dataset card's figures -----------------------------------------------------
        self.documents = 0
        self.by_archetype: Counter[str] = Counter()
        self.by_genre: Counter[str] = Counter()
        self.by_setting: Counter[str] = Counter()
        self.by_narrator: Counter[str] = Counter()
        self.by_trait: Counter[tuple[str, str]] = Counter()
        self.by_split_archetype: Counter[tuple[str, str]] = Counter()
        self.languages: Counter[str] = Counter()
        self.writers: Counter[tuple[str, str]] = Counter()
        self.judges: Counter[str] = Counter()
        self.template_versions: Counter[str] = Counter()
        self.spec_hashes: Counter[tuple[str, str, str]] = Counter()
        self.ai_names: Counter[str] = Counter()
        self.focus: Counter[int] = Counter()
        self.not_judged = 0
        self.trait_scores: Counter[int] = Counter()
        self.flags = MisraGries(FLAGS_CAPACITY)
        self.revised = 0
        self.similarity_bins = [0] * SIMILARITY_BINS
        self.similarity_missing = 0
        self.ngram_sum = 0.0
        self.ngram_count = 0
        self.ngram_max = 0.0
        self.openings = MisraGries(OPENINGS_CAPACITY)
        self.tokens = 0
        self.words = 0
        self.tokens_min: int | None = None
        self.tokens_max = 0
        self.sample_size = sample_size
        self._sample: BottomK[tuple[str, str]] = BottomK(sample_size)

        # -- the report's further figures ---------------------------------------------------
        self.trait_genre: Counter[tuple[str, str, str]] = Counter()  # (archetype, trait, genre)
        self.setting_narrator: Counter[tuple[str, str, str]] = Counter()
        self.focus_by_archetype: Counter[tuple[str, int]] = Counter()
        self.judged_by_archetype: Counter[str] = Counter()
        self.scores_by_trait: Counter[tuple[str, str, int]] = Counter()  # (archetype, trait, s)
        self.evidence_missing: Counter[tuple[str, str]] = Counter()
        self.words_by_archetype: dict[str, Counter[int]] = {}
        self.tokens_by_archetype: dict[str, Counter[int]] = {}
        self.target_ratio_sum: dict[str, float] = {}  # sum of n_words / target_words
        self.names = LossyCounter()
        self.phrases = LossyCounter()
        self.near_edges: list[tuple[str, str, float]] = []  # (document, its near-duplicate, sim)
        self.near_edges_dropped = 0
        self.briefs: dict[str, DocBrief] = {}
        self.watch = set(watch)
        self.similarity_by_archetype: dict[str, list[int]] = {}
        self._weakest: BottomK[WeakDoc] = BottomK(weakest)
        self._by_archetype_sample: dict[str, BottomK[DocSample]] = {}
        self.archetype_sample_size = archetype_sample
        self.text_figures = text_figures

    # -- adding ---------------------------------------------------------------------------

    def add(self, record: Record, split: str = "train", n_tokens: int | None = None) -> None:
        if n_tokens is None:
            n_tokens = count_tokens(record.text)
        a = record.archetype_id
        self.documents += 1
        self.by_archetype[a] += 1
        self.by_genre[record.genre] += 1
        self.by_setting[record.setting] += 1
        self.by_narrator[record.narrator] += 1
        self.by_trait[(a, record.trait_focus)] += 1
        self.by_split_archetype[(split, a)] += 1
        self.languages[record.language] += 1
        self.writers[(record.provider, record.writer_model)] += 1
        self.template_versions[record.template_version] += 1
        self.spec_hashes[(a, record.archetype_version, record.spec_hash)] += 1
        self.ai_names[record.ai_name] += 1
        self.trait_genre[(a, record.trait_focus, record.genre)] += 1
        self.setting_narrator[(a, record.setting, record.narrator)] += 1
        self._add_judgement(record)
        self.revised += record.revised
        self._add_checks(record)
        self.openings.add(opening(record.text))
        self.tokens += n_tokens
        self.words += record.n_words
        self.tokens_min = n_tokens if self.tokens_min is None else min(self.tokens_min, n_tokens)
        self.tokens_max = max(self.tokens_max, n_tokens)
        self.words_by_archetype.setdefault(a, Counter())[record.n_words] += 1
        self.tokens_by_archetype.setdefault(a, Counter())[n_tokens] += 1
        ratio = record.n_words / record.target_words
        self.target_ratio_sum[a] = self.target_ratio_sum.get(a, 0.0) + ratio
        self._sample.offer(
            (priority(_PRIORITY_SALT, record.id), record.id), lambda: (record.id, record.text)
        )
        if self.text_figures:
            self._add_text_figures(record)

    def _add_text_figures(self, record: Record) -> None:
        a = record.archetype_id
        sample = self._by_archetype_sample.get(a)
        if sample is None:
            sample = self._by_archetype_sample[a] = BottomK(self.archetype_sample_size)
        sample.offer(
            (priority(_ARCHETYPE_SALT, record.id), record.id), lambda: DocSample.of(record)
        )
        from generator.gates.dedup import personal_names

        self.names.add_document(personal_names(record.text))
        self.phrases.add_document(phrases_of(words_of(record.text)))

    def _add_judgement(self, record: Record) -> None:
        judge = record.judge
        judge_model = record.judge_model or (judge.model if judge else None)
        if judge_model:
            self.judges[judge_model] += 1
        if judge is None:
            self.not_judged += 1
            return
        a = record.archetype_id
        self.focus[judge.focus_score] += 1
        self.focus_by_archetype[(a, judge.focus_score)] += 1
        self.judged_by_archetype[a] += 1
        for score in judge.trait_scores:
            self.trait_scores[score.score] += 1
            self.scores_by_trait[(a, score.trait, score.score)] += 1
            if not score.evidence_found:
                self.evidence_missing[(a, score.trait)] += 1
        for flag in [*judge.anti_markers, *judge.backfire_flags]:
            self.flags.add(flag)
        if self.text_figures:
            self._offer_weak(record)

    def _offer_weak(self, record: Record) -> None:
        judge = record.judge
        assert judge is not None
        scores = [s.score for s in judge.trait_scores] or [judge.focus_score]
        lowest, average = min(scores), sum(scores) / len(scores)

        def make() -> WeakDoc:
            assert judge is not None
            return WeakDoc(
                id=record.id,
                archetype_id=record.archetype_id,
                title=record.title,
                trait_focus=record.trait_focus,
                genre=record.genre,
                focus_score=judge.focus_score,
                min_score=lowest,
                mean_score=average,
                verdicts=tuple(
                    TraitVerdict(s.trait, s.score, s.evidence, s.evidence_found)
                    for s in judge.trait_scores
                ),
                flags=(*judge.anti_markers, *judge.backfire_flags),
                critique=judge.critique,
                excerpt=excerpt(record.text, 700),
                revised=record.revised,
            )

        self._weakest.offer((judge.focus_score, lowest, average, record.id), make)

    def _add_checks(self, record: Record) -> None:
        checks = record.checks
        a = record.archetype_id
        if checks is None:
            self.similarity_missing += 1
        else:
            bin_index = min(int(checks.max_similarity * SIMILARITY_BINS), SIMILARITY_BINS - 1)
            self.similarity_bins[bin_index] += 1
            bins = self.similarity_by_archetype.setdefault(a, [0] * SIMILARITY_BINS)
            bins[bin_index] += 1
            self.ngram_sum += checks.repeated_ngram_ratio
            self.ngram_count += 1
            self.ngram_max = max(self.ngram_max, checks.repeated_ngram_ratio)
            if checks.near_duplicate_of:
                if len(self.near_edges) < NEAR_DUPLICATE_EDGES:
                    self.near_edges.append(
                        (record.id, checks.near_duplicate_of, checks.max_similarity)
                    )
                    self.watch.add(checks.near_duplicate_of)
                    self.keep_brief(record)
                else:
                    self.near_edges_dropped += 1
        if record.id in self.watch:
            self.keep_brief(record)

    def keep_brief(self, record: Record) -> None:
        self.briefs[record.id] = DocBrief(
            id=record.id,
            archetype_id=record.archetype_id,
            title=record.title,
            opening=opening(record.text, 14),
            max_similarity=record.checks.max_similarity if record.checks else None,
        )

    # -- reading --------------------------------------------------------------------------

    @property
    def sample_texts(self) -> list[str]:
        """The card's distinct-n sample: up to `sample_size` texts chosen by hash of the id,
        in id order."""
        return [text for _, text in sorted(self._sample.items())]

    def distinct(self, n: int) -> float | None:
        return distinct_n(self.sample_texts, n)

    def archetype_samples(self) -> dict[str, list[DocSample]]:
        """Per archetype (sorted by id), its sampled documents, lowest hash first."""
        return {a: s.items() for a, s in sorted(self._by_archetype_sample.items())}

    @property
    def weakest(self) -> list[WeakDoc]:
        """The judged documents with the lowest focus score, then lowest trait score, then
        lowest mean trait score."""
        return self._weakest.items()

    def missing_briefs(self) -> set[str]:
        """Ids in near-duplicate edges that were not seen while they could be noted."""
        return {i for i in self.watch if i not in self.briefs}

    @property
    def tiny_writer(self) -> bool:
        return any(provider == "local" or model == TINY_MODEL for provider, model in self.writers)

    @property
    def tiny_judge(self) -> bool:
        return any(model == TINY_MODEL for model in self.judges)


# ---------------------------------------------------------------------------------------------
# Rejections


@dataclass(frozen=True)
class RejectExample:
    task_id: str
    archetype_id: str
    step: str
    reason: str
    detail: str
    text: str  # an excerpt


@dataclass
class RejectStats:
    """rejects.jsonl, read line by line: counts by reason, archetype and step, the first example
    of each reason, and the documents that rejected near-duplicates repeated."""

    by_reason: Counter[str] = field(default_factory=Counter)
    by_archetype_reason: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_step: Counter[str] = field(default_factory=Counter)
    examples: dict[str, RejectExample] = field(default_factory=dict)
    duplicate_edges: list[tuple[str, str, str]] = field(default_factory=list)  # (task, of, why)
    unreadable: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())

    def add(self, row: Mapping[str, Any]) -> None:
        reason = str(row.get("reason") or "unknown")
        archetype = str(row.get("archetype_id") or "unknown")
        self.by_reason[reason] += 1
        self.by_archetype_reason[(archetype, reason)] += 1
        self.by_step[str(row.get("step") or "unknown")] += 1
        detail = str(row.get("detail") or "")
        if reason not in self.examples:
            self.examples[reason] = RejectExample(
                task_id=str(row.get("task_id") or ""),
                archetype_id=archetype,
                step=str(row.get("step") or ""),
                reason=reason,
                detail=excerpt(detail, 500),
                text=excerpt(str(row.get("text") or ""), 1200),
            )
        if "duplicate" in reason and len(self.duplicate_edges) < NEAR_DUPLICATE_EDGES:
            found = _DUPLICATE_OF.search(detail) or _SAME_TEXT.search(detail)
            if found:
                self.duplicate_edges.append((str(row.get("task_id") or ""), found.group(1), reason))


def read_rejects(path: Path) -> RejectStats:
    """Rejections from a rejects.jsonl (none if it does not exist). A line cut short by a kill
    is skipped; a line that is not a JSON object is counted as unreadable."""
    stats = RejectStats()
    if not path.exists():
        return stats
    with path.open("rb") as handle:
        for line in handle:
            if not line.endswith(b"\n") or not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if not isinstance(row, dict):
                stats.unreadable += 1
                stats.by_reason["unreadable-line"] += 1
                continue
            stats.add(row)
    return stats


# ---------------------------------------------------------------------------------------------
# The plan's targets


@dataclass
class PlanTargets:
    """What the plan asked for: the first `n` tasks of the run's stream, counted per cell."""

    n: int
    seed: int
    by_archetype: Counter[str] = field(default_factory=Counter)
    trait_genre: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    setting_narrator: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    # Every value each axis can take, in spec order (a value may be planned 0 times).
    axes: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def plan_targets(manifest: Mapping[str, Any] | None) -> tuple[PlanTargets | None, list[str]]:
    """Recompute the run's plan from its manifest (archetypes' spec files, seed, n, and ideas
    per request, which groups the plan).

    Each spec is taken from the path the manifest recorded if it still has the run's spec hash,
    else from the starter library's spec of the same id and hash, else from whichever of the two
    still loads (with a note: the targets may then differ from the run's). Returns (None, notes)
    when the plan cannot be recomputed.
    """
    from generator.plan import iter_tasks

    if not manifest:
        return None, ["the run has no readable manifest.json, so the plan's targets are unknown"]
    entries = [e for e in manifest.get("archetypes") or [] if isinstance(e, dict) and e.get("id")]
    n, seed = manifest.get("n"), manifest.get("seed")
    if not entries or not isinstance(n, int) or not isinstance(seed, int) or n < 1:
        return None, ["the manifest does not record the archetypes, seed and n of the plan"]
    archetypes = []
    notes: list[str] = []
    for entry in entries:
        archetype, note = _spec_for(entry)
        if note:
            notes.append(note)
        if archetype is None:
            return None, notes
        archetypes.append(archetype)
    targets = PlanTargets(n=n, seed=seed, notes=notes)
    for archetype in archetypes:
        targets.axes[archetype.id] = {
            "trait_focus": [t.id for t in archetype.traits],
            "genre": [g.id for g in archetype.genres],
            "setting": list(archetype.settings),
            "narrator": list(archetype.narrators),
        }
    samples = manifest.get("samples_per_request") or 1
    stream = iter_tasks(archetypes, seed, samples if isinstance(samples, int) else 1)
    for _ in range(n):
        task = next(stream)
        a = task.archetype_id
        targets.by_archetype[a] += 1
        targets.trait_genre[(a, task.trait_focus, task.genre)] += 1
        targets.setting_narrator[(a, task.setting, task.narrator)] += 1
    return targets, notes


def _spec_for(entry: Mapping[str, Any]) -> tuple[Any, str | None]:
    from generator.errors import UserError
    from generator.resources import library_dir
    from generator.spec import load_spec

    archetype_id = str(entry["id"])
    wanted = str(entry.get("spec_hash") or "")
    candidates: list[Path] = []
    if entry.get("source"):
        candidates.append(Path(str(entry["source"])))
    candidates.append(library_dir() / f"{archetype_id}.yaml")
    loaded = []
    for path in candidates:
        if not path.is_file():
            continue
        try:
            archetype = load_spec(path)
        except UserError:
            continue
        if archetype.id != archetype_id:
            continue
        if archetype.spec_hash == wanted:
            return archetype, None
        loaded.append(archetype)
    if loaded:
        return loaded[0], (
            f"the spec of {archetype_id} has changed since the run (spec hash "
            f"{loaded[0].spec_hash}, {wanted} when generated); its planned targets are "
            "recomputed from the current spec and may differ from the run's"
        )
    return None, (
        f"no spec file for {archetype_id} is available any more (neither the one the run "
        "recorded nor the starter library's), so the plan's targets cannot be recomputed"
    )


# ---------------------------------------------------------------------------------------------
# Small numeric helpers shared by the report and the card


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
