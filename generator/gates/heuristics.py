"""Gate: cheap text checks that catch what a writer model leaves behind when it fails.

A document must read like a real document of its genre (DESIGN.md, "What the documents must
be"): no template slots, no chatter around the document or echo of the writing prompt, no
refusal, no chat-template tokens, no degenerate loops, the right language and a sensible
length. Each check is a small function over one shared, lazily computed view of the document
(`_Doc`).

The patterns the checks match live in `generator.gates.rules`, each written with its legitimate
look-alike in mind; the tests in tests/gates/test_heuristics.py hold both sides of every
boundary.
"""

from __future__ import annotations

import operator
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

from generator.archetype import Archetype
from generator.gates import language as lang
from generator.gates import rules, tropes, truncation
from generator.gates.base import GateContext, GateFailure, GateOutcome, Measurements
from generator.records import Record

NAME = "heuristics"

# This gate's checks. Order matters: the first failure is the headline reason, so the most
# specific diagnoses (leaked tokens, a refusal, chatter) come before the generic ones
# (language, length).
TEXT_CHECKS: tuple[str, ...] = (
    "leakage",
    "refusal",
    "meta",
    "placeholder",
    "repetition",
    "language",
    "length",
)
# Every check `--relax` may name: this gate's, then the other offline gates' (the CLI imports
# this tuple from here). tests/test_gates.py holds it equal to the gate list's checks.
CHECKS: tuple[str, ...] = (*TEXT_CHECKS, truncation.REASON, tropes.REASON)

# The writer is asked for a length inside [min_words, max_words]; models overshoot and
# undershoot a little, so the gate allows 15% either side before calling it a failure.
LENGTH_TOLERANCE = 0.15
# Below this many words, ratios of repeated 4-grams say little, and a stock refusal phrase
# anywhere is likely to be the whole answer.
MIN_WORDS_FOR_RATIOS = 80
MAX_REPEATED_NGRAM_RATIO = 0.25
MAX_REPEATED_SENTENCE_RATIO = 0.3
MIN_SENTENCES_FOR_RATIO = 5
MAX_SENTENCE_REPEATS = 2  # a sentence of five or more words seen 3 times is a loop
MIN_SENTENCE_WORDS = 5  # shorter lines ("Are you still there?") recur in real dialogue
MAX_WORD_RUN = 7  # "no, no, no" is speech; one word 8 times in a row is a loop
MAX_PHRASE_RUN = 3  # one 2-6 word phrase 4 times back to back is a loop
MIN_LANGUAGE_CONFIDENCE = 0.3
LONG_TEXT_WORDS = 60  # from here on, an unclear language verdict fails

_HEAD_CHARS = 300
_TAIL_CHARS = 600
_QUOTE_CHARS = 60

_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff]")
_NOT_WORD = [c for c in map(chr, range(128)) if not (c.isalnum() or c == "_")]
# Sentence ends -> ".", other ASCII punctuation -> space: a sentence then normalises with
# str.split(). Typographic marks are replaced first (`_Doc.plain`) so that most documents are
# pure ASCII, for which str.translate has a fast path.
_SENTENCE_TABLE = str.maketrans({**dict.fromkeys(_NOT_WORD, " "), **dict.fromkeys(".!?\n", ".")})
_TYPOGRAPHIC = ("’", "‘", "“", "”", "—", "–", "«", "»", "•", "·")


