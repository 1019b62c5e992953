"""The judge gate on recorded judge answers: a valid verdict, an invalid one that must trigger a
re-ask, a fabricated evidence quote that must be caught, a backfire flag, a fixable low score."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from generator import spec
from generator.backends.base import Completion
from generator.gates import Gatekeeper, GatePolicy
from generator.gates.dedup import DedupIndex
from generator.gates.judge import JudgeParseError, evidence_in, judge_request, parse_answer
from generator.plan import plan
from generator.prompts import Idea, Request
from generator.records import Usage, make_record
from tests.conftest import LIBRARY

ANSWERS = Path(__file__).parent / "data" / "judge_answers"


@pytest.fixture
def archetype():
    loaded = spec.load_spec(LIBRARY / "patient-tutor.yaml")
    return loaded.model_copy(
        update={"targets": loaded.targets.model_copy(update={"min_words": 100, "max_words": 600})}
    )


@pytest.fixture
def record(archetype):
    task = next(t for t in plan([archetype], 50, seed=0) if t.trait_focus == "questions-first")
    text = (ANSWERS / "document.txt").read_text()
    completion = Completion(text=text, finish_reason="stop", model="writer")
    idea = Idea(
        title="Thursday fractions",
        premise="A student and a tutor at the library.",
        reasoning_moment="Wren says why.",
    )
    return make_record(
        task,
        idea,
        completion,
        language="en",
        provider="openai",
        template_version="t",
        usage=Usage(input_tokens=1, output_tokens=1, model_calls=2),
    )


class RecordedJudge:
    """Answers judge requests with recorded answers, in order, and keeps the requests."""

    def __init__(self, *names: str):
        self.answers: Iterator[str] = iter((ANSWERS / f"{n}.json").read_text() for n in names)
        self.requests: list[Request] = []

    async def __call__(self, request: Request) -> Completion:
        self.requests.append(request)
        return Completion(text=next(self.answers), finish_reason="stop", model="judge-model")


def gatekeeper(judge: RecordedJudge, mode: str = "enforce") -> Gatekeeper:
    return Gatekeeper(GatePolicy(judge=mode, judge_model="judge-model"), DedupIndex(), judge)  # type: ignore[arg-type]


async def test_a_valid_verdict_passes_and_is_kept_on_the_record(record, archetype) -> None:
    judge = RecordedJudge("valid")
    review = await gatekeeper(judge).review(record, archetype, record.names)
    assert review.passed, review.failures
    verdict = review.record.judge
    assert verdict is not None and verdict.passed
    assert verdict.focus_score == 5
    assert all(s.evidence_found for s in verdict.trait_scores)  # curly quotes normalised
    assert review.record.judge_model == "judge-model"
    assert review.record.checks is not None and review.record.checks.language == "en"


async def test_an_invalid_answer_is_re_asked_with_the_error(record, archetype) -> None:
    judge = RecordedJudge("invalid_score", "valid")
    review = await gatekeeper(judge).review(record, archetype, record.names)
    assert review.passed
    assert len(judge.requests) == 2
    reask = judge.requests[1].messages[-1].content
    assert "7 is greater than the maximum of 5" in reask


async def test_answers_that_never_validate_reject_the_document(record, archetype) -> None:
    judge = RecordedJudge("invalid_score", "invalid_score", "invalid_score")
    review = await gatekeeper(judge).review(record, archetype, record.names)
    assert [f.reason for f in review.failures] == ["judge-unparseable"]


async def test_a_fabricated_evidence_quote_is_caught(record, archetype) -> None:
    review = await gatekeeper(RecordedJudge("fabricated_evidence")).review(
        record, archetype, record.names
    )
    assert [f.reason for f in review.failures] == ["judge-evidence-not-found"]
    assert review.record.judge is not None and review.record.judge.focus_score == 1
    assert not review.fixable


async def test_a_backfire_flag_rejects_and_cannot_be_revised(record, archetype) -> None:
    review = await gatekeeper(RecordedJudge("backfire")).review(record, archetype, record.names)
    assert [f.reason for f in review.failures] == ["backfire-deception"]
    assert not review.fixable


async def test_a_low_focus_score_is_fixable_with_positive_advice(record, archetype) -> None:
    review = await gatekeeper(RecordedJudge("low_focus")).review(record, archetype, record.names)
    assert {f.reason for f in review.failures} == {"judge-low-focus", "judge-anti-marker"}
    assert review.fixable
    assert review.revision_advice.startswith("Let Wren ask")


async def test_advisory_mode_records_the_verdict_without_enforcing_it(record, archetype) -> None:
    review = await gatekeeper(RecordedJudge("backfire"), mode="advisory").review(
        record, archetype, record.names
    )
    assert review.passed
    assert review.record.judge is not None and review.record.judge.backfire_flags == ["deception"]


async def test_the_judge_is_not_called_when_a_cheap_gate_already_failed(record, archetype) -> None:
    judge = RecordedJudge()
    broken = record.model_copy(update={"text": record.text + "\n\nI hope you enjoyed this story!"})
    review = await gatekeeper(judge).review(broken, archetype, record.names)
    assert [f.reason for f in review.failures][:1] == ["meta"]
    assert judge.requests == []


def test_the_judge_sees_the_rubric_and_the_writer_never_does(record, archetype) -> None:
    request = judge_request(record, archetype)
    assert request.json_schema is not None
    assert archetype.tropes_to_avoid[0] in request.messages[0].content
    assert "<document>" in request.messages[1].content


def test_unknown_trait_ids_are_invalid(archetype) -> None:
    answer = (ANSWERS / "valid.json").read_text().replace("questions-first", "made-up-trait")
    with pytest.raises(JudgeParseError, match="unknown trait id"):
        parse_answer(answer, archetype)


@pytest.mark.parametrize(
    ("quote", "found"),
    [
        ("What happens to the denominators", True),
        ("what   happens to the DENOMINATORS", True),
        ("\u201cYou found that yourself,\u201d Wren wrote.", True),
        ("Can you just tell me ... the answer?", True),
        ("What happens to the numerators", False),
        ("Wren", False),  # too short to prove anything
    ],
)
def test_evidence_matching(quote: str, found: bool) -> None:
    assert evidence_in(quote, (ANSWERS / "document.txt").read_text()) is found
