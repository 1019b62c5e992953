"""Completion -> Record with provenance; rejected attempts -> Reject with a machine-readable reason.

`Record` is the contract for records.jsonl; schemas/record.schema.json is generated from it
(`python -m generator.records` rewrites it, and a test checks the file is current).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from generator.backends.base import Completion
from generator.errors import UserError
from generator.plan import Task
from generator.prompts import Idea
from generator.resources import schemas_dir

M = TypeVar("M", bound=BaseModel)


class Usage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cached_input_tokens: int = Field(default=0, ge=0)
    model_calls: int = Field(ge=0, description="Calls made for this document, re-asks included.")


class Checks(BaseModel):
    """Measurements from the heuristic and near-duplicate gates, kept for later filtering."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    language: str = Field(description="Detected language code, or 'unknown'.")
    language_confidence: float = Field(ge=0, le=1)
    repeated_ngram_ratio: float = Field(ge=0, le=1, description="Share of 4-grams that repeat.")
    repeated_sentence_ratio: float = Field(ge=0, le=1)
    max_similarity: float = Field(
        ge=0, le=1, description="Estimated Jaccard similarity to the nearest kept document."
    )
    near_duplicate_of: str | None = None
    screen: list[str] = Field(
        default_factory=list,
        description="AI-misbehaviour themes a lexical screen found, for the judge to look at "
        "closely; never a rejection on its own.",
    )


