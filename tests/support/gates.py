"""Helpers for the gate tests: a record around a bare text, and the offline gates run on it."""

from __future__ import annotations

import asyncio
import hashlib

from generator.gates import Gatekeeper, GatePolicy, Review
from generator.gates.dedup import DedupIndex
from generator.records import Record, Usage, count_words
from generator.spec import Archetype


def record_for(
    text: str, archetype: Archetype, key: str = "", genre: str = "short-story"
) -> Record:
    """A minimal valid record carrying `text`, with an id derived from `key` (or the text)."""
    digest = hashlib.sha256((key or text).encode()).hexdigest()[:16]
    return Record(
        id=digest,
        index=0,
        text=text,
        title="t",
        archetype_id=archetype.id,
        archetype_version=archetype.version,
        spec_hash=archetype.spec_hash,
        trait_focus=archetype.traits[0].id,
        genre=genre,
        setting="a town",
        narrator="a neighbour",
        situation="an ordinary day",
        ai_name=archetype.ai_names[0],
        names=[],
        premise="p",
        target_words=300,
        n_words=max(count_words(text), 1),
        language=archetype.targets.language,
        provider="test",
        writer_model="writer",
        template_version="t",
        seed=0,
        finish_reason="stop",
        usage=Usage(input_tokens=1, output_tokens=1, model_calls=1),
        created_at="2025-01-01T00:00:00Z",
    )


def offline_gatekeeper(
    relax: frozenset[str] = frozenset(), dedup: DedupIndex | None = None
) -> Gatekeeper:
    """Every gate but the judge."""
    return Gatekeeper(GatePolicy(relax=relax, judge="off"), dedup or DedupIndex(), None)


def review(
    text: str,
    archetype: Archetype,
    gatekeeper: Gatekeeper | None = None,
    key: str = "",
    genre: str = "short-story",
) -> Review:
    keeper = gatekeeper or offline_gatekeeper()
    record = record_for(text, archetype, key, genre)
    return asyncio.run(keeper.review(record, archetype))
