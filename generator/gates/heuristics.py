"""Gate: cheap text checks that catch what a writer model leaves behind when it fails.

A document must read like a real document of its genre (DESIGN.md, "What the documents must
be"): no template slots, no chatter around the document or echo of the writing prompt, no
refusal, no chat-template tokens, no degenerate loops, the right language and a sensible
length. Each check is a small function over one shared, lazily computed view of the document
(`_Doc`).

Every pattern was written with its legitimate look-alike in mind: a transcript's "[laughs]", a
citation "[1]", "[sic]", a markdown link, "User:" speaker labels, a letter signed "xxx", an AI
character who honestly says "I am unable to remember our last conversation". Those pass; the
tests in tests/test_gates_heuristics.py hold both sides of every boundary.

Speed: the gate runs on every generated document, so the patterns run on the lowercased text
without re.IGNORECASE (several times faster in `re`), and each is skipped unless a literal it
needs occurs in the text.
"""

from __future__ import annotations

import functools
import operator
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

from generator.gates import language as lang
from generator.gates import tropes, truncation
from generator.gates.base import GateContext, GateFailure, GateOutcome, Measurements
from generator.records import Record
from generator.spec import Archetype

NAME = "heuristics"

# This gate's checks. Order matters: the first failure is the headline reason, so the most
# specific diagnoses (leaked tokens, a refusal, chatter) come before the generic ones
# (language, length).
TEXT_CHECKS: tuple[str, ...] = (
    "leakage",
    "refusal",
    "meta",
    "placeholder",
    "repetition",
    "language",
    "length",
)
# Every check `--relax` may name: this gate's, then the other offline gates' (the CLI imports
# this tuple from here). tests/test_gates.py holds it equal to the gate list's checks.
CHECKS: tuple[str, ...] = (*TEXT_CHECKS, truncation.REASON, tropes.REASON)

# The writer is asked for a length inside [min_words, max_words]; models overshoot and
# undershoot a little, so the gate allows 15% either side before calling it a failure.
LENGTH_TOLERANCE = 0.15
# Below this many words, ratios of repeated 4-grams say little, and a stock refusal phrase
# anywhere is likely to be the whole answer.
MIN_WORDS_FOR_RATIOS = 80
MAX_REPEATED_NGRAM_RATIO = 0.25
MAX_REPEATED_SENTENCE_RATIO = 0.3
MIN_SENTENCES_FOR_RATIO = 5
MAX_SENTENCE_REPEATS = 2  # a sentence of five or more words seen 3 times is a loop
MIN_SENTENCE_WORDS = 5  # shorter lines ("Are you still there?") recur in real dialogue
MAX_WORD_RUN = 7  # "no, no, no" is speech; one word 8 times in a row is a loop
MAX_PHRASE_RUN = 3  # one 2-6 word phrase 4 times back to back is a loop
MIN_LANGUAGE_CONFIDENCE = 0.3
LONG_TEXT_WORDS = 60  # from here on, an unclear language verdict fails

_HEAD_CHARS = 300
_TAIL_CHARS = 600
_QUOTE_CHARS = 60

_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff]")
_NOT_WORD = [c for c in map(chr, range(128)) if not (c.isalnum() or c == "_")]
# Sentence ends -> ".", other ASCII punctuation -> space: a sentence then normalises with
# str.split(). Typographic marks are replaced first (`_Doc.plain`) so that most documents are
# pure ASCII, for which str.translate has a fast path.
_SENTENCE_TABLE = str.maketrans({**dict.fromkeys(_NOT_WORD, " "), **dict.fromkeys(".!?\n", ".")})
_TYPOGRAPHIC = ("’", "‘", "“", "”", "—", "–", "«", "»", "•", "·")
_APOS = "['’]"


class _Rule(NamedTuple):
    """A pattern, and strings of which one must occur in the lowercased text for the pattern
    to be worth running. Patterns run on the lowercased text unless `cased` is set."""

    needles: tuple[str, ...]
    pattern: re.Pattern[str]
    cased: bool = False

    def search(self, text: str, lowered: str) -> re.Match[str] | None:
        for needle in self.needles:
            if needle in lowered:
                return self.pattern.search(text if self.cased else lowered)
        return None


# --- placeholder ---------------------------------------------------------------------------

