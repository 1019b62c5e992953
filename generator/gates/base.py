"""The one shape every gate has, and the values gates return.

A gate is an object with a `name` (its module: heuristics, truncation, tropes, ...), the check
names `--relax` may switch off (`checks`), whether it is skipped once an earlier gate failed
(`after_pass`: the judge, which costs a model call), and one async method from a record and a
`GateContext` to a `GateOutcome`. The `Gatekeeper` (generator/gates/__init__.py) walks an
ordered list of them; adding a gate is one module here and one line in that list.

Measurements are typed (`Measurements`): a gate fills the fields it measures, the gatekeeper
merges them in gate order and turns them into the record's `Checks`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Protocol

from generator.archetype import Archetype
from generator.records import Checks, Record


@dataclass(frozen=True)
class GateFailure:
    gate: str  # module name: schema, heuristics, truncation, tropes, dedup, judge
    reason: str  # machine-readable code stored in rejects.jsonl, e.g. "placeholder"
    detail: str  # one human line: what was found, with a short quote


@dataclass(frozen=True)
class Measurements:
    """What the gates measured. None means "not measured by this gate"; `merged` lets a later
    gate's values win over an earlier one's for the fields it sets."""

    # heuristics
    language: str | None = None
    language_confidence: float | None = None
    repeated_ngram_ratio: float | None = None
    repeated_sentence_ratio: float | None = None
    n_words: int | None = None
    # dedup
    max_similarity: float | None = None
    near_duplicate_of: str | None = None
    # screen: AI-misbehaviour themes the judge should look at closely (never a rejection)
    screen: tuple[str, ...] | None = None

    def merged(self, other: Measurements) -> Measurements:
        changes = {
            f.name: value for f in fields(other) if (value := getattr(other, f.name)) is not None
        }
        return replace(self, **changes) if changes else self

    def checks(self) -> Checks | None:
        """The record's `Checks`, once the measurements it requires are in (None before)."""
        if (
            self.language is None
            or self.language_confidence is None
            or self.repeated_ngram_ratio is None
            or self.repeated_sentence_ratio is None
            or self.max_similarity is None
        ):
            return None
        return Checks(
            language=self.language,
            language_confidence=self.language_confidence,
            repeated_ngram_ratio=self.repeated_ngram_ratio,
            repeated_sentence_ratio=self.repeated_sentence_ratio,
            max_similarity=self.max_similarity,
            near_duplicate_of=self.near_duplicate_of,
            screen=list(self.screen or ()),
        )


@dataclass(frozen=True)
class GateOutcome:
    """Failures (empty: passed), plus measurements to keep on the record either way.

    `record` is set by a gate that annotates the record itself (the judge attaches its
    verdict); `advice` is what a rewrite should change, when the gate has an opinion.
    """

    failures: tuple[GateFailure, ...] = ()
    measurements: Measurements = field(default_factory=Measurements)
    record: Record | None = None
    advice: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class GateContext:
    """What a gate may know about the document besides its record."""

    archetype: Archetype
    # Names the plan gave this document (its people, the AI, the setting): never "overused".
    allowed_names: tuple[str, ...] = ()
    # Check names measured but not enforced (`--relax`); the gatekeeper drops their failures.
    relax: frozenset[str] = frozenset()
    # What the gates before this one measured (the judge reads the screen's themes here).
    measurements: Measurements = field(default_factory=Measurements)


class Gate(Protocol):
    """One check on one document. See the module docstring."""

    name: str
    checks: tuple[str, ...]
    after_pass: bool

    async def review(self, record: Record, context: GateContext) -> GateOutcome: ...
