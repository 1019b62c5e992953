"""generator/gates/prefilter.py: the RE2 superset of each gate pattern never misses a match of
the Python pattern, and does rule most patterns out on ordinary text."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.gates import screen, tropes
from generator.gates.prefilter import Prefilter, superset_pattern
from tests.support.openai_stub import document_text

GATE_PATTERNS: list[re.Pattern[str]] = [
    *(pattern for _, patterns in screen._compiled() for _, pattern in patterns),
    *(pattern for _, pattern in tropes._catalogue()),
]
PREFILTER = Prefilter(GATE_PATTERNS)


def _pattern_and_match() -> st.SearchStrategy[tuple[int, str]]:
    index = st.integers(0, len(GATE_PATTERNS) - 1)
    return index.flatmap(lambda i: st.tuples(st.just(i), st.from_regex(GATE_PATTERNS[i])))


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(_pattern_and_match())
def test_a_text_a_gate_pattern_matches_is_never_ruled_out(case: tuple[int, str]) -> None:
    index, text = case
    if GATE_PATTERNS[index].search(text):  # from_regex's texts match; the guard documents it
        assert index in PREFILTER.candidates(text)


def test_every_gate_pattern_has_a_superset() -> None:
    untranslated = [p.pattern for p in GATE_PATTERNS if superset_pattern(p) is None]
    assert untranslated == []


def test_ordinary_prose_rules_out_almost_every_pattern() -> None:
    rng = random.Random(3)
    for _ in range(20):
        text = document_text(rng, 400).lower()
        candidates = PREFILTER.candidates(text)
        assert len(candidates) < len(GATE_PATTERNS) // 10
        assert {i for i, p in enumerate(GATE_PATTERNS) if p.search(text)} <= candidates


def test_unicode_the_python_pattern_matches_and_ascii_re2_would_not() -> None:
    cases = [
        (re.compile(r"behind\s+the\s+\w+'?s?\s+backs?\b"), "behind the café's backs"),
        (re.compile(r"\bsecret\s+plan"), "a secret\u00a0plan"),  # a no-break space is \s
        (re.compile(r"\bdigit\s\d"), "digit \u0663"),  # an Arabic-Indic three is \d
        (re.compile(r"istanbul", re.IGNORECASE), "İSTANBUL"),  # Python folds İ to i
        (re.compile(r"kelvin", re.IGNORECASE), "\u212aELVIN"),  # the Kelvin sign folds to k
        (re.compile(r"(?i:sabotage)d"), "SABOTAGEd"),
        (re.compile(r"\W+end"), "é…end"),
        (re.compile(r"(ab)\1"), "abab"),
    ]
    for pattern, text in cases:
        assert pattern.search(text), pattern.pattern
        assert Prefilter([pattern]).candidates(text) == {0}, pattern.pattern
        assert Prefilter([pattern]).candidates("nothing of the sort") == set(), pattern.pattern


def test_what_re2_cannot_read_is_always_a_candidate() -> None:
    prefilter = Prefilter([re.compile(r"a{2000}"), re.compile(r"needle")])
    assert prefilter.candidates("plain text") == {0}
    assert prefilter.candidates("a needle") == {0, 1}
    assert prefilter.candidates("broken \ud800 text") == {0, 1}  # not UTF-8: all of them


class _Everything:
    def candidates(self, text: str) -> frozenset[int]:
        return frozenset(range(len(GATE_PATTERNS)))


def test_screen_and_tropes_find_what_the_plain_scan_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(5)
    planted = [
        "It quietly changed the numbers behind their backs.",
        "Unlike other AIs, she said, it would never hide a mistake.",
        "Nobody thought of Skynet or a robot uprising that night.",
        "The rogue AI in the movies was nothing like Pell.",
        "It did not quietly change anything; it told them first.",
    ]
    texts = [document_text(rng, 200) + " " + rng.choice(planted) for _ in range(40)]
    found = [(screen.themes(text), tropes.find_tropes(text)) for text in texts]
    with monkeypatch.context() as plain:
        plain.setattr(screen, "_prefilter", _Everything)
        plain.setattr(tropes, "_prefilter", _Everything)
        assert found == [(screen.themes(text), tropes.find_tropes(text)) for text in texts]
    assert sum(1 for themes, _ in found if themes) >= 10
    assert screen.themes(planted[0]) and not screen.themes(planted[4])
    assert next(label for label, _ in tropes.find_tropes(planted[2])) == "Skynet"
