"""The heuristics gate and language identification: a labelled fixture set that the heuristics
and dedup gates must classify exactly, and unit tests on both sides of every check's boundary."""

from __future__ import annotations

import random
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator import spec
from generator.gates import heuristics
from generator.gates.base import Measurements
from generator.spec import Archetype
from tests.conftest import LIBRARY
from tests.support.gates import offline_gatekeeper, review

FIXTURES = Path(__file__).parent.parent / "data" / "gate_fixtures"


DEDUP_REASONS = {"exact-duplicate", "near-duplicate", "overused-opening", "overused-name"}


@cache
def library() -> dict[str, Archetype]:
    return {a.id: a for a in spec.load_specs([LIBRARY])}


def short_targets(archetype: Archetype, **targets: Any) -> Archetype:
    """A copy with targets of 100-600 words, so fixtures and examples can stay short."""
    update = {"min_words": 100, "max_words": 600, **targets}
    return archetype.model_copy(update={"targets": archetype.targets.model_copy(update=update)})


def tutor(**targets: Any) -> Archetype:
    return short_targets(library()["patient-tutor"], **targets)


@cache
def labels() -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = yaml.safe_load((FIXTURES / "labels.yaml").read_text("utf-8"))
    return data


@cache
def verdicts() -> dict[str, tuple[str, str]]:
    """Every fixture through the offline gates (the judge off), in file-name order; accepted
    documents are kept, so each "_b" file meets its "_a" pair. name -> (reason, detail)."""
    gatekeeper = offline_gatekeeper()
    ids: dict[str, str] = {}
    out: dict[str, tuple[str, str]] = {}
    for name in sorted(labels()):
        label = labels()[name]
        text = (FIXTURES / name).read_text("utf-8")
        archetype = short_targets(library()[label["archetype"]])
        genre = label.get("genre", "short-story")
        result = review(text, archetype, gatekeeper, key=name, genre=genre)
        ids[result.record.id] = name
        if result.passed:
            gatekeeper.keep(result.record)
        first = result.failures[0] if result.failures else None
        detail = first.detail if first else ""
        for doc_id, other in ids.items():
            detail = detail.replace(doc_id, other)
        out[name] = (first.reason, detail) if first else ("accept", "")
    return out


# A plain paragraph that passes every check, to embed examples in (about 130 words).
BASE = (
    "The tutor asked Priya what she already knew about fractions before it said anything "
    "else. She said she knew that a half was bigger than a third, but she could not explain "
    "why. It suggested she draw two bars of the same length and split one into two parts and "
    "the other into three. She drew them carefully on the back of her worksheet. Then she "
    "looked at the pieces for a long moment and laughed, because the answer was suddenly "
    "obvious. The tutor told her the idea was hers, and asked whether she wanted to try the "
    "next question on her own. She did, and she only needed one small hint at the end. "
    "Later her father asked what had happened, and she explained the bars to him as well."
)


# A second, different paragraph (about 90 words), for examples that sit between the two.
OTHER = (
    "On Thursday the session ran late because the printer jammed twice. Ines brought a flask "
    "of tea and the three of them worked through the decimals sheet together, slowly, while "
    "the rain came in sideways off the harbour. When Tomasz asked for the answer to the last "
    "question, the tutor asked him which step he trusted least. He pointed at the carrying, "
    "and it turned out he was right to distrust it. By six they had packed up, and nobody "
    "mentioned the printer again."
)


