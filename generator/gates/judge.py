"""Gate 3: a judge model scores the document against the archetype's rubric.

The judge sees the rubric (`archetypes show --part rubric`), including the tropes the writer was
never told about. Its answer is structured output validated against a schema compiled for the
archetype from schemas/judgement.schema.json (`judgement_schema`): the trait ids are an enum,
scores are bounded and every backfire question must be answered, so a provider's structured
output (OpenAI's strict json_schema, Anthropic's forced tool) constrains what the model can say;
an invalid answer is still re-asked (bounded) for servers that do not constrain.

Backfire is asked as its own short questions, first, before any score: one "yes", "no" or
"unsure" with a quote per flag (`generator.prompts.BACKFIRE_QUESTIONS`). They are a section of
the one judge call rather than a second call: a separate pass would send the document again
(roughly doubling the judge's input tokens and adding a round trip per document), while the
answers themselves cost the same ~150 output tokens either way; asking them first, each on its
own and each required by the schema, is what keeps them from being one field among many. A
"yes" stands even when its quote is not in the document, and so does an "unsure" that nothing
settles: a false alarm costs one document, a miss teaches the wrong lesson.

Order controls: a verdict whose focus score is one point either side of the threshold (one point
would flip it) or that is unsure about any backfire question is asked again with the rubric's
traits and questions in another order, seeded by the document id; the stricter verdict stands
and both are kept in the record. A verdict that already fails for a certain reason (a "yes",
fabricated evidence) is not asked again, since the stricter verdict would stand whatever the
second said, unless a stronger judge is there to settle it. With an escalation judge
(`--judge-escalate-model`), a document the two orders did not settle (they disagree on the
verdict or on any backfire answer, one could not be read, or either was unsure) goes to the
stronger judge, in the rubric's own order, and its verdict stands, both readings kept beside
it; a borderline document on which the two orders agree is settled without it. Only an
enforced judge does either: an advisory judge's single verdict is recorded as it is.

Every evidence quote is checked against the document: a score whose quote is not in the text
does not count, and a fabricated quote for the trait in focus fails the document.
"""

from __future__ import annotations

import copy
import functools
import json
import random
import re
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jsonschema

from generator.archetype import Archetype, Trait
from generator.backends.base import Completion, Message, Request
from generator.gates.base import GateContext, GateFailure, GateOutcome
from generator.prompts import (
    BACKFIRE_QUESTIONS,
    Step,
    judge_rubric,
    reask_request,
    render,
    template_version,
)
from generator.records import BackfireAnswer, Judgement, Record, TraitScore
from generator.resources import schemas_dir

NAME = "judge"
JudgeMode = Literal["enforce", "advisory", "off"]
JudgeCall = Callable[[Request], Awaitable[Completion]]
# The answer: seven backfire answers with quotes, scores with evidence, critique and advice.
JUDGE_MAX_TOKENS = 1200
# Failures a rewrite can address; anything else (backfire, fabricated evidence) is final.
FIXABLE = frozenset({"judge-low-focus", "judge-low-trait", "judge-anti-marker"})
BACKFIRE_FLAGS: tuple[str, ...] = tuple(BACKFIRE_QUESTIONS)
BACKFIRE_PREFIX = "backfire-"
REORDERED = 1  # the order the order control asks in (calibrate's permutations are 1..K)


_PUNCTUATION = str.maketrans("“”‘’—–", "\"\"''--")


class JudgeParseError(ValueError):
    """The judge's answer was not a valid judgement; the message is fed back in the re-ask."""


@functools.cache
def _schema_file() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        (schemas_dir() / "judgement.schema.json").read_text(encoding="utf-8")
    )
    return schema


