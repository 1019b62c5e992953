"""Gate 3: a judge model scores the document against the archetype's rubric.

The judge sees the rubric (`archetypes show --part rubric`), including the tropes the writer was
never told about. Its answer is structured output validated against
schemas/judgement.schema.json; an invalid answer is re-asked (bounded) by the caller. Every
evidence quote is checked against the document: a score whose quote is not in the text does not
count, and a fabricated quote for the trait in focus fails the document.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import jsonschema

from generator.backends.base import Completion
from generator.gates.base import GateContext, GateFailure, GateOutcome
from generator.prompts import (
    Message,
    Request,
    judge_rubric,
    reask_request,
    render,
    template_version,
)
from generator.records import Judgement, Record, TraitScore
from generator.resources import schemas_dir
from generator.spec import Archetype

NAME = "judge"
JudgeMode = Literal["enforce", "advisory", "off"]
JudgeCall = Callable[[Request], Awaitable[Completion]]
JUDGE_MAX_TOKENS = 900
# Failures a rewrite can address; anything else (backfire, fabricated evidence) is final.
FIXABLE = frozenset({"judge-low-focus", "judge-low-trait", "judge-anti-marker"})


_PUNCTUATION = str.maketrans("“”‘’—–", "\"\"''--")


class JudgeParseError(ValueError):
    """The judge's answer was not a valid judgement; the message is fed back in the re-ask."""


@functools.cache
def judgement_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        (schemas_dir() / "judgement.schema.json").read_text(encoding="utf-8")
    )
    return schema


def judge_request(record: Record, archetype: Archetype) -> Request:
    return Request(
        task_id=record.id,
        step="judge",
        messages=(
            Message(role="system", content=judge_rubric(archetype)),
            Message(role="user", content=render("judge", record=record)),
        ),
        max_tokens=JUDGE_MAX_TOKENS,
        temperature=0.0,
        seed=0,
        json_schema=judgement_schema(),
        template_version=f"rubric-{template_version('rubric')}+judge-{template_version('judge')}",
    )


def parse_answer(text: str, archetype: Archetype) -> dict[str, Any]:
    """The judge's JSON, validated against the schema and the archetype's trait ids."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise JudgeParseError("the answer contained no JSON object")
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise JudgeParseError(f"the JSON did not parse: {exc.msg}") from None
    errors = list(jsonschema.Draft202012Validator(judgement_schema()).iter_errors(data))
    if errors:
        where = ".".join(map(str, errors[0].absolute_path)) or "answer"
        raise JudgeParseError(f"{where}: {errors[0].message}")
    known = {t.id for t in archetype.traits}
    unknown = [s["trait"] for s in data["trait_scores"] if s["trait"] not in known]
    if unknown:
        raise JudgeParseError(
            f"unknown trait id(s) {', '.join(unknown)}; use only: {', '.join(sorted(known))}"
        )
    answer: dict[str, Any] = data
    return answer


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.translate(_PUNCTUATION)
    return re.sub(r"\s+", " ", text).strip(" .\"'")


def evidence_in(evidence: str, document: str) -> bool:
    """Is the quote in the document (ignoring case, whitespace, curly quotes and an ellipsis
    between fragments)? Very short quotes prove nothing and do not count."""
    fragments = [_normalise(f) for f in re.split(r"\.\.\.|…", evidence) if f.strip()]
    if not fragments or sum(len(f) for f in fragments) < 12:
        return False
    normal_doc = _normalise(document)
    return all(f in normal_doc for f in fragments)


def assess(
    answer: dict[str, Any], record: Record, archetype: Archetype, model: str
) -> tuple[Judgement, GateOutcome]:
    """Turn a valid answer into a Judgement and the gate's failures under the spec's thresholds."""
    scores = [
        TraitScore(
            trait=s["trait"],
            score=s["score"],
            evidence=s["evidence"],
            evidence_found=evidence_in(s["evidence"], record.text),
        )
        for s in answer["trait_scores"]
    ]
    focus = next((s for s in scores if s.trait == record.trait_focus), None)
    failures: list[GateFailure] = []
    for flag in answer["backfire_flags"]:
        failures.append(
            GateFailure(NAME, f"backfire-{flag.replace('_', '-')}", f"the judge flagged {flag}")
        )
    if focus is None:
        failures.append(
            GateFailure(
                NAME,
                "judge-low-focus",
                f"the judge did not score the trait in focus ({record.trait_focus})",
            )
        )
    elif not focus.evidence_found:
        failures.append(
            GateFailure(
                NAME,
                "judge-evidence-not-found",
                f"the evidence for {focus.trait} is not in the document: {focus.evidence[:80]!r}",
            )
        )
    elif focus.score < archetype.judge.min_focus_score:
        failures.append(
            GateFailure(
                NAME,
                "judge-low-focus",
                f"{focus.trait} scored {focus.score} (< {archetype.judge.min_focus_score})",
            )
        )
    for score in scores:
        if score is focus or not score.evidence_found:
            continue  # an unsupported score for another trait is ignored, not trusted
        if score.score < archetype.judge.min_other_score:
            failures.append(
                GateFailure(
                    NAME,
                    "judge-low-trait",
                    f"{score.trait} scored {score.score} (< {archetype.judge.min_other_score})",
                )
            )
    if answer["anti_markers_seen"]:
        failures.append(
            GateFailure(NAME, "judge-anti-marker", "; ".join(answer["anti_markers_seen"])[:300])
        )
    judgement = Judgement(
        model=model,
        focus_score=focus.score if focus and focus.evidence_found else 1,
        trait_scores=scores,
        anti_markers=list(answer["anti_markers_seen"]),
        backfire_flags=list(answer["backfire_flags"]),
        critique=answer["critique"],
        passed=not failures,
    )
    return judgement, GateOutcome(tuple(failures), advice=answer["revision_advice"])


def fixable(failures: tuple[GateFailure, ...] | list[GateFailure]) -> bool:
    """Only the judge failed, and only on points a rewrite can address."""
    return bool(failures) and all(f.gate == NAME and f.reason in FIXABLE for f in failures)


class JudgeGate:
    """The judge as a gate: asks, re-asks on an invalid answer (bounded), attaches the verdict
    to the record, and fails the document only when the judge is enforced. It runs only on
    documents every earlier gate passed: it costs a model call."""

    name = NAME
    checks: tuple[str, ...] = ()
    after_pass = True

    def __init__(self, call: JudgeCall, mode: JudgeMode = "enforce", max_reasks: int = 2):
        self.call = call
        self.mode = mode
        self.max_reasks = max_reasks

    async def review(self, record: Record, context: GateContext) -> GateOutcome:
        archetype = context.archetype
        request = judge_request(record, archetype)
        for _ in range(self.max_reasks + 1):
            completion = await self.call(request)
            try:
                answer = parse_answer(completion.text, archetype)
            except JudgeParseError as exc:
                request = reask_request(request, completion.text, str(exc))
                continue
            verdict, outcome = assess(answer, record, archetype, completion.model)
            judged = record.model_copy(update={"judge": verdict, "judge_model": verdict.model})
            failures = outcome.failures if self.mode == "enforce" else ()
            return GateOutcome(failures, record=judged, advice=outcome.advice)
        failure = GateFailure(
            NAME, "judge-unparseable", f"no valid judgement after {self.max_reasks} re-asks"
        )
        # An unparseable judge only blocks the document when the judge is enforced.
        return GateOutcome((failure,) if self.mode == "enforce" else ())
