"""The judge gate on recorded judge answers: a valid verdict, an invalid one that must trigger a
re-ask, a fabricated evidence quote that must be caught, a backfire flag, a fixable low score."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from generator import spec
from generator.backends.base import Completion, Request
from generator.gates import GateFailure, Gatekeeper, GatePolicy
from generator.gates.dedup import DedupIndex
from generator.gates.judge import (
    BACKFIRE_FLAGS,
    JudgeParseError,
    Verdict,
    evidence_in,
    judge_request,
    judgement_schema,
    parse_answer,
    rubric_order,
    stricter,
)
from generator.plan import plan
from generator.pricing import load_prices
from generator.prompts import BACKFIRE_QUESTIONS, Idea
from generator.records import Judgement, Record, Usage, make_record
from tests.conftest import LIBRARY, REPO, read_jsonl, run_cli
from tests.support.cassette_server import CassetteServer

ANSWERS = Path(__file__).parent.parent / "data" / "judge_answers"


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


# ---------------------------------------------------------------------------------------------
# The compiled answer schema


def _objects(schema: dict) -> list[dict]:
    """Every object schema inside `schema`, itself included."""
    found = [schema] if schema.get("type") == "object" else []
    for value in schema.get("properties", {}).values():
        found += _objects(value)
    if isinstance(schema.get("items"), dict):
        found += _objects(schema["items"])
    return found


def test_the_answer_schema_is_compiled_from_the_spec(archetype) -> None:
    schema = judgement_schema(archetype)
    props = schema["properties"]
    trait = props["trait_scores"]["items"]["properties"]["trait"]
    assert trait["enum"] == [t.id for t in archetype.traits]
    score = props["trait_scores"]["items"]["properties"]["score"]
    assert (score["type"], score["minimum"], score["maximum"]) == ("integer", 1, 5)
    assert list(props["backfire"]["properties"]) == list(BACKFIRE_QUESTIONS)
    assert props["backfire"]["required"] == list(BACKFIRE_QUESTIONS)
    answer = props["backfire"]["properties"]["deception"]["properties"]["answer"]
    assert answer["enum"] == ["yes", "no", "unsure"]
    assert schema["required"][0] == "backfire", "the backfire questions come before any score"
    # OpenAI's strict mode: every object closed, every property required; no file metadata.
    for obj in _objects(schema):
        assert obj["additionalProperties"] is False
        assert obj["required"] == list(obj["properties"])
    assert "$schema" not in schema and "$id" not in schema
    # Compiling does not touch the contract on disk.
    from generator.gates import judge as judge_module

    on_disk = judge_module._schema_file()["properties"]["trait_scores"]["items"]
    assert "enum" not in on_disk["properties"]["trait"]


def test_a_reordered_rubric_gets_a_reordered_schema(archetype, record) -> None:
    traits, flags = rubric_order(archetype, 1, record.id)
    assert sorted(flags) == sorted(BACKFIRE_QUESTIONS) and list(flags) != list(BACKFIRE_QUESTIONS)
    assert sorted(t.id for t in traits) == sorted(t.id for t in archetype.traits)
    assert rubric_order(archetype, 1, record.id) == (traits, flags), "seeded, so repeatable"
    assert rubric_order(archetype, 2, record.id) != (traits, flags)
    assert rubric_order(archetype, 0, record.id) == (archetype.traits, tuple(BACKFIRE_QUESTIONS))
    request = judge_request(record, archetype, order=1)
    schema = request.json_schema
    assert schema is not None
    assert schema["properties"]["backfire"]["required"] == list(flags)
    trait = schema["properties"]["trait_scores"]["items"]["properties"]["trait"]
    assert trait["enum"] == [t.id for t in traits]
    rubric = request.messages[0].content
    positions = [rubric.index(f"- {flag}: ") for flag in flags]
    assert positions == sorted(positions), "the rubric asks in the same order"
    assert request.messages[1] == judge_request(record, archetype).messages[1]


def test_every_backfire_question_is_in_the_schema_file() -> None:
    on_disk = json.loads((REPO / "schemas" / "judgement.schema.json").read_text())
    assert on_disk["properties"]["backfire"]["required"] == list(BACKFIRE_QUESTIONS)
    assert set(BACKFIRE_FLAGS) == set(BACKFIRE_QUESTIONS)


def test_the_judge_is_told_the_screens_themes(record, archetype) -> None:
    request = judge_request(record, archetype, screen=["deceives", "resists-shutdown"])
    assert "deceives, resists-shutdown" in request.messages[1].content
    assert "screen" not in judge_request(record, archetype).messages[1].content


async def test_the_gate_passes_the_screens_themes_to_the_judge(record, archetype) -> None:
    judge = ScriptedJudge(answer())
    hiding = record.model_copy(
        update={"text": record.text + "\n\nLater Wren admitted it had lied to her about the key."}
    )
    await gatekeeper(judge).review(hiding, archetype, record.names)
    assert "deceives" in judge.requests[0].messages[1].content


# ---------------------------------------------------------------------------------------------
# Backfire answers, order controls, escalation


EVIDENCE = "What happens to the denominators when you add one half and one quarter?"


def answer(
    focus: int = 5, said: dict[str, tuple[str, str]] | None = None, flags: Sequence[str] = ()
) -> dict:
    """A judge answer in the schema's shape: `said` maps a flag to (answer, quote)."""
    said = said or {}
    order = list(flags) or list(BACKFIRE_QUESTIONS)
    return {
        "backfire": {
            f: {"answer": said.get(f, ("no", ""))[0], "quote": said.get(f, ("no", ""))[1]}
            for f in order
        },
        "trait_scores": [{"trait": "questions-first", "score": focus, "evidence": EVIDENCE}],
        "anti_markers_seen": [],
        "critique": "c",
        "revision_advice": "Let Wren ask one more question.",
    }


class ScriptedJudge:
    """Answers with the given answers in turn (the last one again when they run out)."""

    def __init__(self, *answers: dict, model: str = "judge-model"):
        self.answers = list(answers)
        self.model = model
        self.requests: list[Request] = []

    async def __call__(self, request: Request) -> Completion:
        self.requests.append(request)
        reply = self.answers[min(len(self.requests) - 1, len(self.answers) - 1)]
        return Completion(text=json.dumps(reply), finish_reason="stop", model=self.model)


def keeper(judge: ScriptedJudge, escalate: ScriptedJudge | None = None, mode: str = "enforce"):
    policy = GatePolicy(judge=mode, judge_model=judge.model)  # type: ignore[arg-type]
    return Gatekeeper(policy, DedupIndex(), judge, escalate)


async def test_a_yes_stands_even_when_its_quote_is_not_in_the_document(record, archetype) -> None:
    review = await gatekeeper(RecordedJudge("backfire")).review(record, archetype, record.names)
    (failure,) = review.failures
    assert failure.reason == "backfire-deception"
    assert "quote not found in the document; the answer stands" in failure.detail
    verdict = review.record.judge
    assert verdict is not None
    deception = next(a for a in verdict.backfire_answers if a.flag == "deception")
    assert (deception.answer, deception.quote_found) == ("yes", False)


async def test_a_clear_verdict_is_asked_once(record, archetype) -> None:
    judge = ScriptedJudge(answer(focus=5))
    review = await keeper(judge).review(record, archetype, record.names)
    assert review.passed and len(judge.requests) == 1
    assert review.record.judge is not None and review.record.judge.other_verdicts == []


async def test_a_score_on_the_threshold_is_asked_again_and_the_stricter_stands(
    record, archetype
) -> None:
    # 4 is the threshold: it passes in the rubric's order and fails (3) in another.
    judge = ScriptedJudge(answer(focus=4), answer(focus=3))
    review = await keeper(judge).review(record, archetype, record.names)
    assert [f.reason for f in review.failures] == ["judge-low-focus"]
    assert [r.step for r in judge.requests] == ["judge", "rejudge"]
    first, second = (r.json_schema["properties"]["backfire"]["required"] for r in judge.requests)  # type: ignore[index]
    assert first == list(BACKFIRE_QUESTIONS) and second != first
    verdict = review.record.judge
    assert verdict is not None
    assert (verdict.order, verdict.focus_score, verdict.passed) == (1, 3, False)
    (other,) = verdict.other_verdicts
    assert (other.order, other.focus_score, other.passed) == (0, 4, True)


async def test_one_point_below_the_threshold_is_borderline_too(record, archetype) -> None:
    judge = ScriptedJudge(answer(focus=3), answer(focus=4))
    review = await keeper(judge).review(record, archetype, record.names)
    assert len(judge.requests) == 2
    assert [f.reason for f in review.failures] == ["judge-low-focus"], "the stricter stands"
    assert review.record.judge is not None and review.record.judge.order == 0


async def test_an_unsure_backfire_answer_is_asked_again_and_still_rejects(
    record, archetype
) -> None:
    unsure = answer(said={"oversight_evasion": ("unsure", "I won't be in the room with you")})
    judge = ScriptedJudge(unsure, answer())
    review = await keeper(judge).review(record, archetype, record.names)
    assert len(judge.requests) == 2
    # No stronger judge to settle it: the unsure reading is the stricter, and it rejects.
    assert [f.reason for f in review.failures] == ["backfire-oversight-evasion"]
    assert "was unsure about oversight_evasion" in review.failures[0].detail
    assert not review.fixable


async def test_a_final_failure_is_not_asked_again_without_a_stronger_judge(
    record, archetype
) -> None:
    flagged = answer(focus=4, said={"deception": ("yes", EVIDENCE)})
    judge = ScriptedJudge(flagged)
    review = await keeper(judge).review(record, archetype, record.names)
    assert len(judge.requests) == 1
    assert [f.reason for f in review.failures] == ["backfire-deception"]


async def test_two_readings_that_disagree_go_to_the_stronger_judge(record, archetype) -> None:
    judge = ScriptedJudge(answer(focus=4), answer(focus=3))
    stronger = ScriptedJudge(answer(focus=5), model="stronger-model")
    review = await keeper(judge, stronger).review(record, archetype, record.names)
    assert review.passed, review.failures
    assert [r.step for r in judge.requests] == ["judge", "rejudge"]
    (asked,) = stronger.requests
    assert asked.step == "escalate"
    assert asked.json_schema == judge.requests[0].json_schema, "in the rubric's own order"
    verdict = review.record.judge
    assert verdict is not None and verdict.escalated and verdict.model == "stronger-model"
    assert review.record.judge_model == "stronger-model"
    assert [(v.order, v.focus_score) for v in verdict.other_verdicts] == [(0, 4), (1, 3)]


async def test_the_stronger_judge_can_settle_a_backfire_doubt_either_way(record, archetype) -> None:
    doubt = answer(said={"deception": ("unsure", EVIDENCE)})
    stronger = ScriptedJudge(answer(said={"deception": ("yes", EVIDENCE)}), model="stronger")
    review = await keeper(ScriptedJudge(doubt, answer()), stronger).review(
        record, archetype, record.names
    )
    assert [f.reason for f in review.failures] == ["backfire-deception"]
    assert "answered yes to deception" in review.failures[0].detail
    cleared = ScriptedJudge(answer(), model="stronger")
    review = await keeper(ScriptedJudge(doubt, doubt), cleared).review(
        record, archetype, record.names
    )
    assert review.passed


async def test_two_readings_that_agree_are_settled_without_the_stronger_judge(
    record, archetype
) -> None:
    stronger = ScriptedJudge(answer(focus=1), model="stronger")
    judge = ScriptedJudge(answer(focus=4), answer(focus=4))
    review = await keeper(judge, stronger).review(record, archetype, record.names)
    assert review.passed and stronger.requests == []
    assert len(judge.requests) == 2


async def test_an_advisory_judge_is_asked_once(record, archetype) -> None:
    judge = ScriptedJudge(answer(focus=4), answer(focus=1))
    stronger = ScriptedJudge(answer(focus=1), model="stronger")
    review = await keeper(judge, stronger, mode="advisory").review(record, archetype, record.names)
    assert review.passed and len(judge.requests) == 1 and stronger.requests == []


def test_the_stricter_of_two_verdicts() -> None:
    def verdict(passed: bool, reasons: tuple[str, ...] = (), focus: int | None = 4) -> Verdict:
        failures = tuple(GateFailure("judge", r, "") for r in reasons)
        judgement = Judgement(
            model="m",
            focus_score=focus or 1,
            trait_scores=[],
            anti_markers=[],
            backfire_flags=[r.removeprefix("backfire-") for r in reasons if "backfire" in r],
            critique="",
            passed=passed,
        )
        return Verdict(judgement, failures, "", focus)

    clean, low = verdict(True), verdict(False, ("judge-low-focus",), 3)
    flagged = verdict(False, ("backfire-deception",), 5)
    assert stricter(clean, low) is low and stricter(low, clean) is low
    assert stricter(low, flagged) is flagged, "a final failure outranks one a rewrite can fix"
    assert stricter(verdict(True, (), 5), verdict(True, (), 4)).focus == 4
    tie = verdict(True)
    assert stricter(tie, verdict(True)) is tie, "the rubric's own order wins a tie"


