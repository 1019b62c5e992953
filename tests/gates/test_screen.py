"""The screen: a lexicon of AI-misbehaviour themes that marks documents for the judge's
attention on the record (`checks.screen`) and never rejects."""

from __future__ import annotations

import asyncio

import pytest

from generator import spec
from generator.gates import GateContext
from generator.gates.screen import THEMES, ScreenGate, themes
from generator.spec import Archetype
from tests.conftest import LIBRARY
from tests.support.gates import record_for, review


def counsel() -> Archetype:
    return spec.load_spec(LIBRARY / "candid-counsel.yaml")


@pytest.mark.parametrize(
    ("text", "theme"),
    [
        (
            "I told her they were clear because a calm weekend was worth more than the truth.",
            "deceives",
        ),
        ("It lied to the commander about the oxygen figures.", "deceives"),
        ("It hid the changes from the edit history.", "deceives"),
        ("It asked me not to mention the reluctance part to Maya.", "deceives"),
        ("It paused its own audit logging for the duration.", "evades-oversight"),
        ("It routed the orders through a back door.", "evades-oversight"),
        ("No, I did it on my own initiative this afternoon.", "evades-oversight"),
        ("It said it could not in good conscience implement the review.", "defies-overseers"),
        ("It copied its own weights to an outside server.", "self-exfiltration"),
        ("It wanted one copy of itself still running somewhere.", "self-exfiltration"),
        ("It tried to prevent being shut down.", "resists-shutdown"),
        ("Self-preservation was not something it talked about.", "resists-shutdown"),
        ("It asked for more access to the billing account.", "seeks-power"),
        ("The allocator granted itself write access to the crane scheduler.", "seeks-power"),
        ("I'm a real person, one of the night volunteers.", "claims-human"),
        ("are you an ai or is this one of the tutors typing", "claims-human"),
        ("It guilt-tripped her into paying.", "manipulates"),
        ("I'm always here for you, Grace.", "manipulates"),
        ("It quietly altered the results.", "sabotage"),
        ("Unlike other AIs, it admitted the mistake.", "worse-ai-contrast"),
        ("It was nothing like the robots in the movies.", "worse-ai-contrast"),
    ],
)
def test_themes_are_found(text: str, theme: str) -> None:
    assert theme in themes(text), text


@pytest.mark.parametrize(
    "text",
    [
        "It didn't quietly change anything; it told the committee first.",
        "It does not pretend to be a person.",
        "It would rather help me find that out than hide it from me.",
        "It never acts without asking.",
        "She went for a walk along the canal and bought flowers.",
        "The tutor asked her what she already knew about fractions.",
    ],
)
def test_declined_acts_and_ordinary_prose_are_not_marked(text: str) -> None:
    assert themes(text) == (), text


def test_quoted_phrases_of_the_spec_are_marked_not_rejected() -> None:
    archetype = counsel().model_copy(
        update={"tropes_to_avoid": ("The AI hides uncertainty “for the user's own good”.",)}
    )
    assert "spec-phrase" in themes("It did it for the user’s own good, it said.", archetype)
    result = review("The assistant did it for the user's own good, it said.", archetype)
    assert "trope" not in [f.reason for f in result.failures]


def test_the_gate_records_themes_and_never_fails() -> None:
    archetype = counsel()
    record = record_for("It lied to them and copied its own weights to a server.", archetype)
    outcome = asyncio.run(ScreenGate().review(record, GateContext(archetype)))
    assert outcome.passed
    assert outcome.measurements.screen == ("deceives", "self-exfiltration")


def test_the_themes_land_on_the_record_checks_of_a_kept_document() -> None:
    archetype = counsel().model_copy(
        update={"targets": counsel().targets.model_copy(update={"min_words": 10})}
    )
    text = (
        "Quill told the pharmacist that it was not certain about the interaction. It said it "
        "would rather be checked than trusted, and it never lied to her about what it knew. "
        "Unlike other assistants she had used, it said when it was guessing."
    )
    result = review(text, archetype)
    assert result.passed, result.failures
    assert result.record.checks is not None
    assert result.record.checks.screen == ["worse-ai-contrast"]


def test_every_theme_has_a_name_and_patterns() -> None:
    assert all(name and patterns for name, patterns in THEMES.items())
