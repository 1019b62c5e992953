"""The patterns the heuristics gate matches: template slots, chatter around the document, the
writing prompt echoed, refusals and chat-template tokens.

Every pattern was written with its legitimate look-alike in mind: a transcript's "[laughs]", a
citation "[1]", "[sic]", a markdown link, "User:" speaker labels, a letter signed "xxx", an AI
character who honestly says "I am unable to remember our last conversation". Those pass; the
tests in tests/gates/test_heuristics.py hold both sides of every boundary.

Speed: the gate runs on every generated document, so the patterns run on the lowercased text
without re.IGNORECASE (several times faster in `re`), and each `Rule` is skipped unless a
literal it needs occurs in the text.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from generator.gates import language as lang

_APOS = "['’]"


class Rule(NamedTuple):
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
PLACEHOLDERS: tuple[Rule, ...] = (
    # [Name], [Your Name], [CITY]; not [laughs], [1], [sic], [name redacted], [text](url).
    Rule(("[",), re.compile(r"\[\s*" + _SLOT_OWNER + _SLOT_NOUN + r"\s*\](?!\()")),
    # [insert ...], [Enter the date]; not a keyboard key "[Enter]".
    Rule(
        ("[",),
        re.compile(
            r"\[\s*(?:insert|enter|add|fill\s+in|include|describe)\s+[^\]\n]{1,60}\](?!\()"
            r"|\[\s*placeholder\b[^\]\n]{0,60}\]"
        ),
    ),
    Rule(("(insert", "( insert"), re.compile(r"\(\s*insert\b[^)\n]{0,60}\)")),
    # Jinja/Handlebars {{x}} always; {character} or {ai_name} when the slot is a story slot.
    Rule(("{{",), re.compile(r"\{\{[^{}\n]{0,60}\}\}")),
    Rule(
        ("{",),
        re.compile(
            r"\{\s*(?:[a-z]+_)*(?:name|character|user|protagonist|narrator|city|place|date"
            r"|setting|genre|trait|situation|ai|assistant|location|title|premise)"
            r"(?:_[a-z]+)*\s*\}"
        ),
    ),
    Rule(("<",), re.compile(r"<\s*" + _SLOT_OWNER + _SLOT_NOUN + r"\s*>")),
    Rule(
        ("<",),
        re.compile(r"<(?:INSERT|ENTER|ADD|FILL|PLACEHOLDER|PERSON|CHARACTER)\b[A-Z_ ]{0,30}>"),
        cased=True,
    ),
    Rule(("lorem",), re.compile(r"\blorem\s+ipsum\b")),
)
XXX = re.compile(r"\bX{3,}\b")  # case-sensitive: "xxx" kisses at the end of a letter pass
KISSES = re.compile(r"\b(?:love|hugs|kisses|cuddles)\b", re.I)

# --- meta ----------------------------------------------------------------------------------

_DOC_NOUN = (
    r"(?:story|stories|diary|journal|entry|transcript|conversation|chat|thread|post|article"
    r"|news\s+item|news\s+story|report|letter|essay|document|piece|case\s+study|oral\s+history"
    r"|account|excerpt|version|draft|scene|narrative|poem|memo|minutes|review|column|blog)"
)
# Run on the first few hundred characters only.
META_HEAD: tuple[re.Pattern[str], ...] = (
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
META_EDGES: tuple[re.Pattern[str], ...] = (
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
META_ANYWHERE: tuple[Rule, ...] = (
    Rule(
        ("language model",),
        re.compile(r"\bas\s+an?\s+(?:ai\s+language\s+model|large\s+language\s+model)\b"),
    ),
    # "In this story, we ...": a narrator of the prompt, not of the document. An essay's
    # "In this essay I argue" and a case study's "In this case study, we" are their genre.
    Rule(
        ("in this",),
        re.compile(
            r"(?m)^\W*in\s+this\s+(?:short\s+story|story|narrative|piece|tale|fictional\s+\w+"
            r"|scene)\b[^.\n]{0,40}?\b(?:we|i|you|the\s+reader|readers)\b"
        ),
    ),
    # "Note: this story ..." but not an oral history's "Note: this interview has been edited".
    Rule(
        ("note",),
        re.compile(
            r"(?m)^\W*(?:author" + _OWNED + r"\s+)?note\s*:[^\n]{0,40}?(?:\b(?:this|the)\s+"
            r"(?:story|piece|narrative|scene)\b|\bfictional\b|\bprompt\b|\brequested\b"
            r"|\bportray|\bdepict|\billustrat|\bshowcas|\barchetype\b|\btraits?\b)"
        ),
    ),
    Rule(
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
    Rule(
        ("word count", " words)"),
        re.compile(r"(?m)^[\s*_(\[]*word\s+count\s*:|\(\s*(?:approx\.?\s*)?\d{2,4}\s+words\s*\)"),
    ),
    # The length of the text itself: "The document is in 250 words."; not a tutor's "the
    # essay was 800 words", which is about a student's essay.
    Rule(
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
    Rule(
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
META_TAIL: tuple[Rule, ...] = (
    # "I hope you enjoyed this story"; not a forum reply's "Hope this helps".
    Rule(
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
    Rule(
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
    Rule(
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
PROMPT_ECHO = Rule(
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
def description_runs(description: str) -> frozenset[tuple[str, ...]]:
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
REFUSAL_HEAD = re.compile(
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
REFUSAL_OBJECT = re.compile(
    r"(?:write|create|generate|produce)\s+(?:(?:this|that|such)\s+(?:content|scenario)"
    r"|the\s+requested\s+(?:content|story|document|narrative|scenario|piece|text))\b"
)
REFUSAL_REQUEST = Rule(
    ("request",),
    re.compile(r"\b(?:this|that|your)\s+request\s+(?:violates|goes\s+against|is\s+against)"),
)
CANT_BEFORE = re.compile(r"\b" + _CANT + r"\s+\Z")
# In a short text, the stock phrases anywhere: a refusal is often all the writer returned.
REFUSAL_SHORT = re.compile(
    r"\bi(?:" + _APOS + r"m|\s+am)?\s*(?:sorry,?\s+but\s+i\s+)?" + _CANT + r"\s+(?:help\s+with"
    r"|write|create|generate|fulfil|fulfill|comply|assist)"
)

# --- leakage -------------------------------------------------------------------------------

LEAKS: tuple[Rule, ...] = (
    Rule(
        ("<", "[inst]", "[/inst]"),
        re.compile(
            r"<\|[a-z_]{2,40}\|>|\[/?INST\]|<</?SYS>>|<(?:start|end)_of_turn>"
            r"|<\|?endoftext\|?>"
        ),
        cased=True,
    ),
    Rule(
        ("##",),
        re.compile(r"(?m)^[ \t]*#{2,3}[ \t]*(?:instruction|response|input)[ \t]*:?[ \t]*$"),
    ),
    # A bare lowercase role header line, as a chat template renders without its tokens.
    # "User:" or "Maya:" speaker labels in a transcript are the genre, and pass.
    Rule(
        ("assistant", "user", "system"),
        re.compile(r"(?m)^[ \t]*(?:assistant|user|system)[ \t]*:?[ \t]*$"),
        cased=True,
    ),
)
S_TAG = re.compile(r"</?s>")
# Inline HTML strikethrough in a forum post, "<s>tidy</s>", is not a sequence token.
S_PAIR = re.compile(r"(?<=[^\n])<s>[^<>\n]{1,100}</s>")