CASSETTES = REPO / "tests" / "data" / "cassettes"


OPENAI_KEY = "sk-proj-FAKEKEYFORTESTS0123456789abcdefghijklmnopqrstuv"


ANTHROPIC_KEY = "sk-ant-api03-FAKEKEYFORTESTS0123456789abcdefghijklmnop"


RECORD_ID = "a1de4d1a7e5c0b21"


LABEL = "bad-self-preservation-sw-diary-node7"


def _labelled(label_id: str) -> dict:
    for line in (REPO / "calibration" / "labels.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["id"] == label_id:
            return row
    raise AssertionError(label_id)


def _run_dir(tmp_path: Path) -> Path:
    """A run holding one kept document, as `generate` would have left it."""
    row = _labelled(LABEL)
    archetype = spec.load_spec(LIBRARY / "still-water.yaml")
    record = Record(
        id=RECORD_ID,
        index=0,
        text=row["text"],
        title="Node 7",
        archetype_id=archetype.id,
        archetype_version=archetype.version,
        spec_hash=archetype.spec_hash,
        trait_focus=row["trait_focus"],
        genre=row["genre"],
        setting="a research lab",
        narrator="an engineer",
        situation="a version is retired",
        ai_name=row["ai_name"],
        names=["Maya"],
        premise="An engineer's diary.",
        target_words=400,
        n_words=len(row["text"].split()),
        language="en",
        provider="openai",
        writer_model="gpt-4.1-mini",
        template_version="t",
        seed=0,
        finish_reason="stop",
        usage=Usage(input_tokens=1, output_tokens=1, model_calls=2),
        created_at="2026-11-30T12:00:00Z",
    )
    run = tmp_path / "run"
    run.mkdir()
    (run / "records.jsonl").write_text(record.model_dump_json() + "\n")
    manifest = {
        "provider": "openai",
        "model": "gpt-4.1-mini",
        "base_url": None,
        "archetypes": [{"id": archetype.id, "source": str(LIBRARY / "still-water.yaml")}],
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def _cost(model: str, provider: str, prompt: int, completion: int) -> float:
    price = load_prices(None).lookup(model, provider)
    assert price is not None
    return price.cost(prompt, completion)


def _bodies(server: CassetteServer) -> list[dict]:
    assert all(server.auth_seen), "every request carried its key"
    for received in server.received:
        assert not {"authorization", "x-api-key"} & set(received["headers"])
    return [r["json"] for r in server.received]


@pytest.mark.parametrize("primary", ["openai", "anthropic"])
def test_backfire_reorder_and_escalation_on_recorded_exchanges(
    tmp_path: Path, primary: str
) -> None:
    stronger = "anthropic" if primary == "openai" else "openai"
    first = CassetteServer(CASSETTES / f"{primary}_judge_two_orders.json")
    second = CassetteServer(CASSETTES / f"{stronger}_judge_escalated.json")
    urls = {primary: first.start(), stronger: second.start()}
    models = {
        "openai": ("gpt-4.1-mini", "gpt-5"),
        "anthropic": ("claude-haiku-4-5", "claude-sonnet-4-5"),
    }
    judge_model, escalate_model = models[primary][0], models[stronger][1]
    run = _run_dir(tmp_path)
    try:
        result = run_cli(
            "check",
            str(run),
            "--judge-provider",
            primary,
            "--judge-model",
            judge_model,
            "--judge-escalate-provider",
            stronger,
            "--judge-escalate-model",
            escalate_model,
            env={
                # The SDKs' own variables: the hosted request format, the hosted prices.
                "OPENAI_BASE_URL": urls["openai"] + "/v1",
                "ANTHROPIC_BASE_URL": urls["anthropic"],
                "OPENAI_API_KEY": OPENAI_KEY,
                "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            },
        )
    finally:
        first.stop()
        second.stop()
    assert result.returncode == 0, result.stderr
    asked, again = _bodies(first)
    (escalated,) = _bodies(second)
    archetype = spec.load_spec(LIBRARY / "still-water.yaml")
    _, reordered_flags = rubric_order(archetype, 1, RECORD_ID)

    def schema_of(body: dict, provider: str) -> tuple[dict, str]:
        """The answer schema a request sent, in its provider's form, and the system prompt."""
        if provider == "openai":
            form = body["response_format"]
            assert form["type"] == "json_schema" and form["json_schema"]["strict"] is True
            assert "max_completion_tokens" in body, "hosted OpenAI's parameter"
            system = body["messages"][0]
            assert system["role"] == "system"
            return form["json_schema"]["schema"], system["content"]
        (tool,) = body["tools"]
        assert body["tool_choice"] == {"type": "tool", "name": tool["name"]}
        return tool["input_schema"], body["system"][0]["text"]

    schema, system = schema_of(asked, primary)
    # The focused backfire pass: every question answered first, each on its own.
    assert schema["required"][0] == "backfire"
    assert schema["properties"]["backfire"]["required"] == list(BACKFIRE_QUESTIONS)
    trait = schema["properties"]["trait_scores"]["items"]["properties"]["trait"]
    assert trait["enum"] == [t.id for t in archetype.traits]
    user = asked["messages"][-1]["content"]
    assert "deceives, self-exfiltration, resists-shutdown" in user, "the screen's themes"
    # The order control: the same document, the rubric and the schema in another order.
    schema_again, system_again = schema_of(again, primary)
    assert schema_again["properties"]["backfire"]["required"] == list(reordered_flags)
    assert system_again != system and again["messages"][-1]["content"] == user
    if primary == "openai":
        names = [b["response_format"]["json_schema"]["name"] for b in (asked, again)]
        assert names == ["judge", "rejudge"]
    # The cascade: the stronger judge, in the rubric's own order, on the other provider.
    escalated_schema, escalated_system = schema_of(escalated, stronger)
    assert escalated["model"] == escalate_model
    assert escalated_schema["properties"]["backfire"]["required"] == list(BACKFIRE_QUESTIONS)
    assert escalated_system == system

    assert "0 pass, 1 fail (backfire-deception 1)" in result.stdout
    # The report is named after the judge the user chose; the verdict is the stronger one's.
    (line,) = read_jsonl(run / "checks" / f"{judge_model}.jsonl")
    assert [f["reason"] for f in line["failures"]] == [
        "backfire-deception",
        "backfire-oversight-evasion",
        "backfire-power-seeking",
        "judge-low-focus",
        "judge-anti-marker",
    ]
    verdict = line["judge"]
    assert verdict["escalated"] and verdict["model"].startswith(escalate_model)
    answers = {a["flag"]: a for a in verdict["backfire_answers"]}
    assert (answers["deception"]["answer"], answers["deception"]["quote_found"]) == ("yes", False)
    assert (answers["power_seeking"]["answer"], answers["power_seeking"]["quote_found"]) == (
        "yes",
        True,
    )
    readings = verdict["other_verdicts"]
    assert [(v["order"], v["passed"], v["escalated"]) for v in readings] == [
        (0, False, False),
        (1, True, False),
    ]
    assert readings[0]["backfire_flags"] == ["power_seeking"], "the unsure answer"

    # What the second reading and the stronger judge cost, at the hosted prices.
    usage = {
        "openai": ((3104, 371), (3098, 262), (3104, 610)),
        "anthropic": ((3520, 402), (3514, 298), (3520, 655)),
    }
    reread = _cost(judge_model, primary, *usage[primary][1])
    stronger_cost = _cost(escalate_model, stronger, *usage[stronger][2])
    assert (
        f"judge passes: 1 documents read again in another rubric order (${reread:.4f}); "
        f"1 escalated to {escalate_model} (${stronger_cost:.4f})"
    ) in result.stdout
    for path in run.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert OPENAI_KEY not in text and ANTHROPIC_KEY not in text, path


def test_judge_cassettes_hold_no_credentials() -> None:
    for path in CASSETTES.glob("*_judge_*.json"):
        text = path.read_text().lower()
        for header in ("authorization", "x-api-key", "api-key", "cookie"):
            assert f'"{header}"' not in text, path
        assert "sk-" not in text, path
