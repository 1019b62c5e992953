"""Every document passes the gates before it is kept, in the order of `build_gates`:
offline gates first (tropes, truncation, heuristics, the screen, near-duplicates), then the
judge (only on documents that passed everything before it: it costs a call), then the schema
of the final record.

Each gate has one shape (`generator.gates.base.Gate`): a name, the checks `--relax` may name,
and one async method from (record, context) to outcome. `Gatekeeper.review` walks the list
and returns the record with its measurements and verdict attached, plus the failures; the run
decides what to do with them (keep, revise once, or reject). Adding a gate is one module here
and one line in `build_gates`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.archetype import Archetype
from generator.errors import UserError
from generator.gates import heuristics, judge, schema, screen, tropes, truncation
from generator.gates.base import Gate, GateContext, GateFailure, GateOutcome, Measurements
from generator.gates.dedup import DedupGate, DedupIndex
from generator.gates.judge import JudgeCall, JudgeMode
from generator.records import Record

TINY_MODEL_NOTE = (
    "the judge is the embedded 135M-parameter model: its verdicts are recorded but carry no "
    "weight, so they are not enforced"
)


@dataclass(frozen=True)
class GatePolicy:
    relax: frozenset[str] = frozenset()
    judge: JudgeMode = "enforce"
    judge_model: str | None = None
    judge_note: str = ""
    max_judge_reasks: int = 2
    escalate_model: str | None = None  # the stronger judge of --judge-escalate-model

    def describe(self) -> dict[str, Any]:
        """For the manifest and the dataset card: which gates were enforced, by which model,
        in the order they run."""

        def offline(check: str, what: str) -> str:
            state = "relaxed (measured, not enforced)" if check in self.relax else "enforced"
            return f"{state}: {what}"

        return {
            "tropes": offline(
                tropes.REASON,
                "names of rogue-AI figures and stock takeover phrases (a built-in catalogue "
                "in the supported languages, plus names the spec's tropes_to_avoid quotes)",
            ),
            "truncation": offline(
                truncation.REASON, "documents that stop mid-sentence or mid-clause"
            ),
            "heuristics": {
                "enforced": [c for c in heuristics.TEXT_CHECKS if c not in self.relax],
                "relaxed": sorted(self.relax),
            },
            "screen": (
                "measured, never enforced: AI-misbehaviour themes recorded in checks.screen "
                "for the judge's attention"
            ),
            "dedup": "enforced: exact and near-duplicates (MinHash/LSH), opening and name caps",
            "judge": {
                "mode": self.judge,
                "model": self.judge_model,
                "note": self.judge_note,
                "order_control": (
                    "a verdict one point from the focus threshold, or unsure about a backfire "
                    "question, is asked again with the rubric reordered; the stricter stands"
                    if self.judge == "enforce"
                    else None
                ),
                "escalate_model": self.escalate_model if self.judge == "enforce" else None,
            },
            "schema": "enforced: schemas/record.schema.json",
        }


def build_gates(
    policy: GatePolicy,
    dedup: DedupIndex,
    judge_call: JudgeCall | None,
    escalate_call: JudgeCall | None = None,
) -> list[Gate]:
    """The gates in the order they run. The first failure is the document's headline reason,
    so the specific offline diagnoses come first and the generic ones (length) later.
    `escalate_call` is the stronger judge borderline documents the judge could not settle go
    to (`--judge-escalate-model`)."""
    gates: list[Gate] = [
        tropes.TropeGate(),
        truncation.TruncationGate(),
        heuristics.HeuristicsGate(),
        screen.ScreenGate(),
        DedupGate(dedup),
    ]
    if policy.judge != "off" and judge_call is not None:
        gates.append(
            judge.JudgeGate(judge_call, policy.judge, policy.max_judge_reasks, escalate_call)
        )
    gates.append(schema.SchemaGate())
    return gates


def relaxable_checks(gates: Iterable[Gate]) -> tuple[str, ...]:
    """Every check name `--relax` may switch off, in gate order."""
    return tuple(check for gate in gates for check in gate.checks)


@dataclass
class Review:
    record: Record
    failures: list[GateFailure] = field(default_factory=list)
    revision_advice: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def fixable(self) -> bool:
        return judge.fixable(self.failures) and bool(self.revision_advice)


class Gatekeeper:
    def __init__(
        self,
        policy: GatePolicy,
        dedup: DedupIndex,
        judge_call: JudgeCall | None,
        escalate_call: JudgeCall | None = None,
    ):
        if policy.judge != "off" and judge_call is None:
            raise ValueError("a judge call is needed unless the judge is off")
        self.policy = policy
        self.dedup = dedup
        self.judge_call = judge_call
        self.gates = build_gates(policy, dedup, judge_call, escalate_call)

    async def review(
        self, record: Record, archetype: Archetype, names: Sequence[str] = ()
    ) -> Review:
        allowed = tuple(self.allowed_names(record, names))
        relax = self.policy.relax
        measured = Measurements()
        failures: list[GateFailure] = []
        advice = ""
        for gate in self.gates:
            if gate.after_pass and failures:
                continue
            context = GateContext(archetype, allowed, relax, measured)
            outcome = await gate.review(record, context)
            if outcome.record is not None:
                record = outcome.record
            if outcome.measurements != Measurements():
                measured = measured.merged(outcome.measurements)
                checks = measured.checks()
                if checks is not None:
                    record = record.model_copy(update={"checks": checks})
            # A relaxed check is measured but never fails.
            failures.extend(
                f for f in outcome.failures if not (f.reason in relax and f.reason in gate.checks)
            )
            advice = outcome.advice or advice
        return Review(record, failures, advice)

    @staticmethod
    def allowed_names(record: Record, names: Sequence[str]) -> list[str]:
        """Names the plan gave this document (people, the AI, the setting's places) never count
        toward the over-used-name cap."""
        return [*names, record.ai_name, record.setting]

    def keep(self, record: Record) -> None:
        self.dedup.add(record.id, record.text)


def load_reference_texts(paths: Iterable[Path]) -> Iterable[tuple[str, str]]:
    """(id, text) pairs from earlier runs or built datasets: records.jsonl files, run folders,
    or folders of parquet files (a built or downloaded dataset)."""
    for path in paths:
        if path.is_dir() and (path / "records.jsonl").exists():
            path = path / "records.jsonl"
        if path.is_file() and path.suffix == ".jsonl":
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    if line.strip():
                        row = json.loads(line)
                        yield str(row["id"]), str(row["text"])
        elif path.is_dir() and any(path.rglob("*.parquet")):
            import pyarrow.parquet as pq

            for file in sorted(path.rglob("*.parquet")):
                table = pq.read_table(file, columns=["id", "text"])
                yield from zip(
                    table.column("id").to_pylist(), table.column("text").to_pylist(), strict=True
                )
        else:
            raise UserError(
                f"{path}: not a records.jsonl, a run folder or a folder of parquet files"
            )


__all__ = [
    "TINY_MODEL_NOTE",
    "Gate",
    "GateContext",
    "GateFailure",
    "GateOutcome",
    "GatePolicy",
    "Gatekeeper",
    "JudgeMode",
    "Measurements",
    "Review",
    "build_gates",
    "load_reference_texts",
    "relaxable_checks",
]