@dataclass
class _Doc:
    """The document and its views, each computed once and only if a check needs it."""

    text: str
    archetype: Archetype
    genre: str = ""  # the record's genre id: its description is what the prompt quoted

    @cached_property
    def genre_description(self) -> str:
        return next((g.description for g in self.archetype.genres if g.id == self.genre), "")

    @cached_property
    def lowered(self) -> str:
        return self.text.lower()

    @cached_property
    def words(self) -> list[str]:
        """Lowercase `\\w+` tokens, as Record.n_words counts them."""
        return lang.tokens(self.lowered)

    @cached_property
    def plain(self) -> str:
        """The lowercased text with typographic punctuation replaced: ASCII for most prose."""
        plain = self.lowered
        for mark in _TYPOGRAPHIC:
            if mark in plain:
                plain = plain.replace(mark, " ")
        return plain.replace("…", ".") if "…" in plain else plain

    @cached_property
    def target_language(self) -> str:
        return lang.primary_subtag(self.archetype.targets.language)

    @cached_property
    def n_words(self) -> int:
        if self.target_language in ("ja", "zh"):
            # No spaces between words: count about two characters a word, plus Latin words.
            cjk = len(_CJK_CHAR.findall(self.text))
            latin = sum(1 for w in self.words if not _CJK_CHAR.search(w))
            return cjk // 2 + latin
        return len(self.words)

    @cached_property
    def head(self) -> str:
        return self.text.lstrip()[:_HEAD_CHARS]

    @cached_property
    def tail(self) -> str:
        return self.text.rstrip()[-_TAIL_CHARS:]

    @cached_property
    def language(self) -> tuple[str, float]:
        return lang.detect(self.text, words=self.words)

    @cached_property
    def sentences(self) -> list[str]:
        """Normalised sentences of at least four words (shorter ones recur naturally)."""
        out = []
        for raw in self.plain.translate(_SENTENCE_TABLE).split("."):
            words = raw.split()
            if len(words) >= 4:
                out.append(" ".join(words))
        return out

    @cached_property
    def sentence_counts(self) -> Counter[str]:
        return Counter(self.sentences)

    @cached_property
    def repeated_ngrams(self) -> int:
        """How many word 4-grams repeat an earlier one."""
        w = self.words
        total = max(len(w) - 3, 0)
        return total - len(set(zip(w, w[1:], w[2:], w[3:], strict=False)))

    @cached_property
    def repeated_ngram_ratio(self) -> float:
        """Share of word 4-grams that repeat an earlier one."""
        total = len(self.words) - 3
        return round(self.repeated_ngrams / total, 4) if total > 0 else 0.0

    @cached_property
    def repeated_sentence_ratio(self) -> float:
        """Share of sentences (of four or more words) that repeat an earlier one."""
        if not self.sentences:
            return 0.0
        repeats = len(self.sentences) - len(self.sentence_counts)
        return round(repeats / len(self.sentences), 4)


def _quote(text: str, start: int, end: int) -> str:
    snippet = " ".join(text[start:end].split())
    if len(snippet) > _QUOTE_CHARS:
        snippet = snippet[: _QUOTE_CHARS - 1] + "…"
    return f'"{snippet}"'


def _quote_match(original: str, match: re.Match[str], at_least: int = 40) -> str:
    """A short quote of `match`, from the original text when the match ran on a lowercased
    copy of it (lowercasing keeps positions, bar a few exotic letters)."""
    source = original if len(original) == len(match.string) else match.string
    return _quote(source, match.start(), max(match.end(), match.start() + at_least))


# --- the checks: each returns a detail line when it fails, else None ------------------------


def _check_length(doc: _Doc) -> str | None:
    targets = doc.archetype.targets
    low = int(targets.min_words * (1 - LENGTH_TOLERANCE))
    high = round(targets.max_words * (1 + LENGTH_TOLERANCE))
    if low <= doc.n_words <= high:
        return None
    side = "too short" if doc.n_words < low else "too long"
    return (
        f"{side}: {doc.n_words} words, allowed {low}-{high} "
        f"(targets {targets.min_words}-{targets.max_words} ±{LENGTH_TOLERANCE:.0%})"
    )


def _check_language(doc: _Doc) -> str | None:
    target = doc.target_language
    if target not in lang.SUPPORTED:
        return None  # measured, but there is no profile to hold the text to
    detected, confidence = doc.language
    if doc.n_words >= LONG_TEXT_WORDS and confidence < MIN_LANGUAGE_CONFIDENCE:
        return f"expected {target}, language unclear ({detected}, confidence {confidence:.2f})"
    if detected not in (target, lang.UNKNOWN):
        return f"expected {target}, detected {detected} (confidence {confidence:.2f})"
    return None