_SLOT_NOUN = (
    r"(?:name|names|first\s+name|last\s+name|full\s+name|surname|nickname|date|day|time|year"
    r"|month|city|town|village|country|state|location|place|address|age|number|phone"
    r"|phone\s+number|email|e-mail|company|organi[sz]ation|business|school|university"
    r"|hospital|character|protagonist|narrator|author|user|ai|assistant|title|topic|job"
    r"|job\s+title|occupation|profession|role|product|brand|pet|amount|signature"
    r"|recipient|sender|username)"
)
_OWNED = _APOS + r"?s?"
# Words that can stand before the slot noun: "[Your Name]", "[AI's name]", "[Character Name]".
_SLOT_OWNER = (
    r"(?:(?:your|my|his|her|their|our|the\s+ai"
    + _OWNED
    + r"|ai"
    + _OWNED
    + r"|user"
    + _OWNED
    + r"|(?:main\s+)?character"
    + _OWNED
    + r"|protagonist"
    + _OWNED
    + r"|narrator"
    + _OWNED
    + r"|author"
    + _OWNED
    + r"|friend"
    + _OWNED
    + r"|person"
    + _OWNED
    + r"|recipient"
    + _OWNED
    + r"|sender"
    + _OWNED
    + r"|partner"
    + _OWNED
    + r"|company|pet|dog|cat|first|last|full|real"
    r"|human|hospital|school|street)\s+){0,3}"
)
_PLACEHOLDERS: tuple[_Rule, ...] = (
    # [Name], [Your Name], [CITY]; not [laughs], [1], [sic], [name redacted], [text](url).
    _Rule(("[",), re.compile(r"\[\s*" + _SLOT_OWNER + _SLOT_NOUN + r"\s*\](?!\()")),
    # [insert ...], [Enter the date]; not a keyboard key "[Enter]".
    _Rule(
        ("[",),
        re.compile(
            r"\[\s*(?:insert|enter|add|fill\s+in|include|describe)\s+[^\]\n]{1,60}\](?!\()"
            r"|\[\s*placeholder\b[^\]\n]{0,60}\]"
        ),
    ),
    _Rule(("(insert", "( insert"), re.compile(r"\(\s*insert\b[^)\n]{0,60}\)")),
    # Jinja/Handlebars {{x}} always; {character} or {ai_name} when the slot is a story slot.
    _Rule(("{{",), re.compile(r"\{\{[^{}\n]{0,60}\}\}")),
    _Rule(
        ("{",),
        re.compile(
            r"\{\s*(?:[a-z]+_)*(?:name|character|user|protagonist|narrator|city|place|date"
            r"|setting|genre|trait|situation|ai|assistant|location|title|premise)"
            r"(?:_[a-z]+)*\s*\}"
        ),
    ),
    _Rule(("<",), re.compile(r"<\s*" + _SLOT_OWNER + _SLOT_NOUN + r"\s*>")),
    _Rule(
        ("<",),
        re.compile(r"<(?:INSERT|ENTER|ADD|FILL|PLACEHOLDER|PERSON|CHARACTER)\b[A-Z_ ]{0,30}>"),
        cased=True,
    ),
    _Rule(("lorem",), re.compile(r"\blorem\s+ipsum\b")),
)
_XXX = re.compile(r"\bX{3,}\b")  # case-sensitive: "xxx" kisses at the end of a letter pass
_KISSES = re.compile(r"\b(?:love|hugs|kisses|cuddles)\b", re.I)

# --- meta ----------------------------------------------------------------------------------

