"""What the card is built from: the run's manifest, the statistics and the written splits."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from generator.judging import JudgeCheck
from generator.stats import CorpusStats


@dataclass(frozen=True)
class SplitInfo:
    name: str
    rows: int
    shards: int
    parquet_bytes: int
    arrow_bytes: int
    tokens: int
    words: int


@dataclass
class CardContext:
    manifest: dict[str, Any] | None
    stats: CorpusStats
    rejects: Counter[str]
    splits: list[SplitInfo]
    fractions: dict[str, float]
    license: str
    tokenizer: str
    features: Any  # datasets.Features
    formats: tuple[str, ...]
    shard_rows: int
    notes: list[str] = field(default_factory=list)
    judging: JudgeCheck | None = None  # None: from the manifest and the statistics alone