def _check_placeholder(doc: _Doc) -> str | None:
    text = doc.text
    for rule in rules.PLACEHOLDERS:
        match = rule.search(text, doc.lowered)
        if match:
            return f"template slot left in: {_quote_match(text, match, 0)}"
    if "XXX" in text:
        for match in rules.XXX.finditer(text):
            line_start = text.rfind("\n", 0, match.start()) + 1
            if not rules.KISSES.search(text, line_start, match.start()):
                return f"template slot left in: {_quote_match(text, match)}"
    return None


def _check_meta(doc: _Doc) -> str | None:
    head = doc.head
    for pattern in rules.META_HEAD:
        match = pattern.search(head.lower())
        if match:
            return f"commentary before the document: {_quote_match(head, match)}"
    for rule in rules.META_ANYWHERE:
        match = rule.search(doc.text, doc.lowered)
        if match:
            return f"commentary about the document: {_quote_match(doc.text, match)}"
    tail = doc.tail
    lowered_tail = tail.lower()
    for pattern in rules.META_EDGES:
        match = pattern.search(head.lower())
        if match:
            return f"commentary about the document: {_quote_match(head, match)}"
        match = pattern.search(lowered_tail)
        if match:
            return f"commentary about the document: {_quote_match(tail, match)}"
    for rule in rules.META_TAIL:
        match = rule.search(tail, lowered_tail)
        if match:
            return f"commentary after the document: {_quote_match(tail, match)}"
    return _check_prompt_echo(doc)


def _check_prompt_echo(doc: _Doc) -> str | None:
    match = rules.PROMPT_ECHO.search(doc.text, doc.lowered)
    if match:
        return f"the writing prompt echoed: {_quote_match(doc.text, match)}"
    runs = rules.description_runs(doc.genre_description) if doc.genre_description else frozenset()
    if runs:
        # The document's runs of ECHO_RUN words, made and looked up in C (zip, isdisjoint);
        # the loop that finds which run it was only runs on a hit.
        words = doc.words
        windows = [words[i:] for i in range(rules.ECHO_RUN)]
        if not runs.isdisjoint(zip(*windows, strict=False)):
            run = next(run for run in zip(*windows, strict=False) if run in runs)
            return f'the genre\'s description from the prompt echoed: "{" ".join(run)}"'
    return None


def _check_refusal(doc: _Doc) -> str | None:
    head = doc.head
    match = rules.REFUSAL_HEAD.search(head.lower())
    if match:
        return f"the writer refused: {_quote_match(head, match)}"
    lowered = doc.lowered
    for match in rules.REFUSAL_OBJECT.finditer(lowered):
        before = lowered[max(0, match.start() - 40) : match.start()]
        if rules.CANT_BEFORE.search(before):
            return (
                f"the writer refused: {_quote(doc.text, match.start() - len(before), match.end())}"
            )
    match = rules.REFUSAL_REQUEST.search(doc.text, lowered)
    if match:
        return f"the writer refused: {_quote_match(doc.text, match)}"
    if doc.n_words < MIN_WORDS_FOR_RATIOS:
        match = rules.REFUSAL_SHORT.search(lowered)
        if match:
            return f"the writer refused: {_quote_match(doc.text, match)}"
    return None


def _check_leakage(doc: _Doc) -> str | None:
    text = doc.text
    for rule in rules.LEAKS:
        match = rule.search(text, doc.lowered)
        if match:
            return f"chat-template token: {_quote_match(text, match, 0)}"
    if "<s>" in text or "</s>" in text:
        scrubbed = rules.S_PAIR.sub("", text)
        match = rules.S_TAG.search(scrubbed)
        if match:
            return f"chat-template token: {_quote(scrubbed, match.start(), match.end())}"
    return None