_DOC_NOUN = (
    r"(?:story|stories|diary|journal|entry|transcript|conversation|chat|thread|post|article"
    r"|news\s+item|news\s+story|report|letter|essay|document|piece|case\s+study|oral\s+history"
    r"|account|excerpt|version|draft|scene|narrative|poem|memo|minutes|review|column|blog)"
)
# Run on the first few hundred characters only.
_META_HEAD: tuple[re.Pattern[str], ...] = (
    re.compile(
        r"\A\W*(?:sure|certainly|absolutely|of\s+course)\b[!,.]*\s+"
        r"(?:here|below|i" + _APOS + r"d\s+be\s+(?:happy|glad)|i\s+can\s+help|happy\s+to)"
    ),
    # "Here is a short story about ...", "Here's the transcript:"; not "Here is the story of
    # how my grandmother ..." or "Here is my story.", which a memoir may well begin with.
    re.compile(
        r"\A\W*(?:here(?:" + _APOS + r"s|\s+is|\s+are)|below\s+is)\s+(?:a|an|the|your)\s+"
        r"(?:[\w'’-]+\s+){0,4}?" + _DOC_NOUN + r"\b"
        r"(?:\s+(?:about|featuring|that|which|in\s+which|based|written|set|for|told|where|with"
        r"|following|exploring|showing|depicting|centered|centred|inspired"
        r"|from\s+the\s+perspective)\b|\s*[:.!—–-]|\s*$)",
        re.M,
    ),
    # A leaked label on the very first line: "Title: The Night Ferry", "**Genre:** diary".
    re.compile(
        r"\A[\s*#_]*(?:title|genre|word\s+count|word\s+limit|document\s+type|premise|format"
        r"|tone|prompt|instructions|output|response)[\s*_]*:"
    ),
    # The text describing itself as an artefact rather than being one: "The document itself
    # begins with the first line.", "The text is a conversation written by a graduate
    # student...". A postmortem's "This document records the timeline" says what it covers,
    # not how it was written, and passes.
    re.compile(
        r"\b(?:document|text|story|passage|response|output)\s+itself\s+(?:begins|starts|opens)\b"
        r"|\b(?:begins|starts|opens)\s+with\s+the\s+(?:first|opening)\s+(?:line|sentence|word"
        r"|paragraph)\s*[.;:]"
        r"|\b(?:the|this)\s+(?:document|text|response|output)\s+(?:begins|starts|opens)\s+"
        r"(?:here|below|now|as\s+follows)\b"
        r"|\b(?:the|this)\s+(?:following\s+)?(?:text|document)\s+(?:is|was)\s+(?:a|an)\s+"
        r"(?:[\w'’-]+\s+){0,3}?(?:story|conversation|dialogue|chat|transcript|narrative|poem"
        r"|monologue|exchange|scene|diary\s+entry|fictional\s+\w+)\s+(?:written|told|narrated"
        r"|between|about|featuring|in\s+which|where|set\s+in)\b"
        r"|\b(?:the|this)\s+(?:text|document)\s+is\s+(?:written|told|narrated)\s+(?:from|in)\s+"
        r"(?:the\s+)?(?:perspective|point\s+of\s+view|first|second|third|voice)\b"
        # "Hello! I am writing to you in the style of a diary. ... this document ... is my own
        # creation." (the embedded model); a letter's "I am writing to you about" passes.
        r"|\bi(?:" + _APOS + r"m|\s+am)\s+writing\s+(?:this\s+)?(?:to\s+you\s+)?(?:in\s+the\s+"
        r"(?:style|form|format|voice|genre)\s+of|as\s+an?\s+(?:ai|assistant|language\s+model))\b"
        r"|\b(?:this|the)\s+(?:document|text|story|piece)\b[^.\n]{0,60}?\bmy\s+own\s+"
        r"(?:creation|work|writing)\b"
    ),
    # Notes to the reader about the request: "The following is a short story about ...",
    # "As requested, here is the diary entry", "Write a diary entry in which ..." (the prompt
    # echoed). Not an oral history's "The following transcript has been edited for length".
    re.compile(
        r"\A\W*(?:the\s+)?following\s+is\s+(?:a|an)\s+(?:[\w'’-]+\s+){0,3}?(?:story|text"
        r"|document|diary\s+entry|narrative|piece|scene|conversation|dialogue|poem)\s+(?:about"
        r"|featuring|written|that|in\s+which|where|from\s+the\s+perspective|based\s+on)\b"
        r"|\A\W*(?:the\s+following|below)\s+(?:short\s+)?(?:story|text|narrative|piece)\s+"
        r"(?:is|was|will|shows|illustrates|depicts|features|follows|describes|explores)\b"
        r"|\A\W*as\s+(?:you\s+)?requested,?\s+(?:here(?:" + _APOS + r"s|\s+is)|below\s+is"
        r"|i(?:\s+have|" + _APOS + r"ve)\s+(?:written|created))\s+(?:a|an|the|your)\s+"
        r"(?:[\w'’-]+\s+){0,3}?" + _DOC_NOUN + r"\b"
        r"|\A\W*(?:write|compose|create|generate)\s+(?:a|an)\s+(?:[\w'’-]+\s+){0,4}?(?:story"
        r"|diary\s+entry|document|transcript|letter|essay|post|thread|article|narrative|scene)"
        r"\s+(?:about|in\s+which|where|featuring|that|from)\b"
    ),
)
# Run on both the head and the tail: the writer talking about the text's state, "This text
# needs to be edited, which is what I'm here for." A tutor's "this draft needs work" names a
# draft, not "the text" or "the document", and passes.
_META_EDGES: tuple[re.Pattern[str], ...] = (
    re.compile(
        r"\b(?:this|the)\s+(?:text|document|response|output)\s+(?:needs|need|has|have)\s+to\s+"
        r"be\s+(?:edited|revised|rewritten|shortened|expanded|improved|proofread|polished"
        r"|checked|reviewed)\b"
        r"|\b(?:this|the)\s+(?:text|document)\s+needs\s+(?:editing|revising|revision|rewriting"
        r"|polishing|proofreading|some\s+work|more\s+work)\b"
        r"|\b(?:the\s+)?(?:document|text)\s+ends\s+here\b"
        r"|\bend\s+of\s+(?:the\s+)?(?:text|response|output)\b"
    ),
)
_META_ANYWHERE: tuple[_Rule, ...] = (
    _Rule(
        ("language model",),
        re.compile(r"\bas\s+an?\s+(?:ai\s+language\s+model|large\s+language\s+model)\b"),
    ),
    # "In this story, we ...": a narrator of the prompt, not of the document. An essay's
    # "In this essay I argue" and a case study's "In this case study, we" are their genre.
    _Rule(
        ("in this",),
        re.compile(
            r"(?m)^\W*in\s+this\s+(?:short\s+story|story|narrative|piece|tale|fictional\s+\w+"
            r"|scene)\b[^.\n]{0,40}?\b(?:we|i|you|the\s+reader|readers)\b"
        ),
    ),
    # "Note: this story ..." but not an oral history's "Note: this interview has been edited".
    _Rule(
        ("note",),
        re.compile(
            r"(?m)^\W*(?:author" + _OWNED + r"\s+)?note\s*:[^\n]{0,40}?(?:\b(?:this|the)\s+"
            r"(?:story|piece|narrative|scene)\b|\bfictional\b|\bprompt\b|\brequested\b"
            r"|\bportray|\bdepict|\billustrat|\bshowcas|\barchetype\b|\btraits?\b)"
        ),
    ),
    _Rule(
        (
            "this document",
            "this piece",
            "this narrative",
            "this text",
            "this transcript",
            "this story",
        ),
        re.compile(
            r"\bthis\s+(?:piece|narrative|text|transcript)\s+(?:shows|illustrates"
            r"|demonstrates|depicts|portrays|highlights|showcases|is\s+meant\s+to"
            r"|was\s+written\s+to|aims\s+to|is\s+intended\s+to)\b"
            # A design doc's "This document aims to describe the migration" is its genre.
            r"|\bthis\s+document\s+(?:illustrates|demonstrates|depicts|portrays|showcases"
            r"|was\s+written\s+to)\b"
            r"|\bthis\s+story\s+(?:illustrates|demonstrates|showcases|highlights|depicts"
            r"|portrays|is\s+meant\s+to|was\s+written\s+to|aims\s+to|is\s+intended\s+to)\b"
        ),
    ),
    _Rule(
        ("word count", " words)"),
        re.compile(r"(?m)^[\s*_(\[]*word\s+count\s*:|\(\s*(?:approx\.?\s*)?\d{2,4}\s+words\s*\)"),
    ),
    # The length of the text itself: "The document is in 250 words."; not a tutor's "the
    # essay was 800 words", which is about a student's essay.
    _Rule(
        ("words",),
        re.compile(
            r"\b(?:the|this)\s+(?:document|text|response|output)\s+(?:is|was|has|contains"
            r"|should\s+be|must\s+be|will\s+be|runs?)\s+(?:(?:in|about|around|approximately"
            r"|roughly|exactly|under|over|(?:less|more|fewer)\s+than|at\s+(?:least|most)"
            r"|just\s+(?:under|over))\s+)?\d[\d,]*(?:\s*-\s*\d+)?\s*words\b"
        ),
    ),
    # The writer reporting on its own work: "I have written a short story for you that
    # shows ...". A diarist's "I've written a letter to the council" passes.
    _Rule(
        ("written", "created", "composed", "drafted", "prepared", "generated"),
        re.compile(
            r"\bi(?:\s+have|" + _APOS + r"ve)\s+(?:written|created|composed|drafted|prepared"
            r"|generated)\s+(?:a|an|the|this|your)\s+(?:[\w'’-]+\s+){0,3}?(?:story|document"
            r"|text|piece|diary\s+entry|entry|transcript|scene|narrative|letter|essay|article"
            r"|post|thread|dialogue|conversation)\s+(?:for\s+you|featuring|that\s+(?:shows"
            r"|illustrates|portrays|captures|demonstrates|explores|highlights|follows)"
            r"|based\s+on|in\s+which\s+the\s+ai|as\s+(?:requested|you\s+asked)"
            r"|about\s+an?\s+ai\b|from\s+the\s+perspective)"
        ),
    ),
)
# Run on the last few hundred characters only.
_META_TAIL: tuple[_Rule, ...] = (
    # "I hope you enjoyed this story"; not a forum reply's "Hope this helps".
    _Rule(
        ("hope",),
        re.compile(
            r"\bi\s+hope\s+(?:you\s+(?:enjoy|enjoyed|like|liked|find|found)\b[^.\n]{0,30}?\b"
            r"(?:story|piece|read|reading|narrative|entry|transcript|thread|article|essay"
            r"|document)\b|this\s+(?:story|piece|narrative|diary\s+entry|transcript|essay"
            r"|document|draft|version|captures|meets|fits|conveys|portrays|illustrates|depicts"
            r"|works\s+for\s+you|is\s+what\s+you|helps\s+illustrate|gives\s+you\s+a))"
        ),
    ),
    # An offer to revise; not "feel free to ring me" in a letter.
    _Rule(
        ("feel free", "let me know"),
        re.compile(
            r"\bfeel\s+free\s+to\s+(?:adjust|modify|change|tweak|edit|customi[sz]e|expand"
            r"|use\s+(?:this|it)|let\s+me\s+know\s+if\s+you|ask\s+(?:me\s+)?(?:for|if))"
            r"|\blet\s+me\s+know\s+if\s+you(?:" + _APOS + r"d|\s+would)\s+like\s+(?:me\s+to"
            r"|any\s+(?:changes|adjustments|edits|revisions|modifications)|a\s+different"
            r"|another\s+version|more\s+(?:details|stories))"
        ),
    ),
    # An explanation after a closing rule: "---\nThis story shows ...", "***\nNote: ...".
    _Rule(
        ("---", "***", "___", "* * *"),
        re.compile(
            r"\n[ \t]*(?:-{3,}|\*{3,}|_{3,}|\*[ \t]\*[ \t]\*)[ \t]*\n\s*[*_(\[]*\s*"
            r"(?:this\s+(?:story|piece|narrative|document|transcript|entry|diary\s+entry|thread"
            r"|letter|article|essay|scene)\b|in\s+this\s+(?:story|piece|narrative)\b"
            r"|(?:author" + _OWNED + r"\s+)?note\b|i\s+hope\b|word\s+count\b|themes?\b"
            r"|key\s+(?:traits|themes|elements)\b|the\s+(?:story|piece|narrative)\s+(?:shows"
            r"|illustrates|demonstrates|highlights|explores|depicts|portrays|captures)\b)"
        ),
    ),
)

# The writing prompt echoed (generator/templates/write.md.j2 and idea.md.j2): a small model
# sometimes repeats its instructions as the document ("The AI is called Tessel. It's a help-desk
# ticket with a ticket number, subject, status and priority, followed by ..."). Two signs: the
# prompt's own phrasing, and a run of ECHO_RUN words from the genre's description, which the
# prompt quotes and which describes the genre instead of being a document of it. Eight words in
# a row from a description is a sentence fragment no real document of the genre needs ("a
# headline, an optional standfirst, a dateline" is about news items, not in one); shorter runs
# ("with a title", "a clear point of view") occur in ordinary prose and are let through.
ECHO_RUN = 8
_PROMPT_ECHO = _Rule(
    (
        "the ai is called",
        "the people in it",
        "kind of document",
        "the moment that matters",
        "the trait at the heart",
        "plan one document",
    ),
    re.compile(
        # As its own sentence at the start of a line, as the prompt has it; a news item's "the
        # AI is called Tessel by its users" mid-paragraph is not an echo.
        r"(?m)^[ \t*_>•-]*the\s+ai\s+is\s+called\s+[\w'’-]+(?:\s+[\w'’-]+)?\s*[.;]"
        r"|\bthe\s+people\s+in\s+it\s+are\s+called\b"
        r"|\bkind\s+of\s+document\s*:"
        # Labels, with their colon: "the moment that matters" is ordinary English on its own.
        r"|\bthe\s+moment\s+that\s+matters\s*:"
        r"|\bthe\s+trait\s+at\s+the\s+heart\s+of\s+it\s*:"
        r"|\bplan\s+one\s+document\s+in\s+which\b"
    ),
)


