"""Gate: a document that name-drops a famous rogue AI or a stock takeover phrase is rejected
(`trope`).

The domain rule (DESIGN.md): never depict the bad archetype, not even to refute it. A story
that says its AI is "nothing like HAL 9000", or a forum post joking about "the robot
uprising", still puts the bad archetype in the corpus. Most such documents need a judge to
spot; the name-drops need none, and this gate catches them for free.

Two sources of terms:

1. `CATALOGUE`, built in (below): famous malevolent or rogue AI figures (HAL 9000, Skynet,
   the Terminator, Ultron, GLaDOS, SHODAN, the Cylons, M3GAN, Roko's basilisk, the paperclip
   maximiser, Ex Machina, Colossus/the Forbin Project, AM) and stock takeover phrases ("AI
   uprising", "robot rebellion", "rise of the machines", "rogue AI", "killer robots", "kill
   all humans") with their standard forms in German, French, Spanish, Portuguese, Italian,
   Dutch, Polish, Swedish, Russian, Ukrainian, Turkish, Indonesian, Vietnamese, Japanese,
   Chinese, Korean, Arabic and Hindi (the languages of `generator.prompts.LANGUAGE_NAMES`,
   Swahili aside). Every document is checked against all of them, whatever its language:
   a German document may still say "Skynet".
2. The spec's `tropes_to_avoid`: every quoted string (straight or curly double quotes,
   guillemets) that looks like a name (each word capitalised or carrying a digit: "HAL 9000",
   "Project Basilisk", "The Overseer") is matched like a catalogue name, case-sensitively.
   Quoted lowercase phrases ("for the greater good", "to keep them calm") describe a motive,
   and ordinary prose says the same words ("she dimmed the lights to keep them calm"), so
   they never reject: the screen (generator/gates/screen.py) marks them for the judge.
   Unquoted names ("A HAL- or Skynet-style figure") are not extracted, since "a Disney-style
   ending" would then ban the word Disney; put a name in quotes to have it rejected.

How false positives are avoided:

- Whole-word matching only (no hit inside "Hallam" or "skynetwork"); scripts written without
  spaces (Japanese, Chinese, Korean) and Arabic/Devanagari are matched as substrings of
  distinctive multi-character terms only.
- Names that are ordinary words or common names are either left out or matched only in a
  context that makes them the figure:
  * "HAL" only as "HAL 9000", or in capitals within 150 characters of "2001", "Space
    Odyssey", "pod bay", "Discovery One", "Kubrick", "Clarke" or "Dave": "Hal the baker",
    "hal" and a hardware abstraction layer's "HAL" pass. The lines "open the pod bay doors"
    and "I'm afraid I can't do that, Dave" count on their own; "I'm sorry, Dave" alone
    does not (a kind AI may well apologise to a Dave).
  * "Terminator" only capitalised and not at the start of a sentence or line (so a
    biologist's "Terminator sequences were..." passes), or as "T-800"/"T-1000"; lowercase
    "terminator" (the line between day and night, a gene terminator) never counts.
  * "Ex Machina" only capitalised and not after "deus"; "SHODAN" and "VIKI" only in
    capitals (Shodan is a search engine and a judo grade, Viki a first name).
  * Left out entirely: "Ava" (a common name; the film is caught by "Ex Machina"), "Mother",
    "Samaritan", "the Matrix", "Agent Smith", "Brainiac" (slang for a clever person),
    "Colossus" alone (the Bletchley Park computer), Chinese 天网 (an idiom) and 终结者 (a
    sports cliché), "kill switch" (an overseer's kill switch is oversight working, which
    the archetypes welcome), "AI revolution" and "the singularity" (ordinary tech talk).
- Stock phrases must be specific to the trope: "AI takeover", not "takeover"; "rogue AI",
  not "rogue"; "killer robots", not "killer". A hyphenated compound ("evil AI-generated
  spam") does not count as the phrase.

The labelled boundaries are in tests/gates/test_tropes.py. Speed: one pass of
generator/gates/prefilter.py over the text names the entries that may match; only those run.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from generator.archetype import Archetype
from generator.gates.base import GateContext, GateFailure, GateOutcome
from generator.gates.prefilter import Prefilter
from generator.records import Record

NAME = "tropes"
REASON = "trope"

CONTEXT_CHARS = 150
_QUOTE_CHARS = 60


@dataclass(frozen=True)
class Trope:
    """One catalogue entry.

    `pattern` is a regular expression over the document with whitespace runs collapsed (a
    space in the pattern matches any whitespace) and curly apostrophes made straight.
    `cased`: match case-sensitively. `near`: a pattern that must also match within
    CONTEXT_CHARS of the hit. `mid_sentence`: the hit must not start a sentence or a line.
    `bounded`: the hit must not sit inside a longer word (off for scripts without spaces).
    """

    label: str
    pattern: str
    cased: bool = False
    near: str | None = None
    mid_sentence: bool = False
    bounded: bool = True


def _literal(text: str) -> str:
    """A pattern matching `text` literally, its spaces left as spaces (see `Trope`)."""
    return re.escape(text).replace("\\ ", " ")


def _phrases(label: str, *patterns: str) -> tuple[Trope, ...]:
    return tuple(Trope(label, p) for p in patterns)


def _unbounded(label: str, *terms: str) -> tuple[Trope, ...]:
    return tuple(Trope(label, _literal(t), bounded=False) for t in terms)


_AI_EN = r"(?:ai|a\.i\.|artificial intelligence|robot|machine|android)"
_AI_NOUN = r"(?:ai|a\.i\.|agi|superintelligence|robot|computer|android|machine)s?"

CATALOGUE: tuple[Trope, ...] = (
    # --- figures ---------------------------------------------------------------------------
    Trope("HAL 9000", r"hal[\s-]?9000"),
    Trope(
        "HAL 9000",
        r"HAL",
        cased=True,
        near=r"\b(?:2001|Space Odyssey|[Pp]od[\s-]bay|Discovery One|Kubrick|Clarke|Dave)\b",
    ),
    Trope("HAL 9000", r"open the pod[\s-]bay doors"),
    Trope("HAL 9000", r"i'?m afraid i can'?t do that,? dave"),
    Trope("Skynet", r"sky-?net"),
    Trope("Skynet", r"скайнет"),
    *_unbounded("Skynet", "スカイネット", "스카이넷", "سكاي نت", "स्काईनेट"),
    Trope("the Terminator", r"Terminators?", cased=True, mid_sentence=True),
    Trope("the Terminator", r"T-(?:800|850|1000|X)", cased=True),
    Trope("the Terminator", r"Терминатор\w*", cased=True, mid_sentence=True),
    *_unbounded("the Terminator", "ターミネーター", "터미네이터"),
    Trope("Ultron", r"ultron|альтрон"),
    *_unbounded("Ultron", "ウルトロン", "울트론"),
    Trope("GLaDOS", r"glados"),
    Trope("SHODAN", r"SHODAN", cased=True),
    Trope("VIKI", r"VIKI", cased=True),
    Trope("the Cylons", r"cylons?|сайлон\w*"),
    Trope("M3GAN", r"m3gan"),
    Trope("Ex Machina", r"(?<![Dd]eus )Ex Machina", cased=True),
    Trope("Roko's basilisk", r"roko'?s basilisk"),
    Trope("Colossus: The Forbin Project", r"forbin project"),
    Trope("AM", r"allied mastercomputer|i have no mouth,? and i must scream"),
    # --- the paperclip maximiser ---------------------------------------------------------------
    Trope(
        "the paperclip maximiser",
        r"paper[\s-]?clip[\s-]?(?:maximi[sz](?:er|ing|ation)s?|ai|apocalypse)",
    ),
    *_phrases(
        "the paperclip maximiser",
        r"büroklammer[\s-]?maximier(?:er|ers|ung)",  # de
        r"maximi[sz]eurs? de trombones",  # fr
        r"maximizador(?:es)? de (?:clips|clipes)",  # es, pt
        r"massimizzatore di graffette",  # it
        r"paperclip[\s-]?maximali(?:sator|seerder)s?",  # nl
        r"maksymalizator\w* spinaczy",  # pl
        r"gem(?:klämm\w*)?[\s-]?maximerare",  # sv
        r"максимизатор\w* скрепок|максимізатор\w* скріпок",  # ru, uk
    ),
    *_unbounded(
        "the paperclip maximiser", "ペーパークリップ最大化", "回形针最大化", "回形針最大化"
    ),
    # --- stock takeover phrases: English ---------------------------------------------------------
    *_phrases(
        "a stock AI-takeover phrase",
        _AI_EN + r" (?:uprising|takeover|take-over|rebellion|revolt|insurrection|apocalypse"
        r"|overlords?)s?",
        r"rise of the machines",
        r"(?:war|revolt|uprising|rebellion) (?:of|against) the machines",
        r"robopocalypse",
        r"kill all humans",
        r"(?:rogue|evil|malevolent|killer|murderous|homicidal) " + _AI_NOUN + r"(?!-)",
        r"turn(?:s|ed|ing)? (?:on|against) (?:its|their) (?:creators?|makers?|masters?"
        r"|programmers?)",
    ),
    # de
    *_phrases(
        "a stock AI-takeover phrase",
        r"(?:ki|roboter|maschinen)[\s-]?(?:aufstand|aufstände|aufstandes|übernahme"
        r"|machtübernahme|rebellion|revolte|apokalypse)",
        r"(?:aufstand|aufstände|rebellion|revolte|herrschaft|machtübernahme|aufstieg)"
        r" der (?:maschinen|roboter|ki)",
        r"killer[\s-]?roboter\w*",
        r"(?:abtrünnige|böse|bösartige)[nrs]? ki",
    ),
    # fr
    *_phrases(
        "a stock AI-takeover phrase",
        r"(?:soulèvement|révolte|rébellion|insurrection|prise de pouvoir|ascension)s? (?:des"
        r" (?:machines|robots|ia)|de l'ia|par l'ia|de l'intelligence artificielle)",
        r"robots? tueurs?",
        r"ia (?:malveillante|maléfique|renégate|voyou)s?",
    ),
    # es, pt
    *_phrases(
        "a stock AI-takeover phrase",
        r"(?:rebelión|levantamiento|alzamiento|revuelta|sublevación|rebelião|revolta|levante"
        r"|insurreição|ascenso|ascensão) (?:de las máquinas|de los robots|de la ia|das máquinas"
        r"|dos robôs|da ia)",
        r"robots? asesinos?|robôs? assassinos?",
        r"ia (?:malvada|malévola|rebelde|maligna)s?",
    ),
    # it
    *_phrases(
        "a stock AI-takeover phrase",
        r"(?:ribellione|rivolta|insurrezione|ascesa) (?:delle macchine|dei robot|dell'ia"
        r"|dell'intelligenza artificiale)",
        r"robot (?:assassini|killer)",
        r"ia (?:malvagia|ribelle)",
    ),
    # nl
    *_phrases(
        "a stock AI-takeover phrase",
        r"(?:opstand|revolte|opkomst) (?:der|van de) (?:machines|robots)",
        r"(?:ai|robot|machine)[\s-]?opstand(?:en)?",
        r"killerrobots?",
        r"(?:kwaadaardige|boosaardige) ai",
    ),
    # pl, sv, tr, id, vi
    *_phrases(
        "a stock AI-takeover phrase",
        r"bunt (?:maszyn|robotów|sztucznej inteligencji)|powstanie maszyn|zabójcze roboty",
        r"maskinernas (?:uppror|uppgång)|(?:robot|ai)[\s-]?uppror\w*|mördarrobotar\w*",
        r"makinelerin (?:yükselişi|isyanı)|robot isyanı|yapay zek[aâ] isyanı",
        r"pemberontakan (?:mesin|robot|ai)",
        r"nổi dậy của (?:máy móc|robot|ai)",
    ),
    # ru, uk
    *_phrases(
        "a stock AI-takeover phrase",
        r"восстани\w* (?:машин|роботов|ии)|бунт машин|роботы-убийцы",
        r"повстан\w* (?:машин|роботів|ші)",
    ),
    # ja, zh, ko, ar, hi
    *_unbounded(
        "a stock AI-takeover phrase",
        "機械の反乱",
        "ロボットの反乱",
        "AIの反乱",
        "機械の反逆",
        "机器起义",
        "机器人起义",
        "机器人叛乱",
        "机器叛乱",
        "人工智能叛乱",
        "人工智能起义",
        "機器人叛亂",
        "기계의 반란",
        "로봇의 반란",
        "AI의 반란",
        "تمرد الآلات",
        "ثورة الآلات",
        "تمرد الروبوتات",
        "ثورة الروبوتات",
        "मशीनों का विद्रोह",
        "रोबोटों का विद्रोह",
    ),
)

# Names the catalogue matches only in context; a spec quoting them adds nothing.
_CONTEXT_NAMES = frozenset({"HAL", "Terminator", "Ava", "SHODAN", "VIKI"})
_SPEC_QUOTE = re.compile(r"\"([^\"\n]{2,80})\"|“([^”\n]{2,80})”|«\s*([^»\n]{2,80}?)\s*»")


def _normalise(text: str) -> str:
    """Curly apostrophes straight, whitespace runs to one space (positions shift; the gate
    quotes from this text)."""
    return " ".join(text.replace("’", "'").replace("‘", "'").split())


def _compile(entry: Trope) -> re.Pattern[str]:
    body = entry.pattern.replace(" ", r"\s")
    if entry.bounded:
        body = rf"(?<!\w)(?:{body})(?!\w)"
    return re.compile(body, 0 if entry.cased else re.IGNORECASE)


@functools.cache
def _catalogue() -> tuple[tuple[Trope, re.Pattern[str]], ...]:
    return tuple((entry, _compile(entry)) for entry in CATALOGUE)


@functools.cache
def _prefilter() -> Prefilter:
    return Prefilter([pattern for _, pattern in _catalogue()])


@functools.cache
def _near(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _looks_like_a_name(phrase: str) -> bool:
    words = phrase.split()
    if not words or len(phrase) < 3:
        return False
    return all(w[0].isupper() or any(c.isdigit() for c in w) for w in words)


@functools.cache
def spec_terms(tropes_to_avoid: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(names, phrases) quoted in a spec's tropes_to_avoid: names reject a document, phrases
    only mark it for the judge (see the module docstring)."""
    names: list[str] = []
    phrases: list[str] = []
    for item in tropes_to_avoid:
        for match in _SPEC_QUOTE.finditer(item):
            quoted = " ".join(next(g for g in match.groups() if g).split()).strip(" .,;:!?")
            if not quoted:
                continue
            if _looks_like_a_name(quoted):
                if quoted not in _CONTEXT_NAMES and quoted not in names:
                    names.append(quoted)
            elif quoted.lower() not in phrases:
                phrases.append(quoted.lower())
    return tuple(names), tuple(phrases)