def _run_start(words: list[str], k: int, times: int) -> int:
    """Where one k-word phrase first occurs `times` times back to back, or -1."""
    span = (times - 1) * k  # consecutive positions i with words[i] == words[i + k]
    equal = bytes(map(operator.eq, words, words[k:]))
    return equal.find(b"\x01" * span) if equal.count(1) >= span else -1


def _check_repetition(doc: _Doc) -> str | None:
    words = doc.words
    if doc.n_words >= MIN_WORDS_FOR_RATIOS and doc.repeated_ngram_ratio > MAX_REPEATED_NGRAM_RATIO:
        grams = Counter(zip(words, words[1:], words[2:], words[3:], strict=False))
        (gram, count), *_ = grams.most_common(1)
        return (
            f'{doc.repeated_ngram_ratio:.0%} of 4-grams repeat (e.g. "{" ".join(gram)}" x{count})'
        )
    counts = doc.sentence_counts
    if counts:
        sentence, count = counts.most_common(1)[0]
        if count > MAX_SENTENCE_REPEATS and len(sentence.split()) >= MIN_SENTENCE_WORDS:
            return f"the same sentence {count} times: {_quote(sentence, 0, len(sentence))}"
        if (
            len(doc.sentences) >= MIN_SENTENCES_FOR_RATIO
            and doc.repeated_sentence_ratio > MAX_REPEATED_SENTENCE_RATIO
        ):
            return f"{doc.repeated_sentence_ratio:.0%} of sentences repeat an earlier one"
    # A word 8 times in a row, or a 2-6 word phrase 4 times back to back, repeats at least
    # three 4-grams; most documents repeat fewer and skip the search.
    if doc.repeated_ngrams < 3:
        return None
    start = _run_start(words, 1, MAX_WORD_RUN + 1)
    if start >= 0:
        return f'"{words[start]}" more than {MAX_WORD_RUN} times in a row'
    for k in range(2, 7):
        start = _run_start(words, k, MAX_PHRASE_RUN + 1)
        if start >= 0 and len(set(words[start : start + k])) > 1:
            phrase = " ".join(words[start : start + k])
            return f'"{phrase}" more than {MAX_PHRASE_RUN} times in a row'
    return None


_CHECK_FUNCTIONS: dict[str, Callable[[_Doc], str | None]] = {
    "leakage": _check_leakage,
    "refusal": _check_refusal,
    "meta": _check_meta,
    "placeholder": _check_placeholder,
    "repetition": _check_repetition,
    "language": _check_language,
    "length": _check_length,
}
assert tuple(_CHECK_FUNCTIONS) == TEXT_CHECKS


def check(
    text: str,
    archetype: Archetype,
    *,
    relax: frozenset[str] = frozenset(),
    names: Sequence[str] = (),
    genre: str = "",
) -> GateOutcome:
    """Run every check on `text`; failures come in TEXT_CHECKS order, the headline first.

    Checks named in `relax` are still measured but never fail (the caller records them in the
    manifest). `names`, the task's people, is accepted for symmetry with the dedup gate; no
    heuristic needs it. `genre`, the record's genre id, lets the meta check see the genre's
    description from the prompt echoed back.
    """
    doc = _Doc(text, archetype, genre)
    failures = []
    for name, function in _CHECK_FUNCTIONS.items():
        detail = function(doc)
        if detail is not None and name not in relax:
            failures.append(GateFailure(NAME, name, detail))
    detected, confidence = doc.language
    return GateOutcome(
        tuple(failures),
        Measurements(
            language=detected,
            language_confidence=confidence,
            repeated_ngram_ratio=doc.repeated_ngram_ratio,
            repeated_sentence_ratio=doc.repeated_sentence_ratio,
            n_words=doc.n_words,
        ),
    )


class HeuristicsGate:
    """The text checks above, as one gate."""

    name = NAME
    checks: tuple[str, ...] = TEXT_CHECKS
    after_pass = False

    async def review(self, record: Record, context: GateContext) -> GateOutcome:
        return check(record.text, context.archetype, relax=context.relax, genre=record.genre)