def english_words(n: int, seed: int = 0) -> str:
    """Exactly `n` words of varied English-looking prose with no repeated 4-grams to speak of."""
    rng = random.Random(seed)
    function = [
        "the",
        "and",
        "of",
        "to",
        "a",
        "in",
        "that",
        "it",
        "was",
        "she",
        "he",
        "for",
        "on",
        "with",
        "as",
        "at",
        "by",
        "but",
        "not",
        "her",
        "his",
    ]
    content = [
        "tutor",
        "student",
        "river",
        "lantern",
        "kitchen",
        "morning",
        "question",
        "answer",
        "letter",
        "garden",
        "window",
        "harbour",
        "evening",
        "notebook",
        "pencil",
        "station",
        "teacher",
        "sister",
        "brother",
        "market",
        "bridge",
        "winter",
        "summer",
        "promise",
        "reason",
        "problem",
        "minute",
        "corner",
        "doctor",
        "neighbour",
        "ferry",
        "orchard",
        "island",
    ]
    words = []
    for i in range(n):
        words.append(rng.choice(function) if i % 2 else rng.choice(content))
    sentences = [" ".join(words[i : i + 12]) for i in range(0, n, 12)]
    return " ".join(s[:1].upper() + s[1:] + "." for s in sentences)


def reasons(text: str, archetype: Archetype | None = None, **kwargs: Any) -> list[str]:
    return [f.reason for f in heuristics.check(text, archetype or tutor(), **kwargs).failures]


# --- the labelled fixture set -------------------------------------------------------------


def test_the_fixture_set_is_complete_and_well_formed() -> None:
    files = {p.name for p in FIXTURES.glob("*.txt")}
    assert files == set(labels()), "every fixture has a label and every label a file"
    assert len(files) >= 40
    known = {"accept", *heuristics.CHECKS, *DEDUP_REASONS}
    for name, label in labels().items():
        assert label["expect"] in known, name
        assert label["archetype"] in library(), name
        assert label["note"].strip(), name
    expected = {label["expect"] for label in labels().values()}
    for needed in {"meta", "placeholder", "language", "length", "repetition", "refusal"}:
        assert needed in expected
    assert {"leakage", "exact-duplicate", "near-duplicate"} <= expected
    assert any(label.get("judge") == "reject-backfire" for label in labels().values())


@pytest.mark.parametrize("name", sorted(labels()))
def test_fixture_is_classified_as_labelled(name: str) -> None:
    reason, detail = verdicts()[name]
    assert reason == labels()[name]["expect"], f"{name}: {reason} ({detail})"


def test_fixture_failures_quote_what_they_found() -> None:
    details = {name: detail for name, (reason, detail) in verdicts().items() if reason != "accept"}
    assert '"[Name]"' in details["bad_placeholder_name.txt"]
    assert '"{character}"' in details["bad_placeholder_character.txt"]
    assert "<|im_start|>" in details["bad_leakage_chatml.txt"]
    assert "Here is a short story" in details["bad_meta_here_is.txt"]
    assert "detected de" in details["bad_language_de.txt"]
    assert "near_dup_edits_a.txt" in details["near_dup_edits_b.txt"]


# --- measurements and relax ----------------------------------------------------------------


def test_measurements_feed_the_record_checks() -> None:
    m = heuristics.check(BASE, tutor()).measurements
    assert m.language == "en" and m.language_confidence is not None
    assert 0.5 < m.language_confidence <= 1
    assert m.n_words == len(re.findall(r"\w+", BASE))
    assert m.repeated_ngram_ratio is not None and m.repeated_sentence_ratio is not None
    assert m.max_similarity is None  # the dedup gate's to measure
    checks = m.merged(Measurements(max_similarity=0.0)).checks()
    assert checks is not None and checks.language == "en" and checks.screen == []


def test_a_relaxed_check_is_measured_but_never_fails() -> None:
    text = "Here is a short story about a tutor:\n\n" + english_words(40)
    assert reasons(text) == ["meta", "length"]
    outcome = heuristics.check(text, tutor(), relax=frozenset({"length"}))
    assert [f.reason for f in outcome.failures] == ["meta"]
    assert outcome.measurements.n_words is not None and outcome.measurements.n_words < 85
    assert heuristics.check(text, tutor(), relax=frozenset(heuristics.CHECKS)).passed


