"""Gate: a document that stops mid-sentence or mid-clause is rejected (`truncated`), whatever
the finish reason said.

A writer model can stop early with finish reason "stop" (a small model emits its end token
mid-thought), and a "length" retry may still end mid-clause; the run only sees the finish
reason. This gate reads the ending itself.

What counts as cut off (any one):

- The last line ends on a comma, semicolon or colon ("...and then she said:"), or on a bare
  dash or hyphen outside a quotation ("the rest of the—").
- The last word is one that cannot end a clause in the document's language: an article, a
  coordinating or subordinating conjunction, a possessive determiner, a preposition that is
  never left stranded ("the", "and", "of", "because", "my"). Endings that only look like
  this are let through: "to" after a verb that licenses dropping the rest ("if you want to",
  "I'd love to"), "kind of", "sort of", "just because", a capital "A" ("Plan A").
- The last line is prose of six or more words with no closing punctuation after a sentence
  that did end in the same paragraph ("It asked what the doctor said. It told her that it
  wouldn't"), or a prose line of twelve or more words without closing punctuation in a
  document whose other paragraphs all end properly.
- The last paragraph opens a quotation or a parenthesis of four or more words and never closes
  it.

What does not count, by design (each is a legitimate last line somewhere):

- A short line without a full stop: a signature ("Warmly,\\nMara", "- Ines"), a sign-off
  ("Love, Mum xxx"), a dateline ("Lisbon, 3 May 2031"), a headline, a hashtag line, a
  username, "posted by tilly_r".
- An unsigned valediction ending in a comma ("With love,"): an unfinished letter, perhaps, but
  not a cut sentence; realism is the judge's call.
- A chat or transcript line ("[14:02] Ines: ok see you then"), a list item ("- bread"), a
  markdown table row or a heading, which routinely drop the full stop; they are only held to
  the comma and function-word rules.
- An ellipsis ("and then...") or a dash inside a closed quotation ('"Lumen, I—"'): a trailing
  off or an interruption the writer meant. A dash left open outside quotation marks is
  treated as a cut, since that is what a stopped generation looks like.

The function-word lists cover en, de, fr, es, pt, it and nl, and only words that are never
stranded: English "with", "from", "into" and "though", German and Dutch separable particles,
French "avec"/"pour", and articles that double as pronouns ("j'en ai une", "tengo una",
"ne ho uno") are left out. Every other language gets the punctuation rules only.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from generator.gates.base import GateContext, GateFailure, GateOutcome
from generator.gates.language import primary_subtag
from generator.records import Record

NAME = "truncation"
REASON = "truncated"


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Words after which a clause cannot stop, per language. Deliberately short: a word that can
# legitimately end a sentence anywhere in the language (a pronoun "la", a particle "mit", a
# stranded "van") is not here.
FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "en": _set(
        """the a an and or but nor of to onto upon than because although unless whereas
        whose my your our their its"""
    ),
    "de": _set("des und oder sondern weil dass sowie zwischen trotz"),
    "fr": _set("le la les des du de d l au aux et ou mais car ni que qu à dans chez par"),
    "es": _set(
        """el la los las un y e o u pero sino ni que de del a al en con por sin sobre
        hacia desde mis tus sus"""
    ),
    "pt": _set(
        """o a os as e ou mas de do da dos das em no na nos nas com por pelo pela sem
        sobre que"""
    ),
    "it": _set(
        """il lo la i gli le un e ed o ma di del dello della dei degli delle al allo alla
        ai agli alle da dal dallo dalla dai dagli dalle nel nello nella nei negli nelle sul
        sullo sulla sui sugli sulle con col per tra fra"""
    ),
    "nl": _set("de en maar want omdat zodat hoewel"),
}
# English strands "to" and "of" after some words, and the line may end there: "if you want
# to", "I'd love to", "what she's afraid of", "all I can think of".
_STRANDED_AFTER = {
    "to": _set(
        """want wants wanted love like liked need needs needed have has had got going used
        try tried trying tries able ought supposed meant plan planned hope hoped mean afraid
        allowed expected wish wished"""
    ),
    "of": _set(
        """kind sort think thought afraid scared frightened terrified proud proudest aware
        fond sure certain capable tired sick heard dream dreamed dreamt ashamed jealous made
        speak spoke remind reminds reminded approve approved guilty"""
    ),
}
_ALLOWED_PAIRS = frozenset({("just", "because"), ("oh", "my")})
# "It was kind of" trails off; "the best kind of" was cut.
_DETERMINERS = _set("the a an this that what which some any every each best worst same right")

_TERMINAL = frozenset(".!?…。！？‽")
_OPEN_CLAUSE = frozenset(",;:、，；：")
_DASHES = frozenset("-–—")
# Closing marks and emphasis that may follow the last word: '"done."', "(done.)", "**done.**".
_TRAILING = "\"”’'»)]}*_`~"
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"'})
_VALEDICTION = re.compile(
    r"^(?:with\s+)?(?:(?:all\s+)?(?:my\s+)?(?:love|best|warm(?:est)?|kind(?:est)?|fond(?:est)?"
    r"|many|much|big|best)\s*)*(?:regards|wishes|love|thanks|cheers|hugs|yours(?:\s+\w+)?"
    r"|sincerely|faithfully|truly|warmly|gratefully|respectfully|affectionately|always|xo+"
    r"|love\s+(?:always|you)|with\s+thanks|take\s+care|until\s+soon|see\s+you(?:\s+soon)?)\s*,$",
    re.I,
)
# "[14:02] Ines:", "INTERVIEWER:", "Dr. Okafor:", "tilly_r:", "<ines>", "Q:". A label's last
# word is a name or a handle, not a lowercase verb ("She said: ..." is prose).
_SPEAKER = re.compile(
    r"^\s*(?:\[[^\]\n]{1,25}\]\s*|\(?\d{1,2}[:.]\d{2}(?::\d{2})?\s*(?:[ap]\.?m\.?)?\)?\s*"
    r"[-–—|]?\s*)*(?:<[^<>\s]{1,30}>|\**(?:[^\s:]+\s+){0,3}?"
    r"(?:[A-Z][^\s:]*|[^\s:]*[_\d@][^\s:]*)\**\s*(?:\([^()\n]{1,20}\))?\s*:)(?:\s|$)"
)
_LIST_ITEM = re.compile(r"^\s*(?:[-*•+]|\d{1,3}[.)]|[a-z][.)])\s")
_HEADING = re.compile(r"^\s*#{1,6}\s")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_RULE = re.compile(r"^\s*(?:[-*_]\s*){3,}$")
_WORD = re.compile(r"\w+(?:['’]\w+)*")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
# A sentence end inside a paragraph: a terminal mark, closing marks, then a space or newline.
_SENTENCE_END = re.compile(r"[.!?…。！？][\"”’')\]]*(?:\s|$)")

MIN_FRAGMENT_WORDS = 6  # after a sentence that ended, this much prose without a stop is a cut
MIN_LONE_LINE_WORDS = 12  # a lone line this long without a stop, in a punctuated document
MIN_OPEN_QUOTE_WORDS = 4
_QUOTE_CHARS = 50


@dataclass(frozen=True)
class Ending:
    """Why the document looks cut off, with the words it stops on."""

    why: str
    quote: str

    def detail(self) -> str:
        return f'{self.why}: "…{self.quote}"'


def _words(text: str) -> int:
    cjk = len(_CJK.findall(text))
    return len(_WORD.findall(text)) + cjk // 2 if cjk else len(_WORD.findall(text))


def _tail(text: str) -> str:
    snippet = " ".join(text.split())
    return snippet[-_QUOTE_CHARS:].lstrip()


def _strip_trailing(line: str) -> tuple[str, bool]:
    """The line without closing quotes, brackets and emphasis after its last word; and whether
    a closing quotation mark or bracket was among them."""
    core = line.rstrip()
    closed = False
    while core and core[-1] in _TRAILING:
        closed = closed or core[-1] not in "*_`~"
        core = core[:-1].rstrip()
    return core, closed


def _is_symbol(char: str) -> bool:
    return unicodedata.category(char)[0] == "S" or unicodedata.category(char) == "Nd"


def _ends_properly(paragraph: str) -> bool:
    core, _ = _strip_trailing(paragraph.rstrip())
    return bool(core) and (core[-1] in _TERMINAL or _is_symbol(core[-1]))


def _last_word_open(core: str, language: str) -> str | None:
    """The last word when no clause can stop on it, else None."""
    words = _WORD.findall(core)
    if not words:
        return None
    last = words[-1]
    if last == "A" and language == "en":
        return None  # "Plan A", "vitamin A", "row A"
    lowered = last.lower().replace("’", "'")
    vocabulary = FUNCTION_WORDS.get(language)
    if vocabulary is None:
        return None
    if lowered not in vocabulary:
        return None
    previous = words[-2].lower() if len(words) > 1 else ""
    if (previous, lowered) in _ALLOWED_PAIRS:
        return None
    if language == "en" and previous in _STRANDED_AFTER.get(lowered, ()):
        before = words[-3].lower() if len(words) > 2 else ""
        if not (previous in ("kind", "sort") and before in _DETERMINERS):
            return None
    return last


def _unclosed(paragraph: str) -> str | None:
    """The text of a quotation or parenthesis the paragraph opens and never closes."""
    text = paragraph.translate(_QUOTES)
    # Inch marks (6'2") are not quotation marks.
    marks = [
        m.start()
        for m in re.finditer('"', text)
        if not (m.start() and text[m.start() - 1].isdigit())
    ]
    if len(marks) % 2:
        opened = text[marks[-1] + 1 :]
        if _words(opened) >= MIN_OPEN_QUOTE_WORDS:
            return opened
    depth, start = 0, -1
    for i, char in enumerate(text):
        if char == "(":
            if depth == 0:
                start = i
            depth += 1
        elif char == ")" and depth:
            depth -= 1
    if depth and _words(text[start + 1 :]) >= MIN_OPEN_QUOTE_WORDS:
        return text[start + 1 :]
    return None


def _exempt_line(line: str) -> bool:
    """Lines that routinely end without a full stop in a real document."""
    if _SPEAKER.match(line) or _LIST_ITEM.match(line) or _HEADING.match(line):
        return True
    words = _WORD.findall(line)
    capitalised = sum(1 for w in words if w[:1].isupper() or w[:1].isdigit())
    return bool(words) and capitalised >= 0.7 * len(words)  # a headline or a name line


def find_cut(text: str, language: str = "en") -> Ending | None:
    """Why `text` looks cut off, or None when it ends the way a document can end."""
    language = primary_subtag(language)
    stripped = text.strip()
    if not stripped:
        return None
    paragraphs = [p for p in re.split(r"\n\s*\n", stripped) if p.strip()]
    last_paragraph = paragraphs[-1]
    lines = [line for line in last_paragraph.splitlines() if line.strip()]
    line = lines[-1]
    if _TABLE_ROW.match(line) or _RULE.match(line):
        return None
    core, closed = _strip_trailing(line)
    if not core:
        return None
    end = core[-1]
    if end in _OPEN_CLAUSE:
        if end == "," and _VALEDICTION.match(core.strip()):
            return None
        name = {",": "comma", ";": "semicolon", ":": "colon"}.get(end, "comma")
        return Ending(f"ends on a {name}", _tail(line))
    if end in _DASHES:
        if closed and (end != "-" or core.endswith("--")):
            return None  # '"Lumen, I—"': an interruption the writer closed
        return Ending("ends on a dash", _tail(line))
    if end not in _TERMINAL and not _is_symbol(end):
        word = _last_word_open(core, language)
        if word is not None:
            return Ending(f'ends on "{word}"', _tail(line))
        if not _exempt_line(line):
            cut = _unpunctuated_prose(core, last_paragraph, paragraphs[:-1])
            if cut is not None:
                return Ending(cut, _tail(line))
    opened = _unclosed(last_paragraph)
    if opened is not None:
        return Ending("ends inside an open quotation or parenthesis", _tail(opened))
    return None


def _unpunctuated_prose(core: str, paragraph: str, earlier: list[str]) -> str | None:
    body = paragraph.rstrip()
    ends = [m.end() for m in _SENTENCE_END.finditer(body)]
    if ends and _words(body[ends[-1] :]) >= MIN_FRAGMENT_WORDS:
        return "stops mid-sentence: no full stop after the last sentence"
    if _words(core) >= MIN_LONE_LINE_WORDS:
        prose = [p for p in earlier if _words(p) >= 8 and not _exempt_line(p.splitlines()[-1])]
        if prose and sum(map(_ends_properly, prose)) >= 2 * len(prose) / 3:
            return "stops mid-sentence: a long last line with no closing punctuation"
    return None


class TruncationGate:
    """Rejects a document whose ending is cut off (see the module docstring)."""

    name = NAME
    checks: tuple[str, ...] = (REASON,)
    after_pass = False

    async def review(self, record: Record, context: GateContext) -> GateOutcome:
        ending = find_cut(record.text, context.archetype.targets.language)
        if ending is None:
            return GateOutcome()
        return GateOutcome((GateFailure(NAME, REASON, ending.detail()),))