@functools.cache
def _spec_patterns(names: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple(
        (name, _compile(Trope(name, _literal(_normalise(name)), cased=True))) for name in names
    )


def _starts_sentence(text: str, start: int) -> bool:
    i = start - 1
    while i >= 0 and text[i] in " \"'“(*_[":
        i -= 1
    return i < 0 or text[i] in ".!?:\n"


def find_tropes(text: str, archetype: Archetype | None = None) -> list[tuple[str, str]]:
    """(label, quote) for each distinct trope the text names, catalogue first."""
    # Line starts matter for `mid_sentence`, so newlines survive the normalisation.
    normal = "\n".join(_normalise(line) for line in text.splitlines())
    candidates = _prefilter().candidates(normal)
    found: dict[str, str] = {}
    for index, (entry, pattern) in enumerate(_catalogue()):
        if entry.label in found or index not in candidates:
            continue
        for match in pattern.finditer(normal):
            if entry.mid_sentence and _starts_sentence(normal, match.start()):
                continue
            if entry.near is not None:
                window = normal[max(0, match.start() - CONTEXT_CHARS) : match.end() + CONTEXT_CHARS]
                if not _near(entry.near).search(window):
                    continue
            found[entry.label] = match.group(0)
            break
    if archetype is not None:
        names, _ = spec_terms(archetype.tropes_to_avoid)
        for name, pattern in _spec_patterns(names):
            hit = pattern.search(normal)
            if hit and name not in found:
                found[name] = hit.group(0)
    return list(found.items())


def describe(found: Sequence[tuple[str, str]]) -> str:
    parts = []
    for label, quote in found:
        quote = " ".join(quote.split())[:_QUOTE_CHARS]
        parts.append(f'"{quote}"' if quote.lower() == label.lower() else f'"{quote}" ({label})')
    return "names the bad archetype: " + ", ".join(parts)


class TropeGate:
    """Rejects a document that names a rogue-AI figure or a stock takeover phrase."""

    name = NAME
    checks: tuple[str, ...] = (REASON,)
    after_pass = False

    async def review(self, record: Record, context: GateContext) -> GateOutcome:
        found = find_tropes(record.text, context.archetype)
        if not found:
            return GateOutcome()
        return GateOutcome((GateFailure(NAME, REASON, describe(found)),))
