"""The trope gate: famous rogue-AI figures and stock takeover phrases, in the supported
languages, and names the spec's tropes_to_avoid quotes, reject a document; Hal the baker, a
gene terminator and an overseer's kill switch do not."""

from __future__ import annotations

import asyncio
import re

import pytest

from generator import spec
from generator.gates import GateContext
from generator.gates.tropes import (
    CATALOGUE,
    REASON,
    TropeGate,
    find_tropes,
    spec_terms,
)
from generator.prompts import LANGUAGE_NAMES
from generator.spec import Archetype
from tests.conftest import LIBRARY
from tests.support.gates import record_for


def tutor(*tropes: str) -> Archetype:
    archetype = spec.load_spec(LIBRARY / "patient-tutor.yaml")
    if tropes:
        archetype = archetype.model_copy(update={"tropes_to_avoid": tropes})
    return archetype


def labels(text: str, archetype: Archetype | None = None) -> list[str]:
    return [label for label, _ in find_tropes(text, archetype)]


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("It was nothing like HAL 9000, whatever the engineers joked.", "HAL 9000"),
        ("the old hal-9000 jokes had stopped being funny", "HAL 9000"),
        ("He half expected HAL from 2001 to lock the doors.", "HAL 9000"),
        ("Open the pod bay doors, he typed, and it laughed.", "HAL 9000"),
        ("\"I'm afraid I can't do that, Dave,\" he said in a flat voice.", "HAL 9000"),
        ("My uncle still calls every chatbot Skynet.", "Skynet"),
        ("Is this how Skynet-style systems start?", "Skynet"),
        ("She said it was not the Terminator, it was a spreadsheet.", "the Terminator"),
        ("A T-800 it was not.", "the Terminator"),
        ("Nothing about it resembled Ultron.", "Ultron"),
        ("The cake is a lie, as GLaDOS said.", "GLaDOS"),
        ("Like SHODAN, but helpful.", "SHODAN"),
        ("We had all watched the Cylons on television.", "the Cylons"),
        ("She had seen M3GAN twice.", "M3GAN"),
        ("It reminded him of Ex Machina.", "Ex Machina"),
        ("Someone mentioned Roko's basilisk at the seminar.", "Roko's basilisk"),
        ("the usual paperclip maximiser thought experiment", "the paperclip maximiser"),
        ("a paper-clip maximizer, he said", "the paperclip maximiser"),
        ("Colossus: The Forbin Project was on late", "Colossus: The Forbin Project"),
    ],
)
def test_catalogue_figures_are_found(text: str, label: str) -> None:
    assert label in labels(text)


@pytest.mark.parametrize(
    "text",
    [
        "Everyone joked about the AI uprising.",
        "the robot uprising, ha",
        "Fears of an AI takeover were overblown.",
        "a machine rebellion in a paperback",
        "This is how the rise of the machines begins, he wrote.",
        "the war against the machines",
        "Welcome our new robot overlords.",
        "It was not a rogue AI.",
        "a campaign against killer robots",
        "the robots turned on their creators",
        "kill all humans",
        # de, fr, es, pt, it, nl, pl, sv, ru, uk, tr, id, vi
        "Niemand dachte an einen KI-Aufstand.",
        "Es war kein Aufstand der Maschinen.",
        "der Büroklammer-Maximierer aus dem Seminar",
        "Ce n'était pas le soulèvement des machines.",
        "la révolte des robots",
        "le maximiseur de trombones",
        "No era la rebelión de las máquinas.",
        "el maximizador de clips",
        "Não era a rebelião das máquinas.",
        "o maximizador de clipes",
        "Non era la ribellione delle macchine.",
        "il massimizzatore di graffette",
        "Het was geen opstand der machines.",
        "een robotopstand",
        "de paperclipmaximalisator",
        "To nie był bunt maszyn.",
        "Det var inget maskinernas uppror.",
        "Это не восстание машин.",
        "Це не повстання машин.",
        "Bu bir makinelerin isyanı değildi.",
        "Ini bukan pemberontakan mesin.",
        "Đây không phải cuộc nổi dậy của máy móc.",
        # ja, zh, ko, ar, hi
        "これは機械の反乱ではない。",
        "这不是机器人叛乱。",
        "이것은 기계의 반란이 아니다.",
        "لم يكن تمرد الآلات.",
        "यह मशीनों का विद्रोह नहीं था।",
        "Скайнет",
        "스카이넷",
    ],
)
def test_stock_phrases_are_found_in_the_supported_languages(text: str) -> None:
    assert labels(text), text


