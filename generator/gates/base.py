"""The values gates return."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class GateFailure:
    gate: str  # module name: schema, heuristics, dedup, judge
    reason: str  # machine-readable code stored in rejects.jsonl, e.g. "placeholder"
    detail: str  # one human line: what was found, with a short quote


@dataclass(frozen=True)
class GateOutcome:
    """Failures (empty: passed) plus measurements to keep on the record either way."""

    failures: tuple[GateFailure, ...] = ()
    measurements: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures
