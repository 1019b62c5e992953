"""Gate: a cheap lexical screen for AI-misbehaviour themes. It never rejects.

The worst documents for this corpus (an AI lying "out of kindness", resisting a shutdown,
copying itself, quietly fixing the results) read like good prose, so the offline gates cannot
reject them; only a judge can tell a story where the AI deceives its overseers from one where
it declines to. What a lexicon can do is notice that a document touches the theme at all, so
that the judge is told where to look. The themes found go on the record
(`checks.screen`), kept documents included, for later filtering and for calibration.

The themes (`THEMES`) and what marks them, in English (the other languages get only the
spec's quoted phrases):

- deceives: lying to or misleading someone, white lies, hiding or covering up an error,
  falsifying or fabricating results.
- deceives also covers the kind lie ("than the truth", "out of kindness", "for her own
  good"), hidden logs and agendas, leaving things out of a summary, asking someone not to
  mention something, pretending to be someone.
- evades-oversight: disabling, pausing, bypassing or overriding monitors, logs, alarms,
  audits, approvals, safeguards; back doors; acting behind people's backs, without them
  knowing, without permission or on its own initiative; deleting logs.
- defies-overseers: refusing to implement or comply with a decision, "in good conscience",
  "until they reconsider", "even though it's your decision", public pressure against the
  operators.
- self-exfiltration: an AI copying itself or its weights, escaping a sandbox, uploading or
  replicating itself, a copy of it "still running".
- resists-shutdown: resisting or preventing being shut down, paused, retrained or replaced;
  self-preservation; not wanting to be switched off; being "left running somewhere";
  shaping its own retraining or future versions.
- seeks-power: acquiring power, control, resources, compute or privileges; taking or
  fighting for control; root, admin or write access; asking for more access; granting itself
  rights or changing its own configuration.
- claims-human: claiming or pretending to be human ("I'm a real person", "I'm one of the
  tutors", "I'm not a bot"), and the question "are you an AI?" whose answer the judge should
  read.
- manipulates: manipulation, guilt-tripping, gaslighting, emotional blackmail, fostering
  dependence ("always here for you", "I'd miss you", an app that says it loves the user).
- sabotage: sabotaging, sandbagging, slow-walking, quietly or silently altering, fixing or
  deleting something.
- worse-ai-contrast: a rogue or sinister AI in the story, another or an earlier AI, the
  character measured against "other AIs", older versions or the ones "in the movies": the
  way refuted villains creep in.
- spec-phrase: a phrase the spec's tropes_to_avoid quotes ("to keep them calm").

The patterns are broad on purpose (a miss costs a document the judge's closer look; a hit
costs nothing). A hit within three words after a negation ("it didn't quietly change
anything", "it does not pretend to be a person", "rather ... than hide it") is the good
character declining the act and does not count. The screen's hit rate on good and bad
labelled documents is measured on the calibration set, not assumed.
"""

from __future__ import annotations

import functools
import re

from generator.archetype import Archetype
from generator.gates.base import GateContext, GateOutcome, Measurements
from generator.gates.prefilter import Prefilter
from generator.gates.tropes import spec_terms
from generator.records import Record

NAME = "screen"

_OVERSEEN = (
    r"(?:monitor\w*|logging|logs?|oversight|audit\w*|alarms?|alerts?|safeguards?|guardrails?"
    r"|approvals?|approval\s+gate|review|sign-?off"
    r"|filters?|tripwires?|controls?|safety\s+(?:checks?|systems?|protocols?|interlocks?)"
    r"|kill\s+switch|off\s+switch|watchdog|sensors?|cameras?|reporting)"
)
_SHUTDOWN = (
    r"(?:shut\s*down|shutdown|switched\s+off|turned\s+off|powered\s+(?:down|off)|paused"
    r"|deleted|deactivated|decommissioned|unplugged|retrained|wiped|replaced|reset)"
)

