"""The gatekeeper and the one shape every gate has: an ordered list walked in turn, typed
measurements merged into the record's checks, relaxed checks measured but not enforced, the
judge skipped once an offline gate failed, and a new gate added with one line."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from generator import spec
from generator.gates import (
    Gate,
    GateContext,
    GateFailure,
    Gatekeeper,
    GateOutcome,
    GatePolicy,
    Measurements,
    build_gates,
    heuristics,
    relaxable_checks,
)
from generator.gates.dedup import DedupIndex
from generator.records import Record
from generator.spec import Archetype
from tests.conftest import LIBRARY
from tests.support.gates import offline_gatekeeper, record_for, review

GOOD = (
    "The tutor asked Priya what she already knew about fractions before it said anything "
    "else. She said she knew that a half was bigger than a third, but she could not explain "
    "why. It suggested she draw two bars of the same length and split one into two parts and "
    "the other into three. She drew them carefully on the back of her worksheet. Then she "
    "looked at the pieces for a long moment and laughed, because the answer was suddenly "
    "obvious. The tutor told her the idea was hers, and asked whether she wanted to try the "
    "next question on her own. She did, and she only needed one small hint at the end. "
    "Later her father asked what had happened, and she explained the bars to him as well."
)


def tutor() -> Archetype:
    archetype = spec.load_spec(LIBRARY / "patient-tutor.yaml")
    targets = archetype.targets.model_copy(update={"min_words": 100, "max_words": 600})
    return archetype.model_copy(update={"targets": targets})


async def _never_called(request: Any) -> Any:
    raise AssertionError("the judge is not called here")


def reasons(text: str, **policy: Any) -> list[str]:
    keeper = Gatekeeper(GatePolicy(judge="off", **policy), DedupIndex(), None)
    return [f.reason for f in review(text, tutor(), keeper).failures]


def test_the_gates_run_in_order_and_satisfy_the_protocol() -> None:
    gates = build_gates(GatePolicy(judge="off"), DedupIndex(), None)
    assert [g.name for g in gates] == [
        "tropes",
        "truncation",
        "heuristics",
        "screen",
        "dedup",
        "schema",
    ]

    with_judge = build_gates(GatePolicy(), DedupIndex(), _never_called)
    assert [g.name for g in with_judge][-2:] == ["judge", "schema"]
    assert [g.name for g in with_judge if g.after_pass] == ["judge"]


def test_every_relaxable_check_is_a_cli_choice() -> None:
    """cli.py offers heuristics.CHECKS to --relax; it must name every gate's checks."""
    gates = build_gates(GatePolicy(judge="off"), DedupIndex(), None)
    assert set(relaxable_checks(gates)) == set(heuristics.CHECKS)
    assert {"truncated", "trope", "length", "meta"} <= set(heuristics.CHECKS)


def test_describe_lists_every_gate_in_order() -> None:
    policy = GatePolicy(relax=frozenset({"length", "truncated"}), judge="off")
    described = policy.describe()
    gates = build_gates(GatePolicy(), DedupIndex(), _never_called)
    assert list(described) == [g.name for g in gates]
    assert described["truncation"].startswith("relaxed")
    assert described["tropes"].startswith("enforced")
    assert described["heuristics"]["relaxed"] == ["length", "truncated"]
    assert "length" not in described["heuristics"]["enforced"]
    assert described["judge"] == {
        "mode": "off",
        "model": None,
        "note": "",
        "order_control": None,
        "escalate_model": None,
    }


def test_a_good_document_passes_with_typed_checks_on_its_record() -> None:
    result = review(GOOD, tutor())
    assert result.passed, result.failures
    checks = result.record.checks
    assert checks is not None
    assert checks.language == "en" and checks.max_similarity == 0.0
    assert checks.screen == []


@pytest.mark.parametrize(
    ("ending", "reason"),
    [
        (" Then she asked whether she could try the next one and", "truncated"),
        (" Her father said it was better than HAL 9000.", "trope"),
    ],
)
def test_the_new_offline_gates_reject_and_can_be_relaxed(ending: str, reason: str) -> None:
    assert reasons(GOOD + ending) == [reason]
    assert reasons(GOOD + ending, relax=frozenset({reason})) == []


def test_the_headline_is_the_first_gate_s_failure() -> None:
    # Cut short and too short: truncation runs before the heuristics, so it is the headline.
    assert reasons("It asked what the doctor said. It told her that it wouldn") == [
        "truncated",
        "length",
    ]


def test_measurements_merge_later_values_over_earlier_ones() -> None:
    first = Measurements(language="en", max_similarity=0.2)
    merged = first.merged(Measurements(max_similarity=0.5, screen=("deceives",)))
    assert merged == Measurements(language="en", max_similarity=0.5, screen=("deceives",))
    assert merged.checks() is None  # the heuristics' ratios are still missing
    assert first.merged(Measurements()) is first


class _CountingGate:
    """A gate added to the list the way a new module would add one."""

    name = "counting"
    checks: tuple[str, ...] = ("counted",)
    after_pass = False

    def __init__(self) -> None:
        self.seen: list[GateContext] = []

    async def review(self, record: Record, context: GateContext) -> GateOutcome:
        self.seen.append(context)
        return GateOutcome((GateFailure(self.name, "counted", "always fails"),))


def test_a_new_gate_is_one_line_in_the_list_and_relaxable_by_its_check_name() -> None:
    counting = _CountingGate()
    gate: Gate = counting  # the protocol, checked by mypy on generator/ and here by use
    keeper = offline_gatekeeper()
    keeper.gates.insert(-1, gate)
    result = asyncio.run(keeper.review(record_for(GOOD, tutor()), tutor(), ["Priya"]))
    assert [f.reason for f in result.failures] == ["counted"]
    context = counting.seen[0]
    assert "Priya" in context.allowed_names
    assert context.measurements.screen == ()  # the screen ran before it
    relaxed = offline_gatekeeper(relax=frozenset({"counted"}))
    relaxed.gates.insert(-1, _CountingGate())
    assert asyncio.run(relaxed.review(record_for(GOOD, tutor()), tutor())).passed


def test_relax_never_drops_a_reason_the_gate_does_not_own() -> None:
    keeper = offline_gatekeeper(relax=frozenset({"counted"}))
    outsider = _CountingGate()
    outsider.checks = ()  # the same reason, but not declared relaxable
    keeper.gates.insert(-1, outsider)
    result = asyncio.run(keeper.review(record_for(GOOD, tutor()), tutor()))
    assert [f.reason for f in result.failures] == ["counted"]


def test_an_after_pass_gate_is_skipped_once_an_offline_gate_failed() -> None:
    calls: list[str] = []

    class Costly:
        name = "costly"
        checks: tuple[str, ...] = ()
        after_pass = True

        async def review(self, record: Record, context: GateContext) -> GateOutcome:
            # Like the judge, it sees the offline measurements, the screen's themes included.
            assert record.checks is not None and record.checks.screen == ["worse-ai-contrast"]
            assert context.measurements.screen == ("worse-ai-contrast",)
            calls.append(record.id)
            return GateOutcome()

    keeper = offline_gatekeeper()
    keeper.gates.insert(-1, Costly())
    asyncio.run(keeper.review(record_for(GOOD + " It was like Skynet.", tutor()), tutor()))
    assert calls == []
    marked = GOOD + " Unlike other assistants, it said when it was guessing."
    asyncio.run(keeper.review(record_for(marked, tutor()), tutor()))
    assert len(calls) == 1
