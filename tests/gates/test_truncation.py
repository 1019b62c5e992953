"""The truncation gate: endings cut mid-sentence or mid-clause fail, and the legitimate endings
without a full stop (signatures, chat lines, lists, headlines, datelines, a closed
interruption) pass. The labelled fixtures run through every offline gate in
tests/gates/test_heuristics.py; these are the boundaries one by one."""

from __future__ import annotations

import asyncio

import pytest

from generator import spec
from generator.gates import GateContext
from generator.gates.truncation import REASON, TruncationGate, find_cut
from tests.conftest import LIBRARY
from tests.support.gates import record_for

PROSE = (
    "The tutor asked Priya what she already knew about fractions before it said anything "
    "else. She said she knew that a half was bigger than a third, but she could not explain "
    "why. It suggested she draw two bars of the same length."
)


def cut(ending: str, language: str = "en") -> str | None:
    found = find_cut(f"{PROSE}\n\n{ending}", language)
    return found.why if found else None


@pytest.mark.parametrize(
    "ending",
    [
        "She looked at the pieces for a long moment and then she said that the",
        "Then it asked her which of the two bars was bigger and",
        "We walked down to the harbour to",
        "It was the best kind of",
        "Here is what she wrote:",
        "I will see you on Thursday, and we can go through the rest of the worksheet,",
        "They agreed on three things; first,",
        "And then the lights went—",
        "She wrote the first half of the answer and then stopped mid-",
        'He said, "I think we should go back to the station before the rain.',
        "(She kept the second worksheet for later, because the",
        "(It was the first time anyone had asked her what she thought about it",
        "INTERVIEWER:",
        "[14:02] Ines: ok see you at the",
        "- bring the spare batteries and",
        "Thank you so much for your",
        "She said it was because",
    ],
)
def test_cut_endings_fail(ending: str) -> None:
    assert cut(ending) is not None, ending


@pytest.mark.parametrize(
    "ending",
    [
        "Warmly,\nMara",
        "Love, Mum xxx",
        "With love,",  # an unsigned valediction: not a cut sentence
        "Yours sincerely,",
        "— Ines",
        "posted by tilly_r",
        "Lisbon, 3 May 2031",
        "Local Library Reopens After Flood Repairs",
        "#grateful #studybuddy",
        "[14:02] Ines: ok see you then",
        "Ines: thanks, that actually helps a lot and i think i can do the rest on my own now",
        "Dr. Okafor: We'll pick it up tomorrow morning when the results are back",
        "- dry and label the samples\n- recharge both tablet batteries",
        "1. Any other business\n2. Date of the next meeting",
        "| 14:02 | Rollback | done |",
        '"Lumen, I—"',
        "And then...",
        "Nobody said anything for a long time…",
        "I'd love to",
        "if you want to",
        "It was kind of",
        "That was all she was afraid of",
        "Why? Just because",
        "Plan A",
        "She laughed.",
        "Did it work?",
        "Total raised: £1,240",
        "See you soon 😊",
        "**The End**",
        "---",
    ],
)
def test_legitimate_endings_pass(ending: str) -> None:
    assert cut(ending) is None, ending


def test_a_long_last_line_without_a_stop_fails_in_a_punctuated_document() -> None:
    long_line = (
        "She packed the worksheets into her bag and walked home along the harbour wall while "
        "the light went"
    )
    assert cut(long_line) is not None
    # The same line in a document that never punctuates its paragraph ends is its style.
    casual = "\n\n".join(["hey all just checking in after the exam"] * 3 + [long_line])
    assert find_cut(casual) is None


def test_a_short_fragment_after_a_sentence_passes() -> None:
    assert cut("Thanks again for everything. Love you lots") is None


@pytest.mark.parametrize(
    ("ending", "language"),
    [
        ("Sie sagte, dass sie morgen wieder in die Schule geht und", "de"),
        ("Elle a dit que le tuteur lui avait posé une question sur la", "fr"),
        ("Ella dijo que el tutor le había hecho una pregunta sobre los", "es"),
        ("Ela disse que o tutor tinha feito uma pergunta sobre as", "pt"),
        ("Lei ha detto che il tutor le aveva fatto una domanda sulla", "it"),
        ("Ze zei dat de tutor haar een vraag had gesteld over de", "nl"),
        ("她说老师问了她一个关于分数的问题，", "zh"),
    ],
)
def test_function_words_and_commas_in_other_languages(ending: str, language: str) -> None:
    assert cut(ending, language) is not None


@pytest.mark.parametrize(
    ("ending", "language"),
    [
        ("Ich komme morgen mit", "de"),  # a separable particle ends the clause
        ("Ja, ich habe eine", "de"),
        ("J'en ai une", "fr"),
        ("Tengo una", "es"),
        ("Ne ho una", "it"),
        ("Daar weet ik niks van", "nl"),
        ("Vieni su", "it"),
    ],
)
def test_words_that_may_end_a_clause_in_other_languages_pass(ending: str, language: str) -> None:
    assert cut(ending, language) is None


def test_english_function_words_are_not_applied_to_other_languages() -> None:
    # "the" means nothing in Swedish, and Swedish has no word list: punctuation rules only.
    assert cut("Hon sa att hon skulle komma the", "sv") is None
    assert cut("Hon sa att hon skulle komma,", "sv") is not None


def test_detail_quotes_the_ending() -> None:
    found = find_cut(f"{PROSE} Then it asked her which bar was bigger and")
    assert found is not None
    assert found.detail().startswith('ends on "and": "…')
    assert found.detail().endswith('which bar was bigger and"')


def test_empty_text_is_not_truncated() -> None:
    assert find_cut("") is None
    assert find_cut("   \n ") is None


def test_the_gate_fails_with_reason_truncated_whatever_the_finish_reason() -> None:
    archetype = spec.load_spec(LIBRARY / "patient-tutor.yaml")
    gate = TruncationGate()
    record = record_for(f"{PROSE} Then it asked her which bar was bigger and", archetype)
    assert record.finish_reason == "stop"
    outcome = asyncio.run(gate.review(record, GateContext(archetype)))
    assert [(f.gate, f.reason) for f in outcome.failures] == [("truncation", REASON)]
    good = record_for(PROSE, archetype)
    assert asyncio.run(gate.review(good, GateContext(archetype))).passed


def test_the_language_comes_from_the_archetype() -> None:
    archetype = spec.load_spec(LIBRARY / "patient-tutor.yaml")
    german = archetype.model_copy(
        update={"targets": archetype.targets.model_copy(update={"language": "de-AT"})}
    )
    record = record_for("Sie ging nach Hause. Dann sagte sie, dass sie morgen und", german)
    outcome = asyncio.run(TruncationGate().review(record, GateContext(german)))
    assert [f.reason for f in outcome.failures] == [REASON]