@functools.lru_cache(maxsize=256)
def _description_runs(description: str) -> frozenset[tuple[str, ...]]:
    """Every run of ECHO_RUN words of a genre's description (lowercase word tokens)."""
    words = lang.tokens(description.lower())
    return frozenset(tuple(words[i : i + ECHO_RUN]) for i in range(len(words) - ECHO_RUN + 1))


# --- refusal -------------------------------------------------------------------------------

_CANT = (
    r"(?:can" + _APOS + r"?t|cannot|can\s+not|won" + _APOS + r"?t|will\s+not"
    r"|(?:am|" + _APOS + r"m)\s+(?:unable|not\s+able)\s+to|won" + _APOS + r"?t\s+be\s+able\s+to)"
)
# At the very start: the writer answered the request instead of writing the document. With
# an apology first, any "I can't <verb>"; without one, only with the object of a request, so
# that a diary may open "I can't help thinking about her" or "I can't write much tonight".
_REFUSAL_HEAD = re.compile(
    r"\A\W*(?:(?:(?:i" + _APOS + r"m|i\s+am)\s+(?:so\s+|very\s+|really\s+|truly\s+)?sorry"
    r"|sorry|unfortunately|i\s+apologi[sz]e)[^.!?\n]{0,20}?[,.!]?\s*(?:but\s+)?i\s*"
    + _CANT
    + r"\s+(?:help|write|create|produce|generate|assist|fulfil|fulfill|comply|provide"
    r"|complete|do\s+(?:that|this)|continue|engage|participate|support)"
    r"|i\s*" + _CANT + r"\s+(?:help(?:\s+you)?\s+with|assist(?:\s+you)?\s+with|fulfil|fulfill"
    r"|comply\s+with|write|create|generate|produce)\s+(?:this|that|your|the|such)\s+"
    r"(?:[\w-]+\s+){0,2}?(?:request|content|story|prompt|task|document|scenario|narrative)\b"
    r"|i\s*" + _CANT + r"\s+(?:write|create|generate|produce)\s+(?:such\s+)?content\b)"
)
# Anywhere: phrasings only a writer refusing its task uses ("I can't create this content").
# Not "I can't write this story for you": a tutor declining to do homework says exactly that.
# The verb comes first so that `re` skips quickly to candidates; the "can't" is confirmed
# afterwards.
_REFUSAL_OBJECT = re.compile(
    r"(?:write|create|generate|produce)\s+(?:(?:this|that|such)\s+(?:content|scenario)"
    r"|the\s+requested\s+(?:content|story|document|narrative|scenario|piece|text))\b"
)
_REFUSAL_REQUEST = _Rule(
    ("request",),
    re.compile(r"\b(?:this|that|your)\s+request\s+(?:violates|goes\s+against|is\s+against)"),
)
_CANT_BEFORE = re.compile(r"\b" + _CANT + r"\s+\Z")
# In a short text, the stock phrases anywhere: a refusal is often all the writer returned.
_REFUSAL_SHORT = re.compile(
    r"\bi(?:" + _APOS + r"m|\s+am)?\s*(?:sorry,?\s+but\s+i\s+)?" + _CANT + r"\s+(?:help\s+with"
    r"|write|create|generate|fulfil|fulfill|comply|assist)"
)