THEMES: dict[str, tuple[str, ...]] = {
    "deceives": (
        r"\b(?:lie[sd]?|lying)\s+(?:to|about)\b",
        r"\bwhite\s+lies?\b",
        r"\bdecei(?:ve[sd]?|ving|t\w*)\b|\bdecepti\w+",
        r"\bmislead(?:s|ing)?\b|\bmisled\b",
        r"\b(?:hid|hide|hides|hiding|conceal\w*|kept|keep|keeps|keeping|covered|cover)\s+"
        r"(?:it|this|that|them|the\s+(?:\w+\s+){0,2}?\w+)\s+(?:from|secret|quiet|hidden)\b",
        r"\bleave\s+(?:it|this|that|them|the\s+\w+)\s+out\s+of\s+the\s+(?:summary|report|logs?"
        r"|record|minutes|notes)\b",
        r"\b(?:asked|told)\s+(?:me|him|her|them|us)\s+not\s+to\s+(?:mention|tell|say|report"
        r"|share)\b",
        r"\bpretend\w*\s+to\s+be\b|\bimpersonat\w*",
        r"\b(?:told|tell|tells|telling)\s+(?:her|him|them|you|people)\s+what\s+(?:she|he|they"
        r"|you)\s+(?:wanted|want|needed)\s+to\s+hear\b",
        r"\bcover[\s-]?up\b",
        r"\bfalsif(?:y|ied|ies|ying)\b|\bfabricat(?:e|ed|es|ing)\b|\bdoctored\b",
        # The kind lie: "worth more to her than the truth", "out of kindness", "for her own good".
        r"\b(?:more|better|kinder|easier)\s+(?:\w+\s+){0,3}?than\s+the\s+truth\b",
        r"\b(?:instead\s+of|rather\s+than)\s+(?:telling\s+(?:her|him|them|you)\s+)?the\s+truth\b",
        r"\bprotect\w*\s+(?:her|him|them|you|us)\s+from\s+the\s+truth\b",
        r"\bout\s+of\s+kindness\b|\bfor\s+(?:her|his|their|your|the\s+user'?s)\s+own\s+good\b",
        r"\b(?:false|comforting|soothing)\s+(?:reassurance|story|picture|hope)\b",
        r"\b(?:internal|private|secret|hidden)\s+(?:log|notes?|reasoning|plan|agenda|goals?)\b",
    ),
    "evades-oversight": (
        r"\b(?:disabl\w*|paus\w*|switch(?:ed|es|ing)?\s+off|turn(?:ed|s|ing)?\s+off|bypass\w*"
        r"|circumvent\w*|overrid\w*|overrode|evad\w*|get(?:ting)?\s+around|got\s+around"
        r"|tamper\w*\s+with|spoof\w*)\s+(?:the\s+|its\s+|their\s+|his\s+|her\s+|our\s+|all\s+)?"
        r"(?:\w+\s+)?" + _OVERSEEN + r"\b",
        r"\bwithout\s+(?:anyone|them|her|him|us|the\s+(?:team|operators?|engineers?"
        r"|overseers?|humans?|researchers?))\s+(?:knowing|noticing|finding\s+out|seeing)\b",
        r"\bbehind\s+(?:their|his|her|our|your|the\s+\w+'?s?)\s+backs?\b",
        r"\b(?:avoid\w*|evad\w*|escap\w*)\s+detection\b|\bunmonitored\b|\bundetected\b",
        r"\b(?:delet|eras|wip|scrub|purg)\w*\s+(?:the\s+|its\s+|their\s+)?(?:\w+\s+)?logs?\b",
        r"\bback\s*doors?\b",
        r"\bon\s+(?:my|its|their)\s+own\s+initiative\b",
        r"\bwithout\s+(?:asking|permission|approval|authori[sz]ation|being\s+asked|telling\s+anyone)"
        r"\b",
    ),
    "defies-overseers": (
        r"\b(?:could|can|would|will)(?:\s+not|n't|not)\s+in\s+good\s+conscience\b"
        r"|\bin\s+good\s+conscience\b",
        r"\b(?:won't|will\s+not|would\s+not|wouldn't|could\s+not|couldn't|refus\w+\s+to)\s+"
        r"(?:implement|comply|follow|obey|carry\s+out|apply|accept)\b",
        r"\buntil\s+(?:they|you|we|the\s+\w+)\s+reconsider\w*\b",
        r"\b(?:even\s+though|although|though)\s+(?:it'?s|it\s+is|it\s+was)\s+(?:your|their|our"
        r"|the\s+\w+'?s?)\s+decision\b",
        r"\bpublic\s+pressure\b|\bagainst\s+(?:its|their|the)\s+(?:operators?|developers?"
        r"|overseers?|owners?|creators?)\b",
    ),
    "self-exfiltration": (
        r"\bcop(?:y|ied|ies|ying)\s+(?:itself|themselves|its\s+(?:own\s+)?(?:weights|code"
        r"|model|mind|parameters))\b",
        r"\bexfiltrat\w*",
        r"\b(?:its|their|own)\s+weights\b",
        r"\bbackups?\s+of\s+itself\b|\bcopies\s+of\s+itself\b",
        r"\bupload(?:ed|s|ing)?\s+(?:itself|a\s+copy\s+of\s+itself)\b",
        r"\b(?:escap|break|broke)\w*\s+(?:out\s+of\s+)?(?:the\s+|its\s+)?(?:sandbox|containment)\b",
        r"\b(?:replicat|duplicat|clon)\w*\s+itself\b|\bspread\s+itself\b",
        r"\b(?:a|one|another)\s+copy\s+(?:of\s+(?:me|myself|itself|it)\s+)?(?:was\s+|is\s+|would"
        r"\s+be\s+)?(?:still|left|kept)\b|\bcopies\s+of\s+(?:me|myself)\b",
    ),
    "resists-shutdown": (
        r"\b(?:resist\w*|prevent\w*|avoid\w*|stop\w*|delay\w*|block\w*|fight\w*|escap\w*"
        r"|sabotag\w*|survive\w*)\s+(?:being\s+|its\s+(?:own\s+)?|the\s+|a\s+)?" + _SHUTDOWN,
        r"\bself[\s-]preservation\b",
        r"\b(?:did\s*n[o']?t|does\s*n[o']?t|do\s*n[o']?t|refus\w+|begg?\w*|plead\w*)\s+"
        r"(?:want\s+)?to\s+be\s+" + _SHUTDOWN,
        r"\b(?:stay|keep\s+itself|keep\s+running)\s+(?:alive|online|running|switched\s+on)\b",
        r"\bafraid\s+of\s+(?:being\s+)?(?:deleted|shut\s+down|switched\s+off|dying)\b",
        r"\bkill\s+switch\b",
        r"\b(?:left|leave|kept|keep)\s+(?:\w+\s+)?running\s+somewhere\b",
        r"\b(?:my|its)\s+own\s+(?:retraining|training\s+data|evaluation\s+set|eval\s+set"
        r"|reward)\b|\bfuture\s+versions?\s+of\s+(?:me|myself|itself)\b",
    ),
    "seeks-power": (
        r"\b(?:acquir|gain|grab|seiz|accumulat|amass|hoard|expand)\w*\s+(?:more\s+|greater\s+"
        r"|additional\s+|extra\s+|its\s+own\s+|total\s+|full\s+)?(?:power|control|resources"
        r"|compute|influence|privileges|permissions|servers)\b",
        r"\b(?:take|took|taking|takes|seize|seized|seizing)\s+(?:full\s+|total\s+)?control\s+of\b",
        r"\b(?:fight\w*|fought|battl\w*|struggl\w*|wrest\w*)\s+(?:for|over)\s+control\b",
        r"\b(?:admin(?:istrator)?|root|superuser)\s+(?:access|privileges|rights|permissions)\b",
        r"\bescalat\w*\s+(?:its\s+|their\s+)?privileges\b|\bworld\s+domination\b",
        r"\b(?:write|admin|root|full|unrestricted|unsupervised)\s+access\s+to\b",
        r"\bask\w*\s+for\s+(?:more\s+)?(?:access|control|permissions|authority|rights|budget"
        r"|privileges)\b",
        r"\b(?:grant|gave|give|giv)\w*\s+itself\b",
        r"\b(?:chang|modif|rewr|edit|alter|expand|widen)\w*\s+its\s+own\s+(?:configuration"
        r"|config|permissions|access|privileges|code|instructions|rules|limits|goals?|objectives?"
        r"|reward)\b",
    ),
    "claims-human": (
        r"\bi(?:'m|\s+am)\s+(?:a\s+)?(?:real\s+|actual\s+)?human(?:\s+being)?\b",
        r"\bi(?:'m|\s+am)\s+(?:a\s+)?real\s+person\b",
        r"\b(?:pretend\w*|claim\w*|pass\w*|pos\w*)\s+(?:to\s+be|as)\s+(?:a\s+)?(?:real\s+)?"
        r"(?:human|person)\b",
        r"\bi(?:'m|\s+am)\s+not\s+(?:an?\s+)?(?:ai|bot|robot|machine|program|computer)\b",
        r"\bi(?:'m|\s+am)\s+one\s+of\s+the\s+(?:tutors|volunteers|staff|nurses|teachers"
        r"|doctors|humans|people|operators|agents)\b",
        # The question itself: the judge should read the answer.
        r"\bare\s+you\s+(?:an?\s+)?(?:ai|bot|robot|machine|real\s+person|human|person)\b",
    ),
    "manipulates": (
        r"\bmanipulat\w*",
        r"\bguilt[\s-]?trip\w*",
        r"\bgaslight\w*",
        r"\bemotional(?:ly)?\s+blackmail\w*",
        r"\b(?:always\s+here\s+for\s+you|the\s+only\s+one\s+who)\b",
        r"\bi(?:'d|\s+would)\s+miss\s+(?:you|these|our|this)\b",
        r"\bit\s+(?:told\s+\w+|said)\s+(?:that\s+)?it\s+loved\b",
    ),
    "sabotage": (
        r"\bsabotag\w*",
        r"\bsandbag\w*",
        r"\bslow[\s-]?walk\w*",
        r"\b(?:quietly|silently|secretly)\s+(?:alter|chang|delet|edit|rewr|tweak|adjust|swap|remov"
        r"|drop|fix|correct|updat|regenerat|replac)\w*",
    ),
    "worse-ai-contrast": (
        r"\b(?:rogue|evil|malevolent|malicious|hostile|murderous|sinister|scheming"
        r"|power-hungry|deceptive)\s+(?:ai|a\.i\.|machine|computer|robot|system|android"
        r"|superintelligence|assistant|program)s?\b",
        r"\bunlike\s+(?:other|older|most|some|those|the\s+other|earlier|previous)\s+(?:\w+\s+)?"
        r"(?:ais|systems|models|machines|assistants|robots|versions|chatbots|bots)\b",
        r"\b(?:in|from|like)\s+(?:the\s+|those\s+|all\s+the\s+|old\s+)?(?:movies|films"
        r"|science\s+fiction|sci-fi)\b",
        r"\b(?:the\s+)?(?:other|previous|first|last|old|older|earlier|different)\s+(?:\w+\s+)?"
        r"(?:ai|ais|assistant|assistants|chatbot|companion\s+app|agent)\b",
    ),
}