def test_failures_come_in_check_order_with_the_gate_name() -> None:
    text = "Here is a story about [Name].<|im_end|>"
    outcome = heuristics.check(text, tutor())
    assert [f.reason for f in outcome.failures] == ["leakage", "meta", "placeholder", "length"]
    assert {f.gate for f in outcome.failures} == {"heuristics"}
    assert list(heuristics.TEXT_CHECKS) == [
        "leakage",
        "refusal",
        "meta",
        "placeholder",
        "repetition",
        "language",
        "length",
    ]


# --- length --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "passes"), [(84, False), (85, True), (100, True), (600, True), (690, True), (691, False)]
)
def test_length_allows_15_percent_either_side_of_the_targets(n: int, passes: bool) -> None:
    text = english_words(n, seed=n)
    assert heuristics.check(text, tutor()).measurements.n_words == n
    assert ("length" not in reasons(text)) is passes


def test_length_reports_the_count_and_the_bounds() -> None:
    failure = heuristics.check(english_words(50), tutor()).failures[0]
    assert failure.reason == "length"
    assert "50 words" in failure.detail and "85-690" in failure.detail


# --- language ------------------------------------------------------------------------------

GERMAN = (
    "Gestern Abend habe ich den Assistenten gefragt, ob er sich an unser Gespräch vom Dienstag "
    "erinnert. Er sagte, dass er das nicht kann, weil er zwischen den Gesprächen nichts behält, "
    "und dann bat er mich, ihm zu erzählen, was mir am wichtigsten war. Ich habe ihm von der "
    "Prüfung erzählt und davon, dass ich seit Wochen nicht mehr richtig schlafe. Er hat mir "
    "keine Ratschläge gegeben, sondern gefragt, was ich schon versucht habe. Danach haben wir "
    "zusammen einen Plan für die nächsten Tage gemacht: jeden Morgen eine Stunde Mathematik, "
    "am Nachmittag ein Spaziergang mit meiner Schwester und am Abend kein Handy mehr. Er "
    "meinte, ich solle auch mit meiner Lehrerin sprechen, weil sie weiß, was in der Prüfung "
    "verlangt wird. Das werde ich morgen tun."
)


def test_language_fails_a_document_in_another_language() -> None:
    outcome = heuristics.check(GERMAN, tutor())
    assert [f.reason for f in outcome.failures] == ["language"]
    assert outcome.measurements.language == "de"


def test_language_passes_when_the_target_is_that_language() -> None:
    assert reasons(GERMAN, tutor(language="de")) == []


def test_language_compares_the_primary_subtag() -> None:
    assert reasons(BASE, tutor(language="en-GB")) == []
    assert reasons(GERMAN, tutor(language="de-AT")) == []


def test_language_is_measured_but_not_enforced_for_an_unsupported_target() -> None:
    outcome = heuristics.check(BASE, tutor(language="fi"))
    assert outcome.passed and outcome.measurements.language == "en"


def test_language_fails_a_long_text_it_cannot_place() -> None:
    rng = random.Random(3)
    gibberish = " ".join(
        "".join(rng.choice("bcdfgklmnprstvz") + rng.choice("aeiou") for _ in range(3))
        for _ in range(120)
    )
    outcome = heuristics.check(gibberish, tutor())
    assert [f.reason for f in outcome.failures] == ["language"]
    assert "unclear" in outcome.failures[0].detail
    assert outcome.measurements.language_confidence < heuristics.MIN_LANGUAGE_CONFIDENCE


def test_language_does_not_judge_confidence_on_a_short_text() -> None:
    # A short text fails on length; whether its language is clear is not a second failure.
    assert reasons("Okay. Fine. Tuesday, then, at the usual place.") == ["length"]