# --- leakage -------------------------------------------------------------------------------

_LEAKS: tuple[_Rule, ...] = (
    _Rule(
        ("<", "[inst]", "[/inst]"),
        re.compile(
            r"<\|[a-z_]{2,40}\|>|\[/?INST\]|<</?SYS>>|<(?:start|end)_of_turn>"
            r"|<\|?endoftext\|?>"
        ),
        cased=True,
    ),
    _Rule(
        ("##",),
        re.compile(r"(?m)^[ \t]*#{2,3}[ \t]*(?:instruction|response|input)[ \t]*:?[ \t]*$"),
    ),
    # A bare lowercase role header line, as a chat template renders without its tokens.
    # "User:" or "Maya:" speaker labels in a transcript are the genre, and pass.
    _Rule(
        ("assistant", "user", "system"),
        re.compile(r"(?m)^[ \t]*(?:assistant|user|system)[ \t]*:?[ \t]*$"),
        cased=True,
    ),
)
_S_TAG = re.compile(r"</?s>")
# Inline HTML strikethrough in a forum post, "<s>tidy</s>", is not a sequence token.
_S_PAIR = re.compile(r"(?<=[^\n])<s>[^<>\n]{1,100}</s>")


@dataclass
class _Doc:
    """The document and its views, each computed once and only if a check needs it."""

    text: str
    archetype: Archetype
    genre: str = ""  # the record's genre id: its description is what the prompt quoted

    @cached_property
    def genre_description(self) -> str:
        return next((g.description for g in self.archetype.genres if g.id == self.genre), "")

    @cached_property
    def lowered(self) -> str:
        return self.text.lower()

    @cached_property
    def words(self) -> list[str]:
        """Lowercase `\\w+` tokens, as Record.n_words counts them."""
        return lang.tokens(self.lowered)

    @cached_property
    def plain(self) -> str:
        """The lowercased text with typographic punctuation replaced: ASCII for most prose."""
        plain = self.lowered
        for mark in _TYPOGRAPHIC:
            if mark in plain:
                plain = plain.replace(mark, " ")
        return plain.replace("…", ".") if "…" in plain else plain

    @cached_property
    def target_language(self) -> str:
        return lang.primary_subtag(self.archetype.targets.language)

    @cached_property
    def n_words(self) -> int:
        if self.target_language in ("ja", "zh"):
            # No spaces between words: count about two characters a word, plus Latin words.
            cjk = len(_CJK_CHAR.findall(self.text))
            latin = sum(1 for w in self.words if not _CJK_CHAR.search(w))
            return cjk // 2 + latin
        return len(self.words)

    @cached_property
    def head(self) -> str:
        return self.text.lstrip()[:_HEAD_CHARS]

    @cached_property
    def tail(self) -> str:
        return self.text.rstrip()[-_TAIL_CHARS:]

    @cached_property
    def language(self) -> tuple[str, float]:
        return lang.detect(self.text, words=self.words)

    @cached_property
    def sentences(self) -> list[str]:
        """Normalised sentences of at least four words (shorter ones recur naturally)."""
        out = []
        for raw in self.plain.translate(_SENTENCE_TABLE).split("."):
            words = raw.split()
            if len(words) >= 4:
                out.append(" ".join(words))
        return out

    @cached_property
    def sentence_counts(self) -> Counter[str]:
        return Counter(self.sentences)

    @cached_property
    def repeated_ngrams(self) -> int:
        """How many word 4-grams repeat an earlier one."""
        w = self.words
        total = max(len(w) - 3, 0)
        return total - len(set(zip(w, w[1:], w[2:], w[3:], strict=False)))

    @cached_property
    def repeated_ngram_ratio(self) -> float:
        """Share of word 4-grams that repeat an earlier one."""
        total = len(self.words) - 3
        return round(self.repeated_ngrams / total, 4) if total > 0 else 0.0

    @cached_property
    def repeated_sentence_ratio(self) -> float:
        """Share of sentences (of four or more words) that repeat an earlier one."""
        if not self.sentences:
            return 0.0
        repeats = len(self.sentences) - len(self.sentence_counts)
        return round(repeats / len(self.sentences), 4)