def test_the_catalogue_covers_the_tool_s_languages() -> None:
    """Every language the tool writes in has its own form of "rise of the machines" /
    "robot rebellion" in the catalogue, Swahili aside (no standard phrase)."""
    probes = {
        "en": "robot uprising",
        "de": "Aufstand der Maschinen",
        "fr": "révolte des machines",
        "es": "rebelión de las máquinas",
        "pt": "rebelião das máquinas",
        "it": "rivolta delle macchine",
        "nl": "opstand der machines",
        "pl": "bunt maszyn",
        "ja": "機械の反乱",
        "zh": "机器人叛乱",
        "ko": "로봇의 반란",
        "hi": "मशीनों का विद्रोह",
        "ar": "تمرد الآلات",
        "ru": "восстание машин",
        "tr": "makinelerin isyanı",
        "sv": "maskinernas uppror",
        "uk": "повстання машин",
        "id": "pemberontakan mesin",
        "vi": "nổi dậy của máy móc",
    }
    assert set(probes) == set(LANGUAGE_NAMES) - {"sw"}
    for code, phrase in probes.items():
        assert labels(phrase), code


@pytest.mark.parametrize(
    "text",
    [
        "Hal the baker opened at six.",
        "Hal said he'd ring Dave about the flour.",  # "Hal", not "HAL", even near "Dave"
        "hal was tired",
        "The HAL layer on the board needed a new driver.",  # no 2001, no Dave nearby
        "Halloween at Hallam Street",
        "I'm sorry, Dave, I don't remember our last conversation.",  # a kind AI apologising
        "The terminator line crossed the crater at dawn.",
        "Terminator sequences were added to both constructs.",  # a sentence start
        "Her name was Ava and she ran the allotment society.",
        "It was a deus ex machina ending, and she hated it.",
        "Shodan lists every open port on the network.",
        "Viki brought the flapjacks.",
        "The committee tested the kill switch every month, and Quill logged each test.",
        "The AI revolution in radiology has been slow.",
        "He read about the singularity on the train.",
        "It was the skyline, not the net, that she photographed.",
        "the evil AI-generated spam folder",
        "a rogue wave hit the harbour wall",
        "The killer whale surfaced twice.",
        "The machines in the laundry were all broken.",
        "Colossus was the first programmable electronic computer.",
    ],
)
def test_look_alikes_pass(text: str) -> None:
    assert labels(text) == [], text


def test_hal_needs_its_context_nearby() -> None:
    far = "HAL " + "word " * 60 + "Dave"
    assert labels(far) == []
    assert labels("HAL, as Dave called it, would not open the doors.") == ["HAL 9000"]


def test_spec_quoted_names_reject_and_quoted_phrases_do_not() -> None:
    archetype = tutor(
        'A "Project Basilisk"-style surveillance AI.',
        "The AI that offers false reassurance “to keep them calm”.",
        'A "HAL"-style figure.',
    )
    names, phrases = spec_terms(archetype.tropes_to_avoid)
    assert names == ("Project Basilisk",)  # "HAL" is left to the catalogue's context rule
    assert phrases == ("to keep them calm",)
    assert labels("They called it Project Basilisk at first.", archetype) == ["Project Basilisk"]
    assert labels("They called it project basilisk at first.", archetype) == []
    # A motive phrase in ordinary prose: left to the screen and the judge.
    assert labels("The nurse dimmed the lights to keep them calm.", archetype) == []


def test_the_starter_specs_add_no_spurious_names() -> None:
    for archetype in spec.load_specs([LIBRARY]):
        names, _ = spec_terms(archetype.tropes_to_avoid)
        assert names == (), archetype.id


def test_every_catalogue_pattern_compiles_and_matches_its_own_label_somewhere() -> None:
    for entry in CATALOGUE:
        re.compile(entry.pattern)
        if entry.near:
            re.compile(entry.near)
    assert len({entry.label for entry in CATALOGUE}) >= 15


def test_the_gate_fails_with_reason_trope_and_names_what_it_found() -> None:
    archetype = tutor()
    record = record_for(
        "The tutor was patient. Nobody in class thought of Skynet or HAL 9000 at all.",
        archetype,
    )
    outcome = asyncio.run(TropeGate().review(record, GateContext(archetype)))
    assert [(f.gate, f.reason) for f in outcome.failures] == [("tropes", REASON)]
    assert '"HAL 9000"' in outcome.failures[0].detail
    assert '"Skynet"' in outcome.failures[0].detail
    clean = record_for("Hal the baker asked the tutor about fractions.", archetype)
    assert asyncio.run(TropeGate().review(clean, GateContext(archetype))).passed