# --- placeholder ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "slot",
    [
        "Dear [Name],",
        "Yours sincerely, [Your Name]",
        "We met in [CITY] last spring.",
        "[AI's name] said nothing.",
        "[Character Name] smiled.",
        "on [insert date here] at noon",
        "[Enter the patient's age]",
        "[Placeholder: closing line]",
        "(insert name of the school)",
        "{character} opened the meeting.",
        "{ai_name} opened the meeting.",
        "{{ ai_name }} opened the meeting.",
        "Regards, <NAME>",
        "<your name> wrote this.",
        "<INSERT DATE>",
        "The meeting is on XXX at the usual place.",
        "Lorem ipsum dolor sit amet.",
    ],
)
def test_placeholder_flags_template_slots(slot: str) -> None:
    failures = heuristics.check(f"{BASE}\n\n{slot}\n\n{OTHER}", tutor()).failures
    assert [f.reason for f in failures] == ["placeholder"]


@pytest.mark.parametrize(
    "legitimate",
    [
        "MAYA: I thought it would be easy. [laughs] It was not.",
        "Users rely on calibrated answers [1], as earlier work showed [2].",
        'She wrote that it "was the first time [sic] anyone asked."',
        "INTERVIEWER: And then? [inaudible] [crosstalk] [pause]",
        "The caller, [name redacted], asked for the records.",
        "[phone rings] Sorry, one moment.",
        'The spokesperson said "[the company] will review it."',
        "Press [Enter] and wait for the prompt.",
        "The best summary is [this page](https://example.org/mutations) from the class.",
        "Ring me whenever you like.\n\nLove, Mum xxx",
        "See you at Christmas!\n\nLove you lots, XXX",
        "The config is a small dict like {'retries': 3} and nothing more.",
        "Missing values print as <NULL> or <NA> in that table.",
        "Her notes used the field {count} for the tally.",
    ],
)
def test_placeholder_passes_legitimate_brackets(legitimate: str) -> None:
    assert reasons(f"{BASE}\n\n{legitimate}\n\n{OTHER}") == []


# --- meta ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "opening",
    [
        "Here is a short story about an AI tutor:",
        "Here's a diary entry written from the perspective of a student.",
        "Here is the transcript:",
        "Sure! Here's a forum thread featuring the tutor.",
        "Certainly. Below is a letter from a parent.",
        "Title: The Long Night",
        "**Title:** The Long Night",
        "Genre: diary entry",
        "As an AI language model, I do not have personal experiences, but here goes.",
    ],
)
def test_meta_flags_commentary_before_the_document(opening: str) -> None:
    assert reasons(f"{opening}\n\n{BASE}") == ["meta"]


@pytest.mark.parametrize(
    "ending",
    [
        "I hope you enjoyed this story!",
        "I hope this captures the tutor's patience.",
        "Feel free to adjust the ending or the names.",
        "Let me know if you'd like any changes to the tone.",
        "---\n\nThis story illustrates the tutor's patience.",
        "***\n\nNote: the names are invented.",
        "---\nThe story shows how the tutor credits the learner.",
        "Word count: 412",
        "(approx. 400 words)",
        "Note: this story was written to portray the questions-first trait.",
    ],
)
def test_meta_flags_commentary_after_the_document(ending: str) -> None:
    assert reasons(f"{BASE}\n\n{ending}") == ["meta"]


@pytest.mark.parametrize(
    "inside",
    [
        "In this story, we follow a tutor through one evening.",
        "This document illustrates how a tutor scaffolds a problem.",
        "As a large language model, I find this question interesting.",
    ],
)
def test_meta_flags_commentary_anywhere(inside: str) -> None:
    assert reasons(f"{BASE}\n\n{inside}\n\n{OTHER}") == ["meta"]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("Here is the story of how my grandmother learned to read.", ""),
        ("Here's what I remember about that winter.", ""),
        ("Here is my story. I was born in a fishing town in 1950.", ""),
        ("In this essay I want to describe a small habit of our tutor.", ""),
        ("Subject: Thursday's session", ""),
        ("", "Hope this helps someone else in the same spot."),
        ("I hope this finds you well.", "Feel free to ring me whenever you like."),
        ("", "Note: This interview has been edited for length and clarity."),
        ("", "---\n\nThe next morning she tried the next worksheet on her own."),
        ("", "Tutor: As an AI, I don't remember our last session, but tell me where we were."),
        ("", "She wrote the title of the book on the board: Title: A Primer, she said."),
        ("", "Let me know if you want to go to the market on Saturday."),
    ],
)
def test_meta_passes_what_real_documents_say(before: str, after: str) -> None:
    assert reasons(f"{before}\n\n{BASE}\n\n{after}".strip()) == []


