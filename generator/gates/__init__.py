"""Checks every document passes before it is kept. One module per gate; each returns failures."""

from __future__ import annotations

from generator.gates import schema
from generator.gates.base import GateFailure
from generator.records import Record
from generator.spec import Archetype

_GATES = (schema,)


def run_gates(record: Record, archetype: Archetype) -> list[GateFailure]:
    """All failures from all gates, in gate order (empty: accepted)."""
    failures: list[GateFailure] = []
    for gate in _GATES:
        failures.extend(gate.check(record, archetype))
    return failures


def enforced_gates() -> list[str]:
    """Names of the gates this build enforces during `generate`, for the manifest."""
    return [gate.NAME for gate in _GATES]


__all__ = ["GateFailure", "enforced_gates", "run_gates"]