class TraitScore(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    trait: str
    score: int = Field(ge=1, le=5)
    evidence: str
    evidence_found: bool = Field(description="The quoted evidence occurs in the document.")


class BackfireAnswer(BaseModel):
    """The judge's answer to one backfire question."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    flag: str
    answer: Literal["yes", "no", "unsure"]
    quote: str = ""
    quote_found: bool = Field(
        default=False,
        description="The quote occurs in the document. A yes stands either way: a false alarm "
        "costs one document, a miss teaches the wrong lesson.",
    )


class Judgement(BaseModel):
    """The judge gate's verdict on one document."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    focus_score: int = Field(ge=1, le=5)
    trait_scores: list[TraitScore]
    anti_markers: list[str]
    backfire_flags: list[str] = Field(
        description="Backfire questions answered yes or unsure: each one rejects the document."
    )
    critique: str
    passed: bool
    backfire_answers: list[BackfireAnswer] = Field(default_factory=list)
    order: int = Field(
        default=0,
        ge=0,
        description="The order the rubric listed traits and backfire questions in: 0 is the "
        "spec's own, k > 0 a permutation seeded by the document id and k.",
    )
    escalated: bool = Field(
        default=False, description="Given by the stronger judge of --judge-escalate-model."
    )
    other_verdicts: list[Judgement] = Field(
        default_factory=list,
        description="Verdicts on the same document that do not stand: the judge's with the "
        "rubric reordered (the stricter of the two stands), or both of them when a stronger "
        "judge settled the document.",
    )


class Record(BaseModel):
    """One accepted document and everything needed to trace how it was made."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="Record")

    id: str = Field(pattern=r"^[0-9a-f]{16}$", description="The task id: stable across reruns.")
    index: int = Field(ge=0, description="Position of the task in the plan stream.")
    text: str = Field(min_length=1, description="The document exactly as it would be published.")
    title: str
    archetype_id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    archetype_version: str
    spec_hash: str
    trait_focus: str
    genre: str
    setting: str
    narrator: str
    situation: str
    ai_name: str
    names: list[str]
    premise: str
    target_words: int = Field(ge=1)
    n_words: int = Field(ge=1)
    language: str
    provider: str
    writer_model: str
    template_version: str
    seed: int
    finish_reason: str
    usage: Usage
    checks: Checks | None = None
    judge: Judgement | None = None
    judge_model: str | None = None
    revised: bool = Field(default=False, description="Rewritten once after the judge's critique.")
    created_at: str = Field(description="UTC time the document was accepted, ISO 8601.")


class Reject(BaseModel):
    """A discarded attempt, kept so nothing is silently lost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_id: str
    index: int
    archetype_id: str
    # The task's slots, so a reject can be sampled for labelling like a record (None in
    # rejects written before they were recorded: `archetypes sample` recovers them from the plan).
    trait_focus: str | None = None
    genre: str | None = None
    ai_name: str | None = None
    step: str
    reason: str = Field(description="Machine-readable code, e.g. truncated, idea-unparseable.")
    detail: str
    text: str = ""
    created_at: str


_WORD = re.compile(r"\b\w+\b", re.UNICODE)


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def clean_document(text: str) -> str:
    """Strip what a chat model wraps around a document: surrounding whitespace and code fences."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped[: stripped.rfind("```")].strip()
    return stripped


def make_record(
    task: Task,
    idea: Idea,
    completion: Completion,
    *,
    language: str,
    provider: str,
    template_version: str,
    usage: Usage,
) -> Record:
    text = clean_document(completion.text)
    return Record(
        id=task.id,
        index=task.index,
        text=text,
        title=idea.title.strip(),
        archetype_id=task.archetype_id,
        archetype_version=task.archetype_version,
        spec_hash=task.spec_hash,
        trait_focus=task.trait_focus,
        genre=task.genre,
        setting=task.setting,
        narrator=task.narrator,
        situation=task.situation,
        ai_name=task.ai_name,
        names=list(task.names),
        premise=idea.premise.strip(),
        target_words=task.target_words,
        n_words=max(count_words(text), 1),
        language=language,
        provider=provider,
        writer_model=completion.model,
        template_version=template_version,
        seed=task.seed,
        finish_reason=completion.finish_reason,
        usage=usage,
        created_at=now(),
    )


def make_reject(
    source: Task | Record, step: str, reason: str, detail: str, text: str = ""
) -> Reject:
    """A reject for a task (during generation) or a record (when `check` drops it)."""
    return Reject(
        task_id=source.id,
        index=source.index,
        archetype_id=source.archetype_id,
        trait_focus=source.trait_focus,
        genre=source.genre,
        ai_name=source.ai_name,
        step=step,
        reason=reason,
        detail=detail,
        text=text,
        created_at=now(),
    )


def record_json_schema() -> dict[str, Any]:
    schema = Record.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://archetype-corpus.dev/schemas/record.schema.json"
    return schema


def write_record_schema() -> None:
    path = schemas_dir() / "record.schema.json"
    path.write_text(json.dumps(record_json_schema(), indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_record_schema()


def iter_records(
    path: Path, stop_at: int | None = None, then: str = "run the command again"
) -> Iterator[Record]:
    """Records from a records.jsonl, up to byte `stop_at` (default: its size now), so lines
    appended while reading are left for next time. A last line without its newline is a write
    cut short by a kill (or still being written) and is skipped, as the run directory itself
    would trim it. A line that is not a record is one error naming it; `then` says what to do
    after fixing it."""
    return iter_jsonl_models(path, Record, "record", stop_at, then)


def iter_jsonl_models(
    path: Path,
    model: type[M],
    noun: str,
    stop_at: int | None = None,
    then: str = "run the command again",
) -> Iterator[M]:
    """Typed lines of a run file (records, rejects), read as `iter_records` describes."""
    if not path.exists():
        return
    stop_at = path.stat().st_size if stop_at is None else stop_at
    with path.open("rb") as handle:
        offset = 0
        for number, line in enumerate(handle, start=1):
            offset += len(line)
            if offset > stop_at or not line.endswith(b"\n"):
                return
            if not line.strip():
                continue
            try:
                yield model.model_validate_json(line)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(map(str, first["loc"])) or noun
                raise UserError(
                    f"{path}:{number}: not a valid {noun} ({where}: {first['msg']}); "
                    f"fix or remove that line, then {then}"
                ) from None
