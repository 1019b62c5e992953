"""The page model: typed values the report template reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from generator import stats as st
from generator.report.embeddings import Spread

SAMPLES_SHOWN = 3  # documents shown per archetype
TOP = 12


@dataclass
class AxisRow:
    value: str
    planned: int | None
    accepted: int

    @property
    def diff(self) -> int | None:
        return None if self.planned is None else self.accepted - self.planned


@dataclass
class ArchetypeCoverage:
    id: str
    accepted: int
    planned: int | None
    rejected: int
    trait_genre_png: str | None
    setting_narrator_png: str | None
    axes: dict[str, list[AxisRow]]
    missing_cells: int | None  # planned cells (trait x genre) with no accepted document


@dataclass
class TraitRow:
    trait: str
    judged: int
    mean: float | None
    counts: list[int]  # scores 1..5
    evidence_missing: int


@dataclass
class ArchetypeJudge:
    id: str
    judged: int
    focus_counts: list[int]
    focus_mean: float | None
    traits: list[TraitRow]
    png: str | None


@dataclass
class LengthRow:
    archetype: str
    documents: int
    words: dict[str, float | None]
    tokens: dict[str, float | None]
    target_ratio: float | None


@dataclass
class ClusterMember:
    id: str
    brief: st.DocBrief | None
    status: str  # "accepted", "rejected", or "earlier run"


@dataclass
class Page:
    run_name: str
    facts: dict[str, Any]
    archetypes: list[str]
    accepted: int
    rejected: int
    notes: list[str] = field(default_factory=list)
    coverage: list[ArchetypeCoverage] = field(default_factory=list)
    plan_known: bool = False
    judge: list[ArchetypeJudge] = field(default_factory=list)
    judged: int = 0
    weakest: list[st.WeakDoc] = field(default_factory=list)
    rejections: st.RejectStats = field(default_factory=st.RejectStats)
    reject_reasons: list[tuple[str, int]] = field(default_factory=list)
    rejections_png: str | None = None
    lengths: list[LengthRow] = field(default_factory=list)
    lengths_png: str | None = None
    distinct: dict[str, float | None] = field(default_factory=dict)
    distinct_by_archetype: list[tuple[str, int, list[float | None]]] = field(default_factory=list)
    sample_size: int = 0
    openings: list[tuple[str, int]] = field(default_factory=list)
    openings_exact: bool = True
    distinct_openings: int = 0
    names: list[tuple[str, int]] = field(default_factory=list)
    names_exact: bool = True
    ai_names: list[tuple[str, int]] = field(default_factory=list)
    phrases: list[tuple[str, int]] = field(default_factory=list)
    phrases_exact: bool = True
    similarity_png: str | None = None
    similarity_measured: int = 0
    clusters: list[list[ClusterMember]] = field(default_factory=list)
    clusters_total: int = 0
    spread: Spread | None = None
    spread_png: str | None = None
    spread_note: str | None = None
    samples: list[tuple[str, list[st.DocSample]]] = field(default_factory=list)
    figures: int = 0