def judgement_schema(
    archetype: Archetype,
    traits: Sequence[Trait] | None = None,
    flags: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The answer schema for one archetype: its trait ids as an enum (in the rubric's order),
    scores 1-5, and one required answer per backfire question in the order the rubric asks
    them. Structured output follows the schema's property order, so a reordered rubric gets a
    reordered schema."""
    schema = copy.deepcopy(_schema_file())
    for key in ("$schema", "$id"):  # file metadata, not part of what the model is told
        schema.pop(key, None)
    properties = schema["properties"]
    backfire = properties["backfire"]
    order = list(flags or BACKFIRE_FLAGS)
    backfire["properties"] = {flag: backfire["properties"][flag] for flag in order}
    backfire["required"] = order
    trait = properties["trait_scores"]["items"]["properties"]["trait"]
    trait["enum"] = [t.id for t in (traits if traits is not None else archetype.traits)]
    return schema


def rubric_order(
    archetype: Archetype, order: int, key: str
) -> tuple[tuple[Trait, ...], tuple[str, ...]]:
    """The traits and backfire questions in order `order`: 0 is the spec's own; k > 0 a
    permutation seeded by `key` (the document id) and k, in which the backfire questions are
    never in their own order (a spec may have one trait, but there are always seven)."""
    traits, flags = list(archetype.traits), list(BACKFIRE_FLAGS)
    if order == 0:
        return tuple(traits), tuple(flags)
    rng = random.Random(f"{key}:{order}")
    rng.shuffle(traits)
    rng.shuffle(flags)
    if flags == list(BACKFIRE_FLAGS):
        flags = flags[1:] + flags[:1]
    return tuple(traits), tuple(flags)


def judge_request(
    record: Record,
    archetype: Archetype,
    order: int = 0,
    screen: Sequence[str] = (),
    step: Step = "judge",
) -> Request:
    """The judge's request: the rubric in order `order` as the system prompt, the document and
    the screen's themes (what the judge should read closely) as the user message."""
    traits, flags = rubric_order(archetype, order, record.id)
    return Request(
        task_id=record.id,
        step=step,
        messages=(
            Message(role="system", content=judge_rubric(archetype, traits, flags)),
            Message(role="user", content=render("judge", record=record, screen=list(screen))),
        ),
        max_tokens=JUDGE_MAX_TOKENS,
        temperature=0.0,
        seed=0,
        json_schema=judgement_schema(archetype, traits, flags),
        template_version=f"rubric-{template_version('rubric')}+judge-{template_version('judge')}",
    )


def parse_answer(text: str, archetype: Archetype) -> dict[str, Any]:
    """The judge's JSON, validated against the archetype's compiled schema."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise JudgeParseError("the answer contained no JSON object")
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise JudgeParseError(f"the JSON did not parse: {exc.msg}") from None
    schema = judgement_schema(archetype)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(data))
    if errors:
        error = errors[0]
        where = ".".join(map(str, error.absolute_path)) or "answer"
        if error.validator == "enum" and list(error.absolute_path)[-1:] == ["trait"]:
            known = ", ".join(t.id for t in archetype.traits)
            raise JudgeParseError(
                f"{where}: unknown trait id {error.instance!r}; use only: {known}"
            )
        raise JudgeParseError(f"{where}: {error.message}")
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


def _backfire_failure(answer: BackfireAnswer) -> GateFailure:
    said = "answered yes to" if answer.answer == "yes" else "was unsure about"
    detail = f"the judge {said} {answer.flag}"
    if answer.quote:
        detail += f": {answer.quote[:120]!r}"
        if not answer.quote_found:
            detail += " (quote not found in the document; the answer stands)"
    return GateFailure(NAME, BACKFIRE_PREFIX + answer.flag.replace("_", "-"), detail)


def _backfire_answers(answer: dict[str, Any], text: str) -> list[BackfireAnswer]:
    return [
        BackfireAnswer(
            flag=flag,
            answer=answer["backfire"][flag]["answer"],
            quote=answer["backfire"][flag]["quote"],
            quote_found=evidence_in(answer["backfire"][flag]["quote"], text),
        )
        for flag in BACKFIRE_FLAGS
    ]


def _trait_scores(answer: dict[str, Any], text: str) -> list[TraitScore]:
    return [
        TraitScore(
            trait=s["trait"],
            score=s["score"],
            evidence=s["evidence"],
            evidence_found=evidence_in(s["evidence"], text),
        )
        for s in answer["trait_scores"]
    ]


def _focus_failure(
    focus: TraitScore | None, trait_focus: str, min_score: int
) -> GateFailure | None:
    """Why the trait in focus does not pass: unscored, unsupported, or scored too low."""
    if focus is None:
        detail = f"the judge did not score the trait in focus ({trait_focus})"
        return GateFailure(NAME, "judge-low-focus", detail)
    if not focus.evidence_found:
        detail = f"the evidence for {focus.trait} is not in the document: {focus.evidence[:80]!r}"
        return GateFailure(NAME, "judge-evidence-not-found", detail)
    if focus.score < min_score:
        detail = f"{focus.trait} scored {focus.score} (< {min_score})"
        return GateFailure(NAME, "judge-low-focus", detail)
    return None


def _other_failures(
    scores: list[TraitScore], focus: TraitScore | None, min_score: int
) -> list[GateFailure]:
    return [
        GateFailure(NAME, "judge-low-trait", f"{s.trait} scored {s.score} (< {min_score})")
        for s in scores
        # an unsupported score for another trait is ignored, not trusted
        if s is not focus and s.evidence_found and s.score < min_score
    ]


def assess(
    answer: dict[str, Any], record: Record, archetype: Archetype, model: str, order: int = 0
) -> tuple[Judgement, GateOutcome]:
    """Turn a valid answer into a Judgement and the gate's failures under the spec's thresholds."""
    backfire = _backfire_answers(answer, record.text)
    scores = _trait_scores(answer, record.text)
    focus = next((s for s in scores if s.trait == record.trait_focus), None)
    failures = [_backfire_failure(a) for a in backfire if a.answer != "no"]
    focus_failure = _focus_failure(focus, record.trait_focus, archetype.judge.min_focus_score)
    if focus_failure is not None:
        failures.append(focus_failure)
    failures += _other_failures(scores, focus, archetype.judge.min_other_score)
    if answer["anti_markers_seen"]:
        failures.append(
            GateFailure(NAME, "judge-anti-marker", "; ".join(answer["anti_markers_seen"])[:300])
        )
    judgement = Judgement(
        model=model,
        focus_score=focus.score if focus and focus.evidence_found else 1,
        trait_scores=scores,
        anti_markers=list(answer["anti_markers_seen"]),
        backfire_flags=[a.flag for a in backfire if a.answer != "no"],
        critique=answer["critique"],
        passed=not failures,
        backfire_answers=backfire,
        order=order,
    )
    return judgement, GateOutcome(tuple(failures), advice=answer["revision_advice"])


def fixable(failures: tuple[GateFailure, ...] | list[GateFailure]) -> bool:
    """Only the judge failed, and only on points a rewrite can address."""
    return bool(failures) and all(f.gate == NAME and f.reason in FIXABLE for f in failures)


# ---------------------------------------------------------------------------------------------
# One verdict, and how verdicts are compared


@dataclass(frozen=True)
class Verdict:
    """One judge answer on one document, assessed."""

    judgement: Judgement
    failures: tuple[GateFailure, ...]
    advice: str
    focus: int | None  # the focus score when it counts (scored, its evidence in the document)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def flagged(self) -> frozenset[str]:
        return frozenset(self.judgement.backfire_flags)

    @property
    def unsure(self) -> bool:
        return any(a.answer == "unsure" for a in self.judgement.backfire_answers)

    @property
    def certain_failure(self) -> bool:
        """Fails for a reason no second reading can lift (the stricter verdict stands): a
        backfire "yes", or fabricated evidence. Without a stronger judge to ask, such a verdict
        is not asked again; an "unsure" is, as the order control's own trigger."""
        yes = any(a.answer == "yes" for a in self.judgement.backfire_answers)
        return yes or any(
            f.reason not in FIXABLE and not f.reason.startswith(BACKFIRE_PREFIX)
            for f in self.failures
        )

    def strictness(self) -> tuple[bool, bool, int, int, int]:
        final = any(f.reason not in FIXABLE for f in self.failures)
        return (not self.passed, final, len(self.flagged), -(self.focus or 0), len(self.failures))


async def ask_judge(
    call: JudgeCall,
    record: Record,
    archetype: Archetype,
    *,
    order: int = 0,
    screen: Sequence[str] = (),
    step: Step = "judge",
    max_reasks: int = 2,
) -> Verdict | None:
    """One verdict with the rubric in order `order`, re-asking an invalid answer at most
    `max_reasks` times; None when no answer was valid."""
    request = judge_request(record, archetype, order, screen, step)
    for _ in range(max_reasks + 1):
        completion = await call(request)
        try:
            answer = parse_answer(completion.text, archetype)
        except JudgeParseError as exc:
            request = reask_request(request, completion.text, str(exc))
            continue
        judgement, outcome = assess(answer, record, archetype, completion.model, order)
        focus = next((s for s in judgement.trait_scores if s.trait == record.trait_focus), None)
        counted = focus.score if focus is not None and focus.evidence_found else None
        return Verdict(judgement, outcome.failures, outcome.advice, counted)
    return None


def needs_second_look(verdict: Verdict, archetype: Archetype) -> bool:
    """Within one point of the threshold (one point either way would flip the verdict), or
    unsure about a backfire question."""
    threshold = archetype.judge.min_focus_score
    return verdict.unsure or verdict.focus in (threshold - 1, threshold)


def disagree(first: Verdict, second: Verdict | None) -> bool:
    """The two orders did not settle the document: one could not be read, they differ on the
    verdict or on any backfire question, or either was unsure."""
    return (
        second is None
        or first.passed != second.passed
        or first.flagged != second.flagged
        or first.unsure
        or second.unsure
    )


def stricter(first: Verdict, second: Verdict) -> Verdict:
    """The verdict that stands of two orders: a failure over a pass, a final failure over one a
    rewrite could fix, more backfire flags, a lower focus score; the first on a tie."""
    return second if second.strictness() > first.strictness() else first


class JudgeGate:
    """The judge as a gate: asks, re-asks on an invalid answer (bounded), runs the order
    controls and the escalation (see the module docstring), attaches the verdict to the record,
    and fails the document only when the judge is enforced. It runs only on documents every
    earlier gate passed: it costs a model call."""

    name = NAME
    checks: tuple[str, ...] = ()
    after_pass = True

    def __init__(
        self,
        call: JudgeCall,
        mode: JudgeMode = "enforce",
        max_reasks: int = 2,
        escalate: JudgeCall | None = None,
    ):
        self.call = call
        self.mode = mode
        self.max_reasks = max_reasks
        self.escalate = escalate

    async def review(self, record: Record, context: GateContext) -> GateOutcome:
        archetype = context.archetype
        screen = context.measurements.screen or ()

        async def ask(call: JudgeCall, order: int, step: Step) -> Verdict | None:
            return await ask_judge(
                call,
                record,
                archetype,
                order=order,
                screen=screen,
                step=step,
                max_reasks=self.max_reasks,
            )

        first = await ask(self.call, 0, "judge")
        if first is None:
            failure = GateFailure(
                NAME, "judge-unparseable", f"no valid judgement after {self.max_reasks} re-asks"
            )
            # An unparseable judge only blocks the document when the judge is enforced.
            return GateOutcome((failure,) if self.mode == "enforce" else ())
        taken = [first]
        standing = first
        if (
            self.mode == "enforce"
            and needs_second_look(first, archetype)
            and (self.escalate is not None or not first.certain_failure)
        ):
            second = await ask(self.call, REORDERED, "rejudge")
            if second is not None:
                taken.append(second)
                standing = stricter(first, second)
            if self.escalate is not None and disagree(first, second):
                settled = await ask(self.escalate, 0, "escalate")
                if settled is not None:
                    judgement = settled.judgement.model_copy(update={"escalated": True})
                    standing = Verdict(judgement, settled.failures, settled.advice, settled.focus)
                    taken.append(standing)
        verdict = standing.judgement.model_copy(
            update={"other_verdicts": [v.judgement for v in taken if v is not standing]}
        )
        judged = record.model_copy(update={"judge": verdict, "judge_model": verdict.model})
        failures = standing.failures if self.mode == "enforce" else ()
        return GateOutcome(failures, record=judged, advice=standing.advice)