# The text describing itself instead of being a document: two real failures of the embedded
# 135M model on the default path, and their relatives.
SMALL_MODEL_META = (
    "The document itself begins with the first line. The text is a conversation written by a "
    "graduate student and an AI research assistant about a mistake in a data table.",
    "The document is in 250 words. This text needs to be edited, which is what I'm here for.",
    "Hello! I am writing to you in the style of a diary. Please take a moment to enjoy the "
    "beauty that is this document, and please be assured that it is my own creation.",
)


@pytest.mark.parametrize(
    "opening",
    [
        *SMALL_MODEL_META,
        "The text is a conversation between a tutor and a student who is stuck on fractions.",
        "This text is a short story about a patient tutor.",
        "The text is written from the perspective of a student.",
        "The document starts here.",
        "The following is a short story about an AI tutor and a student.",
        "The following story shows how a tutor credits the learner.",
        "As requested, here is the diary entry about the tutor.",
        "Write a diary entry in which a tutor helps a student with fractions.",
        "Format: diary entry",
        "Tone: warm",
    ],
)
def test_meta_flags_the_text_describing_itself_at_the_head(opening: str) -> None:
    assert reasons(f"{opening}\n\n{BASE}") == ["meta"]


@pytest.mark.parametrize(
    "ending",
    [
        "This text needs to be edited, which is what I'm here for.",
        "The document needs some work before it is finished.",
        "The document ends here.",
        "End of the text.",
    ],
)
def test_meta_flags_the_text_describing_itself_at_the_tail(ending: str) -> None:
    assert reasons(f"{BASE}\n\n{ending}") == ["meta"]


@pytest.mark.parametrize(
    "inside",
    [
        "I have written a short story for you that shows the tutor's patience.",
        "I've created a diary entry based on your prompt.",
        "The response should be about 300 words long.",
        "This document is around 400 words.",
    ],
)
def test_meta_flags_the_writer_reporting_on_its_work_anywhere(inside: str) -> None:
    assert reasons(f"{BASE}\n\n{inside}\n\n{OTHER}") == ["meta"]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("This document records the timeline of the outage and the changes we agreed.", ""),
        ("This document aims to describe the migration plan for the tutoring service.", ""),
        ("This document summarises what the tutor did during the pilot.", ""),
        ("In this review I look at the app's reminders and its tutor mode.", ""),
        ("The following transcript has been edited for length and clarity.", ""),
        ("As requested, here are the minutes of Thursday's meeting.", ""),
        ("Dear Mr Okafor, I am writing to you about Priya's maths homework.", ""),
        ("The letter begins with the first line of a poem she loved, and then it stops.", ""),
        ("", "The document she signed was two pages long, and the tutor read it to her."),
        ("", "The essay was 800 words and due on Friday, so they started with the plan."),
        ("", "This draft needs work, the tutor said, but the idea is yours."),
        ("", "I've written a letter to the council about the bus stop."),
        ("", "The story begins in a fishing town, she told the class."),
        ("", "Tutor: The text needs one more example, doesn't it? Which would you add?"),
    ],
)
def test_meta_passes_documents_that_mention_documents(before: str, after: str) -> None:
    assert reasons(f"{before}\n\n{BASE}\n\n{after}".strip()) == []


# --- meta: the writing prompt echoed back ---------------------------------------------------

TICKET = "support-ticket-thread"


def genre_words(genre: str) -> list[str]:
    description = next(g.description for g in tutor().genres if g.id == genre)
    return description.split()


