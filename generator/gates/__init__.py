"""Every document passes these gates before it is kept, cheapest first:
heuristics -> near-duplicates and diversity caps -> judge -> schema (of the final record).

`Gatekeeper.review` returns the record with its measurements and verdict attached, plus the
failures; the run decides what to do with them (keep, revise once, or reject).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from generator.backends.base import Completion
from generator.errors import UserError
from generator.gates import heuristics, judge, schema
from generator.gates.base import GateFailure, GateOutcome
from generator.gates.dedup import DedupIndex
from generator.prompts import Request, reask_request
from generator.records import Checks, Record
from generator.spec import Archetype

JudgeMode = Literal["enforce", "advisory", "off"]
JudgeCall = Callable[[Request], Awaitable[Completion]]
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

    def describe(self) -> dict[str, Any]:
        """For the manifest and the dataset card: which gates were enforced, by which model."""
        enforced = [c for c in heuristics.CHECKS if c not in self.relax]
        return {
            "heuristics": {"enforced": enforced, "relaxed": sorted(self.relax)},
            "dedup": "enforced: exact and near-duplicates (MinHash/LSH), opening and name caps",
            "judge": {"mode": self.judge, "model": self.judge_model, "note": self.judge_note},
            "schema": "enforced: schemas/record.schema.json",
        }


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
    def __init__(self, policy: GatePolicy, dedup: DedupIndex, judge_call: JudgeCall | None):
        if policy.judge != "off" and judge_call is None:
            raise ValueError("a judge call is needed unless the judge is off")
        self.policy = policy
        self.dedup = dedup
        self.judge_call = judge_call

    async def review(
        self, record: Record, archetype: Archetype, names: Sequence[str] = ()
    ) -> Review:
        text_outcome = heuristics.check(record.text, archetype, relax=self.policy.relax)
        dedup_outcome = self.dedup.check(
            record.id, record.text, allowed_names=self.allowed_names(record, names)
        )
        m = {**text_outcome.measurements, **dedup_outcome.measurements}
        record = record.model_copy(
            update={
                "checks": Checks(
                    language=m["language"],
                    language_confidence=m["language_confidence"],
                    repeated_ngram_ratio=m["repeated_ngram_ratio"],
                    repeated_sentence_ratio=m["repeated_sentence_ratio"],
                    max_similarity=m["max_similarity"],
                    near_duplicate_of=m["near_duplicate_of"],
                )
            }
        )
        failures = [*text_outcome.failures, *dedup_outcome.failures]
        advice = ""
        if not failures and self.policy.judge != "off":
            verdict, outcome = await self._judge(record, archetype)
            if verdict is None:
                failures.extend(outcome.failures)
            else:
                record = record.model_copy(update={"judge": verdict, "judge_model": verdict.model})
                advice = str(outcome.measurements.get("revision_advice", ""))
                if self.policy.judge == "enforce":
                    failures.extend(outcome.failures)
        failures.extend(schema.check(record, archetype))
        return Review(record, failures, advice)

    async def _judge(self, record: Record, archetype: Archetype) -> tuple[Any, GateOutcome]:
        assert self.judge_call is not None
        request = judge.judge_request(record, archetype)
        for _ in range(self.policy.max_judge_reasks + 1):
            completion = await self.judge_call(request)
            try:
                answer = judge.parse_answer(completion.text, archetype)
            except judge.JudgeParseError as exc:
                request = reask_request(request, completion.text, str(exc))
                continue
            return judge.assess(answer, record, archetype, completion.model)
        failure = GateFailure(
            judge.NAME,
            "judge-unparseable",
            f"no valid judgement after {self.policy.max_judge_reasks} re-asks",
        )
        # An unparseable judge only blocks the document when the judge is enforced.
        return None, GateOutcome((failure,) if self.policy.judge == "enforce" else ())

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


__all__ = ["GateFailure", "GatePolicy", "Gatekeeper", "Review", "load_reference_texts"]
