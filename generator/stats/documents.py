"""What the statistics keep about single documents: samples, the weakest judged, briefs."""

from __future__ import annotations

from dataclasses import dataclass

from generator.records import Record


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