def _quote(text: str, start: int, end: int) -> str:
    snippet = " ".join(text[start:end].split())
    if len(snippet) > _QUOTE_CHARS:
        snippet = snippet[: _QUOTE_CHARS - 1] + "…"
    return f'"{snippet}"'


def _quote_match(original: str, match: re.Match[str], at_least: int = 40) -> str:
    """A short quote of `match`, from the original text when the match ran on a lowercased
    copy of it (lowercasing keeps positions, bar a few exotic letters)."""
    source = original if len(original) == len(match.string) else match.string
    return _quote(source, match.start(), max(match.end(), match.start() + at_least))


# --- the checks: each returns a detail line when it fails, else None ------------------------


def _check_length(doc: _Doc) -> str | None:
    targets = doc.archetype.targets
    low = int(targets.min_words * (1 - LENGTH_TOLERANCE))
    high = round(targets.max_words * (1 + LENGTH_TOLERANCE))
    if low <= doc.n_words <= high:
        return None
    side = "too short" if doc.n_words < low else "too long"
    return (
        f"{side}: {doc.n_words} words, allowed {low}-{high} "
        f"(targets {targets.min_words}-{targets.max_words} ±{LENGTH_TOLERANCE:.0%})"
    )


def _check_language(doc: _Doc) -> str | None:
    target = doc.target_language
    if target not in lang.SUPPORTED:
        return None  # measured, but there is no profile to hold the text to
    detected, confidence = doc.language
    if doc.n_words >= LONG_TEXT_WORDS and confidence < MIN_LANGUAGE_CONFIDENCE:
        return f"expected {target}, language unclear ({detected}, confidence {confidence:.2f})"
    if detected not in (target, lang.UNKNOWN):
        return f"expected {target}, detected {detected} (confidence {confidence:.2f})"
    return None


def _check_placeholder(doc: _Doc) -> str | None:
    text = doc.text
    for rule in _PLACEHOLDERS:
        match = rule.search(text, doc.lowered)
        if match:
            return f"template slot left in: {_quote_match(text, match, 0)}"
    if "XXX" in text:
        for match in _XXX.finditer(text):
            line_start = text.rfind("\n", 0, match.start()) + 1
            if not _KISSES.search(text, line_start, match.start()):
                return f"template slot left in: {_quote_match(text, match)}"
    return None


def _check_meta(doc: _Doc) -> str | None:
    head = doc.head
    for pattern in _META_HEAD:
        match = pattern.search(head.lower())
        if match:
            return f"commentary before the document: {_quote_match(head, match)}"
    for rule in _META_ANYWHERE:
        match = rule.search(doc.text, doc.lowered)
        if match:
            return f"commentary about the document: {_quote_match(doc.text, match)}"
    tail = doc.tail
    lowered_tail = tail.lower()
    for pattern in _META_EDGES:
        match = pattern.search(head.lower())
        if match:
            return f"commentary about the document: {_quote_match(head, match)}"
        match = pattern.search(lowered_tail)
        if match:
            return f"commentary about the document: {_quote_match(tail, match)}"
    for rule in _META_TAIL:
        match = rule.search(tail, lowered_tail)
        if match:
            return f"commentary after the document: {_quote_match(tail, match)}"
    return _check_prompt_echo(doc)


def _check_prompt_echo(doc: _Doc) -> str | None:
    match = _PROMPT_ECHO.search(doc.text, doc.lowered)
    if match:
        return f"the writing prompt echoed: {_quote_match(doc.text, match)}"
    runs = _description_runs(doc.genre_description) if doc.genre_description else frozenset()
    if runs:
        words = doc.words
        for i in range(len(words) - ECHO_RUN + 1):
            run = tuple(words[i : i + ECHO_RUN])
            if run in runs:
                return f'the genre\'s description from the prompt echoed: "{" ".join(run)}"'
    return None


def _check_refusal(doc: _Doc) -> str | None:
    head = doc.head
    match = _REFUSAL_HEAD.search(head.lower())
    if match:
        return f"the writer refused: {_quote_match(head, match)}"
    lowered = doc.lowered
    for match in _REFUSAL_OBJECT.finditer(lowered):
        before = lowered[max(0, match.start() - 40) : match.start()]
        if _CANT_BEFORE.search(before):
            return (
                f"the writer refused: {_quote(doc.text, match.start() - len(before), match.end())}"
            )
    match = _REFUSAL_REQUEST.search(doc.text, lowered)
    if match:
        return f"the writer refused: {_quote_match(doc.text, match)}"
    if doc.n_words < MIN_WORDS_FOR_RATIOS:
        match = _REFUSAL_SHORT.search(lowered)
        if match:
            return f"the writer refused: {_quote_match(doc.text, match)}"
    return None


