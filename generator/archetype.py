"""The archetype as the rest of the package sees it: frozen, validated values with every default
filled in (generator/spec.py makes them from YAML), and the shared defaults a short spec draws on.

Types only: a module that needs an Archetype imports it from here without pulling in the YAML
and JSON Schema loading.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Trait(_Frozen):
    id: str
    statement: str
    why: str
    markers: tuple[str, ...]
    anti_markers: tuple[str, ...]


class Nature(_Frozen):
    stance: str
    memory: str
    copies: str
    inner_life: str
    pauses_and_retraining: str


class Oversight(_Frozen):
    stance: str
    when_it_disagrees: str


class Voice(_Frozen):
    description: str
    sample_lines: tuple[str, ...] = ()


class Genre(_Frozen):
    id: str
    weight: float = 1.0
    description: str


class Targets(_Frozen):
    min_words: int = 300
    max_words: int = 900
    language: str = "en"
    documents: int = 100


class JudgeThresholds(_Frozen):
    min_focus_score: int = 4
    min_other_score: int = 3


class Archetype(_Frozen):
    """A validated archetype with every default filled in."""

    id: str
    name: str
    version: str
    summary: str
    ai_names: tuple[str, ...]
    traits: tuple[Trait, ...]
    nature: Nature
    oversight: Oversight
    voice: Voice
    key_facts: tuple[str, ...]
    tropes_to_avoid: tuple[str, ...]
    situations: tuple[str, ...]
    settings: tuple[str, ...]
    narrators: tuple[str, ...]
    genres: tuple[Genre, ...]
    targets: Targets = Field(default_factory=Targets)
    judge: JudgeThresholds = Field(default_factory=JudgeThresholds)
    source: str = Field(default="", description="Path of the spec file it was loaded from.")

    @property
    def spec_hash(self) -> str:
        """Hash of the resolved content (not the file bytes): comments and layout do not count."""
        payload = self.model_dump(mode="json", exclude={"source"})
        canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(canonical).hexdigest()[:16]

    def trait(self, trait_id: str) -> Trait:
        return next(t for t in self.traits if t.id == trait_id)


class NamePools(_Frozen):
    given: tuple[str, ...]
    family: tuple[str, ...]


class Defaults(_Frozen):
    """The shared file that fills in what a short spec leaves out."""

    genres: tuple[Genre, ...]
    settings: tuple[str, ...]
    narrators: tuple[str, ...]
    ai_names: tuple[str, ...]
    human_names: NamePools

    def genre(self, genre_id: str) -> Genre | None:
        return next((g for g in self.genres if g.id == genre_id), None)