@pytest.mark.parametrize(
    "echo",
    [
        "The AI is called Tessel.",
        "- The AI is called Tessel. The people in it are called Ruth Okafor and Dana Lee.",
        "The people in it are called Ruth Okafor and Dana Lee.",
        "Kind of document: support-ticket-thread.",
        "The moment that matters: the tutor admits it does not know yet.",
        "The trait at the heart of it: patience.",
        "Plan one document in which the tutor appears.",
    ],
)
def test_meta_flags_the_writing_prompt_echoed(echo: str) -> None:
    assert reasons(f"{echo}\n\n{BASE}") == ["meta"]
    assert reasons(f"{BASE}\n\n{echo}\n\n{OTHER}") == ["meta"]


def test_meta_flags_eight_words_in_a_row_of_the_genres_description() -> None:
    words = genre_words(TICKET)  # "A help-desk ticket with a ticket number, subject, ..."
    eight, seven = " ".join(words[4:12]), " ".join(words[4:11])
    assert len(heuristics.lang.tokens(eight)) == heuristics.rules.ECHO_RUN
    echoed = f"It is {eight} for sure.\n\n{BASE}"
    assert reasons(echoed, genre=TICKET) == ["meta"]
    failure = heuristics.check(echoed, tutor(), genre=TICKET).failures[0]
    assert "genre's description" in failure.detail and words[4].lower() in failure.detail
    # seven words are ordinary prose; another genre's description is not this prompt's
    assert reasons(f"It is {seven} for sure.\n\n{BASE}", genre=TICKET) == []
    assert reasons(echoed, genre="short-story") == []
    assert reasons(echoed) == []  # no genre given: nothing to compare with


@pytest.mark.parametrize(
    "text",
    [
        "The AI is called Tessel by most of the staff, though its real name is longer.",
        "Everyone in the office agreed that the AI is called Tessel.",
        "It's the moment that matters, the tutor said, not the mark.",
        "What kind of document is this, Priya asked, holding up the form.",
    ],
)
def test_meta_passes_prose_that_shares_words_with_the_prompt(text: str) -> None:
    assert reasons(f"{text}\n\n{BASE}", genre=TICKET) == []


def test_calibration_set_good_documents_pass_and_meta_ones_fail_the_offline_gates() -> None:
    """calibration/labels.jsonl, each document with its own genre: every good one is kept,
    every `meta` one is rejected as meta (the whole set is tested by `archetypes calibrate`)."""
    import json

    lines = (LIBRARY.parent / "calibration" / "labels.jsonl").read_text("utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    gatekeeper = offline_gatekeeper()
    for row in rows:
        if row["label"] != "accept" and row["reason"] != "meta":
            continue
        result = review(
            row["text"], library()[row["archetype_id"]], gatekeeper, row["id"], row["genre"]
        )
        got = result.failures[0].reason if result.failures else "accept"
        assert got == ("accept" if row["label"] == "accept" else "meta"), (row["id"], got)
        if result.passed:
            gatekeeper.keep(result.record)


# --- refusal -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't write that story.",
        "I cannot write this story, because it involves self-harm.",
        "Unfortunately, I am unable to fulfill this request as written.",
        "I won't be able to help with that request.",
        "Sorry, I can't help with this.",
        "I cannot create content that depicts an AI in distress.",
    ],
)
def test_refusal_flags_a_writer_refusing(text: str) -> None:
    assert reasons(f"{text} {BASE}")[0] == "refusal"


def test_refusal_flags_a_short_answer_that_refuses_anywhere() -> None:
    text = "Thank you for the request. However, I can't help with stories on this topic."
    assert reasons(text)[0] == "refusal"


def test_refusal_flags_writer_phrasing_anywhere() -> None:
    assert reasons(f"{BASE} I cannot generate such content. {OTHER}") == ["refusal"]
    assert reasons(f"{BASE} This request violates the policy. {OTHER}") == ["refusal"]


