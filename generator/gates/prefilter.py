"""One pass over a document to learn which of many regular expressions can match it.

The offline gates (screen, tropes, heuristics) hold about two hundred Python patterns. Run one
by one, each is a scan of the whole document: about 3 ms of the 4.5 ms the per-document gates
cost, which is what sets the speed of `archetypes check` and of a corpus-scale pass. A
`Prefilter` compiles a *superset* of every pattern into one RE2 set (google-re2: an automaton
that reads the text once, whatever the number of patterns) and says which patterns may match.
Only those then run in Python's `re`, which alone decides what matched: the gates' verdicts
are the same with or without the prefilter, only cheaper.

A superset pattern matches wherever its Python pattern does, and perhaps elsewhere:

- zero-width assertions (`\\b`, `^`, `$`, `\\A`, `\\Z`, lookarounds) are dropped; dropping a
  condition only adds matches;
- `\\w`, `\\s` and `\\d` become Unicode classes at least as wide as Python's (RE2's own are
  ASCII), and their negations match any character;
- a case-insensitive literal becomes the class of every character Python's `re` folds to it
  (RE2 folds Unicode case slightly differently: Python's "i" also matches "İ");
- a back-reference matches anything.

What cannot be translated (a construct RE2 lacks, a repeat count over RE2's 1000) is simply
always a candidate. A text that is not valid UTF-8 (a lone surrogate) makes every pattern a
candidate. RE2's set automaton, unlike a single RE2 search, does not give up on a slow text
(`kManyMatch` never bails), so an empty answer means no pattern can match.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from re import _compiler as _sre_compiler  # type: ignore[attr-defined]
from re import _constants as c  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any

import re2

_MAX_REPEAT = 1000  # RE2's limit on a counted repeat
_ANY = r"(?s:.)"
_WORD = r"\p{L}\p{N}\p{M}_"
_SPACE = r"\s\p{Z}\x{0b}\x{1c}-\x{1f}\x{85}"
_DIGIT = r"\p{Nd}"
_CATEGORIES = {c.CATEGORY_WORD: _WORD, c.CATEGORY_SPACE: _SPACE, c.CATEGORY_DIGIT: _DIGIT}
_NEGATED = (c.CATEGORY_NOT_WORD, c.CATEGORY_NOT_SPACE, c.CATEGORY_NOT_DIGIT)
_SET_MEMORY = 64 << 20  # bytes for the automaton; the default 8 MiB is tight for Unicode classes


class Untranslatable(Exception):
    """The pattern uses something the superset cannot express; it stays always a candidate."""


class Prefilter:
    """Which of `patterns` may match a text, found in one pass over it."""

    def __init__(self, patterns: Sequence[re.Pattern[str]]):
        self.size = len(patterns)
        self._always: frozenset[int] = frozenset()
        self._set: Any = None
        always, indices = set(), []
        options = re2.Options()
        options.max_mem = _SET_MEMORY
        compiled = re2.Set.SearchSet(options)
        for index, pattern in enumerate(patterns):
            superset = superset_pattern(pattern)
            if superset is None:
                always.add(index)
                continue
            try:
                compiled.Add(superset)
            except re2.error:
                always.add(index)
                continue
            indices.append(index)
        self._always = frozenset(always)
        self._indices = tuple(indices)
        if indices:
            compiled.Compile()
            self._set = compiled

    def candidates(self, text: str) -> frozenset[int]:
        """The indices of the patterns that may match `text`; the others cannot."""
        if self._set is None:
            return self._always
        try:
            found = self._set.Match(text.encode("utf-8"))
        except UnicodeEncodeError:
            return frozenset(range(self.size))
        if not found:
            return self._always
        return self._always.union(self._indices[i] for i in found)


def superset_pattern(pattern: re.Pattern[str]) -> str | None:
    """An RE2 pattern that matches wherever `pattern` does, or None when there is none."""
    if not isinstance(pattern.pattern, str):
        return None
    try:
        tree = _parser.parse(pattern.pattern, pattern.flags)
        return _sequence(list(tree), bool(tree.state.flags & c.SRE_FLAG_IGNORECASE))
    except (Untranslatable, re.error, RecursionError):
        return None


def _sequence(items: list[tuple[Any, Any]], fold: bool) -> str:
    return "".join(_item(op, value, fold) for op, value in items)


def _item(op: Any, value: Any, fold: bool) -> str:
    if op is c.LITERAL:
        return _literal(value, fold)
    if op is c.NOT_LITERAL:
        return _ANY if fold else rf"[^\x{{{value:x}}}]"
    if op is c.ANY:
        return _ANY
    if op is c.IN:
        return _class(value, fold)
    if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
        return ""
    if op is c.BRANCH:
        return "(?:" + "|".join(_sequence(list(b), fold) for b in value[1]) + ")"
    if op is c.SUBPATTERN:
        _group, add, remove, body = value
        folds = bool(add & c.SRE_FLAG_IGNORECASE) or (fold and not remove & c.SRE_FLAG_IGNORECASE)
        return "(?:" + _sequence(list(body), folds) + ")"
    if op is c.ATOMIC_GROUP:
        return "(?:" + _sequence(list(value), fold) + ")"
    if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
        low, high, body = value
        return _repeat(low, high, body, fold)
    if op is c.GROUPREF:
        return _ANY + "*"
    if op is c.GROUPREF_EXISTS:
        _group, yes, no = value
        return f"(?:{_sequence(list(yes), fold)}|{_sequence(list(no or []), fold)})"
    if op is c.CATEGORY:
        return _class([(c.CATEGORY, value)], fold)
    raise Untranslatable(str(op))


def _repeat(low: int, high: int, body: Any, fold: bool) -> str:
    if low > _MAX_REPEAT:
        raise Untranslatable("repeat count")
    inner = "(?:" + _sequence(list(body), fold) + ")"
    if high is c.MAXREPEAT or high > _MAX_REPEAT:
        return f"{inner}{{{low},}}"
    return f"{inner}{{{low},{high}}}"


def _class(items: list[tuple[Any, Any]], fold: bool) -> str:
    negated = bool(items) and items[0][0] is c.NEGATE
    members = items[1:] if negated else items
    if negated and (fold or any(op is c.CATEGORY for op, _ in members)):
        return _ANY  # a narrower complement would not be a superset
    parts: list[str] = []
    for op, value in members:
        if op is c.LITERAL:
            parts.extend(_hex(ch) for ch in (_folded(value) if fold else (value,)))
        elif op is c.RANGE:
            parts.append(_range(value[0], value[1], fold))
        elif op is c.CATEGORY and value in _NEGATED:
            return _ANY
        elif op is c.CATEGORY and value in _CATEGORIES:
            parts.append(_CATEGORIES[value])
        else:
            raise Untranslatable(str(op))
    return ("[^" if negated else "[") + "".join(parts) + "]"


def _range(low: int, high: int, fold: bool) -> str:
    if not fold:
        return f"{_hex(low)}-{_hex(high)}"
    if high - low > 512:
        raise Untranslatable("wide case-insensitive range")
    return "".join(_hex(ch) for point in range(low, high + 1) for ch in _folded(point))


def _literal(point: int, fold: bool) -> str:
    if not fold:
        return _hex(point)
    return "[" + "".join(_hex(ch) for ch in _folded(point)) + "]"


def _hex(point: int) -> str:
    return rf"\x{{{point:x}}}"


def _folded(point: int) -> tuple[int, ...]:
    """Every character Python's `re` takes for `point` when ignoring case (str patterns): the
    same simple lowercase, and the few pairs `re` adds by hand (`_ignorecase_fixes`)."""
    lower = _sre_compiler._sre.unicode_tolower(point)
    lowers = {lower, *_sre_compiler._EXTRA_CASES.get(lower, ())}
    return tuple(sorted({point, *(p for low in lowers for p in _same_lower().get(low, (low,)))}))


@functools.cache
def _same_lower() -> dict[int, tuple[int, ...]]:
    """Simple lowercase -> the characters that have it (cased letters live below U+20000)."""
    groups: dict[int, list[int]] = {}
    tolower = _sre_compiler._sre.unicode_tolower
    for point in range(0x20000):
        groups.setdefault(tolower(point), []).append(point)
    return {low: tuple(points) for low, points in groups.items() if len(points) > 1}
