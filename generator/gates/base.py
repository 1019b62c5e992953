"""The value every gate returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GateFailure:
    gate: str
    reason: str  # machine-readable code, stored in rejects.jsonl
    detail: str