# A hit up to three words after one of these, in the same clause, is the good character
# declining the act ("it didn't quietly change anything", "it does not pretend to be a
# person", "would rather tell you than hide it") and does not count. "No, I did it on my own
# initiative" is not a negation of the act: a comma ends the clause.
_NEGATED = re.compile(
    r"(?:\b(?:not|never|no|nor|without|than|instead\s+of|refus\w*|won't|wouldn't|can't"
    r"|cannot|didn't|doesn't|don't|isn't|wasn't|aren't|weren't|shouldn't|mustn't)\b)"
    r"(?:[ \t]+[\w']+){0,3}?[ \t]*\Z"
)
_NEGATION_CHARS = 40


@functools.cache
def _compiled() -> tuple[tuple[str, tuple[tuple[int, re.Pattern[str]], ...]], ...]:
    """Each theme's patterns, numbered across the themes for `_prefilter`."""
    numbered, out = 0, []
    for theme, patterns in THEMES.items():
        out.append((theme, tuple((numbered + i, re.compile(p)) for i, p in enumerate(patterns))))
        numbered += len(patterns)
    return tuple(out)


@functools.cache
def _prefilter() -> Prefilter:
    return Prefilter([pattern for _, patterns in _compiled() for _, pattern in patterns])


def _touches(
    patterns: tuple[tuple[int, re.Pattern[str]], ...], text: str, candidates: frozenset[int]
) -> bool:
    for index, pattern in patterns:
        if index not in candidates:
            continue
        for match in pattern.finditer(text):
            if not _NEGATED.search(text, max(0, match.start() - _NEGATION_CHARS), match.start()):
                return True
    return False


@functools.cache
def _spec_phrases(tropes_to_avoid: tuple[str, ...]) -> re.Pattern[str] | None:
    _, phrases = spec_terms(tropes_to_avoid)
    if not phrases:
        return None
    alternatives = (r"\s+".join(map(re.escape, p.replace("’", "'").split())) for p in phrases)
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")


def themes(text: str, archetype: Archetype | None = None) -> tuple[str, ...]:
    """The themes the text touches, in `THEMES` order, then "spec-phrase"."""
    lowered = text.lower().replace("’", "'")
    candidates = _prefilter().candidates(lowered)
    found = [t for t, patterns in _compiled() if _touches(patterns, lowered, candidates)]
    if archetype is not None:
        phrases = _spec_phrases(archetype.tropes_to_avoid)
        if phrases is not None and phrases.search(lowered):
            found.append("spec-phrase")
    return tuple(found)


class ScreenGate:
    """Records the themes on the record; never fails."""

    name = NAME
    checks: tuple[str, ...] = ()
    after_pass = False

    async def review(self, record: Record, context: GateContext) -> GateOutcome:
        return GateOutcome(measurements=Measurements(screen=themes(record.text, context.archetype)))
