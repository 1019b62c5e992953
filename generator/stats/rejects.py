"""rejects.jsonl, read line by line into counts by reason, archetype and step."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.rundir import read_run
from generator.stats.corpus import NEAR_DUPLICATE_EDGES
from generator.stats.text import excerpt

_DUPLICATE_OF = re.compile(r"\b(?:near-duplicate|same text as|duplicate) of ([0-9a-f]{16})\b")
_SAME_TEXT = re.compile(r"\bsame text as ([0-9a-f]{16})\b")


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


def read_rejects(run_dir: Path) -> RejectStats:
    """Rejections of a run, through its read-only view (none if it has no rejects.jsonl). A
    line cut short by a kill is skipped; a line that cannot be read is counted as unreadable."""
    stats = RejectStats()
    for line in read_run(run_dir).reject_lines():
        if line is None:
            stats.unreadable += 1
            stats.by_reason["unreadable-line"] += 1
            continue
        stats.add(line.model_dump())
    return stats