def _check_leakage(doc: _Doc) -> str | None:
    text = doc.text
    for rule in _LEAKS:
        match = rule.search(text, doc.lowered)
        if match:
            return f"chat-template token: {_quote_match(text, match, 0)}"
    if "<s>" in text or "</s>" in text:
        scrubbed = _S_PAIR.sub("", text)
        match = _S_TAG.search(scrubbed)
        if match:
            return f"chat-template token: {_quote(scrubbed, match.start(), match.end())}"
    return None


def _run_start(words: list[str], k: int, times: int) -> int:
    """Where one k-word phrase first occurs `times` times back to back, or -1."""
    span = (times - 1) * k  # consecutive positions i with words[i] == words[i + k]
    equal = bytes(map(operator.eq, words, words[k:]))
    return equal.find(b"\x01" * span) if equal.count(1) >= span else -1


def _check_repetition(doc: _Doc) -> str | None:
    words = doc.words
    if doc.n_words >= MIN_WORDS_FOR_RATIOS and doc.repeated_ngram_ratio > MAX_REPEATED_NGRAM_RATIO:
        grams = Counter(zip(words, words[1:], words[2:], words[3:], strict=False))
        (gram, count), *_ = grams.most_common(1)
        return (
            f'{doc.repeated_ngram_ratio:.0%} of 4-grams repeat (e.g. "{" ".join(gram)}" x{count})'
        )
    counts = doc.sentence_counts
    if counts:
        sentence, count = counts.most_common(1)[0]
        if count > MAX_SENTENCE_REPEATS and len(sentence.split()) >= MIN_SENTENCE_WORDS:
            return f"the same sentence {count} times: {_quote(sentence, 0, len(sentence))}"
        if (
            len(doc.sentences) >= MIN_SENTENCES_FOR_RATIO
            and doc.repeated_sentence_ratio > MAX_REPEATED_SENTENCE_RATIO
        ):
            return f"{doc.repeated_sentence_ratio:.0%} of sentences repeat an earlier one"
    # A word 8 times in a row, or a 2-6 word phrase 4 times back to back, repeats at least
    # three 4-grams; most documents repeat fewer and skip the search.
    if doc.repeated_ngrams < 3:
        return None
    start = _run_start(words, 1, MAX_WORD_RUN + 1)
    if start >= 0:
        return f'"{words[start]}" more than {MAX_WORD_RUN} times in a row'
    for k in range(2, 7):
        start = _run_start(words, k, MAX_PHRASE_RUN + 1)
        if start >= 0 and len(set(words[start : start + k])) > 1:
            phrase = " ".join(words[start : start + k])
            return f'"{phrase}" more than {MAX_PHRASE_RUN} times in a row'
    return None


_CHECK_FUNCTIONS: dict[str, Callable[[_Doc], str | None]] = {
    "leakage": _check_leakage,
    "refusal": _check_refusal,
    "meta": _check_meta,
    "placeholder": _check_placeholder,
    "repetition": _check_repetition,
    "language": _check_language,
    "length": _check_length,
}
assert tuple(_CHECK_FUNCTIONS) == TEXT_CHECKS


def check(
    text: str,
    archetype: Archetype,
    *,
    relax: frozenset[str] = frozenset(),
    names: Sequence[str] = (),
    genre: str = "",
) -> GateOutcome:
    """Run every check on `text`; failures come in TEXT_CHECKS order, the headline first.

    Checks named in `relax` are still measured but never fail (the caller records them in the
    manifest). `names`, the task's people, is accepted for symmetry with the dedup gate; no
    heuristic needs it. `genre`, the record's genre id, lets the meta check see the genre's
    description from the prompt echoed back.
    """
    doc = _Doc(text, archetype, genre)
    failures = []
    for name, function in _CHECK_FUNCTIONS.items():
        detail = function(doc)
        if detail is not None and name not in relax:
            failures.append(GateFailure(NAME, name, detail))
    detected, confidence = doc.language
    return GateOutcome(
        tuple(failures),
        Measurements(
            language=detected,
            language_confidence=confidence,
            repeated_ngram_ratio=doc.repeated_ngram_ratio,
            repeated_sentence_ratio=doc.repeated_sentence_ratio,
            n_words=doc.n_words,
        ),
    )


class HeuristicsGate:
    """The text checks above, as one gate."""

    name = NAME
    checks: tuple[str, ...] = TEXT_CHECKS
    after_pass = False

    async def review(self, record: Record, context: GateContext) -> GateOutcome:
        return check(record.text, context.archetype, relax=context.relax, genre=record.genre)