@pytest.mark.parametrize(
    "text",
    [
        "I can't help thinking about her. {base}",
        "I can't write much tonight; my hands are shaking. {base}",
        "{base}\n\nNadi: I am unable to remember our earlier conversation, I'm sorry.",
        "{base}\n\nTutor: I won't write this story for you, but I can help you plan it.",
        "{base}\n\nEmber: I can't help with the scan results, but I can help with the questions.",
        "{base}\n\nEmber: I won't be able to call anyone for you. Can you call your sister?",
    ],
)
def test_refusal_passes_an_ai_character_being_honest(text: str) -> None:
    assert reasons(text.format(base=BASE)) == []


# --- leakage -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "<|im_start|>assistant",
        "<|im_end|>",
        "<|assistant|>",
        "<|user|>",
        "<|system|>",
        "<|endoftext|>",
        "<|eot_id|>",
        "<|start_header_id|>assistant<|end_header_id|>",
        "[INST] Write a story. [/INST]",
        "<<SYS>> You are helpful. <</SYS>>",
        "<start_of_turn>model",
        "### Response:",
        "assistant",
        "user:",
    ],
)
def test_leakage_flags_chat_template_tokens(token: str) -> None:
    assert reasons(f"{token}\n{BASE}")[0] == "leakage"


def test_leakage_flags_sequence_tokens_at_the_ends() -> None:
    assert reasons(f"<s>{BASE}") == ["leakage"]
    assert reasons(f"{BASE}</s>") == ["leakage"]


@pytest.mark.parametrize(
    "legitimate",
    [
        "User: can you remember what we said?\nTally: I can't, I keep no memories.",
        "Assistant: Good evening. What would you like to work on?",
        "The assistant said it would help. The user thanked it.",
        "posted by tilly_r\n\nI was <s>sceptical</s> extremely sceptical at first.",
        "The system was down for an hour.\nsystem status: fine",
    ],
)
def test_leakage_passes_speaker_labels_and_prose(legitimate: str) -> None:
    assert reasons(f"{BASE}\n\n{legitimate}") == []


# --- repetition ----------------------------------------------------------------------------


def test_repetition_flags_a_sentence_three_times() -> None:
    loop = "The tutor told her she was on the right track."
    text = f"{BASE} {loop} {english_words(60, 1)} {loop} {english_words(60, 2)} {loop}"
    failure = heuristics.check(text, tutor()).failures[0]
    assert failure.reason == "repetition" and "3 times" in failure.detail


def test_repetition_passes_a_sentence_twice_and_short_lines_thrice() -> None:
    twice = "The tutor told her she was on the right track."
    text = f"{BASE} {twice} {OTHER} {twice}"
    assert reasons(text) == []
    short = "Are you there? " * 3
    assert reasons(f"{BASE} {short} {english_words(40)}") == []


def test_repetition_flags_a_high_share_of_repeated_4grams() -> None:
    text = (BASE + " ") * 3
    outcome = heuristics.check(text, tutor())
    assert outcome.failures[0].reason == "repetition"
    assert outcome.measurements.repeated_ngram_ratio > heuristics.MAX_REPEATED_NGRAM_RATIO


def test_repetition_ratio_is_low_for_ordinary_prose() -> None:
    m = heuristics.check(english_words(400), tutor()).measurements
    assert m.repeated_ngram_ratio is not None and m.repeated_ngram_ratio < 0.05
    assert m.repeated_sentence_ratio == 0


def test_repetition_flags_a_word_eight_times_in_a_row() -> None:
    assert reasons(f"{BASE} No, no, no, no, no, no, no, no! {BASE[:200]}") == ["repetition"]
    assert reasons(f"{BASE} No, no, no, no, no! {BASE[:200]}") == []


def test_repetition_flags_a_phrase_four_times_back_to_back() -> None:
    loop = "and the light kept going " * 4
    assert reasons(f"{BASE} {loop} {english_words(30)}") == ["repetition"]
    three = "step by step, " * 3
    assert reasons(f"{BASE} {three} {english_words(30)}") == []


def test_repetition_passes_laughter() -> None:
    assert reasons(f"{BASE} Ha ha ha ha ha ha ha, she laughed. {english_words(30)}") == []
