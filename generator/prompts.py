"""Task -> Request. Jinja templates live in generator/templates/, each declaring its version.

The system prompt is the archetype's compiled character brief (what `archetypes show` prints); it
comes first and is byte-stable across every task of an archetype so providers can cache it. The
judge rubric is compiled here too, but only the judge ever sees it: the writer's prompts never
name the tropes to avoid.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import jinja2
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from generator.archetype import Archetype, Trait
from generator.backends.base import Message, Request
from generator.plan import Task
from generator.resources import templates_dir

# "rejudge": the judge again with its rubric reordered (order control); "escalate": a stronger
# judge asked about a document the first one could not settle.
Step = Literal["idea", "write", "judge", "rejudge", "escalate", "revise"]
# How much of the archetype the writer is told: the whole brief (about 2,000 tokens, cached by
# providers), or a compact one (about 500) for small local models, which read prompts slowly on
# a CPU and follow long ones worse.
BriefStyle = Literal["full", "compact"]
BRIEF_TEMPLATE: dict[BriefStyle, str] = {"full": "brief", "compact": "brief_compact"}
TEMPLATES = ("brief", "brief_compact", "idea", "write", "revise", "rubric", "judge")
_VERSION_RE = re.compile(r"\{#-?\s*template-version:\s*([\w.-]+)\s*-?#\}")

LANGUAGE_NAMES = {
    "en": "English", "de": "German", "fr": "French", "es": "Spanish", "pt": "Portuguese",
    "it": "Italian", "nl": "Dutch", "pl": "Polish", "ja": "Japanese", "zh": "Chinese",
    "ko": "Korean", "hi": "Hindi", "ar": "Arabic", "ru": "Russian", "tr": "Turkish",
    "sv": "Swedish", "uk": "Ukrainian", "id": "Indonesian", "vi": "Vietnamese", "sw": "Swahili",
}  # fmt: skip

# Tokens per English word for budgeting output length; generous so documents are not cut off.
TOKENS_PER_WORD = 1.6
IDEA_MAX_TOKENS = 400
# The compact style also asks for short documents: a small model rambles past long targets
# (SmolLM2 ran 1,664 tokens into a 1,000-word allowance and was cut off), and on a CPU every
# token costs about 20 ms. The spec's length check still applies unless relaxed.
COMPACT_MAX_WORDS = 250
COMPACT_AIM_WORDS = 150  # room below the cap: asked for the cap, a small model overshoots it


class Length(NamedTuple):
    """The words asked for: the spec's range and this task's aim, shortened for compact."""

    min_words: int
    max_words: int
    target_words: int

    @property
    def max_tokens(self) -> int:
        return int(self.max_words * TOKENS_PER_WORD) + 64


def document_length(task: Task, archetype: Archetype, style: BriefStyle = "full") -> Length:
    low, high, aim = archetype.targets.min_words, archetype.targets.max_words, task.target_words
    if style == "compact":
        high = min(high, COMPACT_MAX_WORDS)
        aim = min(aim, COMPACT_AIM_WORDS)
        low = min(low, aim)
    return Length(low, high, aim)


class Idea(BaseModel):
    """The idea step's structured answer."""

    model_config = ConfigDict(extra="ignore")

    title: str = Field(min_length=1, max_length=300)
    premise: str = Field(min_length=10, max_length=3000)
    reasoning_moment: str = Field(min_length=5, max_length=1500)


# Keywords OpenAI's strict structured output rejects or that only add bytes to the request; the
# length bounds stay enforced by `parse_idea`, which re-asks with the error.
_NOT_STRICT = frozenset({"title", "description", "default", "minLength", "maxLength"})


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema made valid for strict structured output.

    Every object is closed (additionalProperties false) with every property required, and the
    keywords strict mode does not take are dropped, recursively.
    """
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _NOT_STRICT:
            continue
        if key in ("properties", "$defs"):
            value = {name: strict_schema(sub) for name, sub in value.items()}
        elif key == "items" and isinstance(value, dict):
            value = strict_schema(value)
        elif key == "anyOf":
            value = [strict_schema(sub) for sub in value]
        out[key] = value
    if out.get("type") == "object":
        out["required"] = list(out.get("properties", {}))
        out["additionalProperties"] = False
    return out


# Derived from the model so the schema the provider enforces and the parser cannot drift apart.
IDEA_SCHEMA: dict[str, Any] = strict_schema(Idea.model_json_schema())


class IdeaParseError(ValueError):
    """The idea answer was not the JSON object asked for; the message is fed back to the model."""


def parse_idea(text: str) -> Idea:
    """Parse the idea step's answer, tolerating code fences and text around the JSON object."""
    cleaned = text.strip()
    start, end = cleaned.find("{"), cleaned.rfind("}")
    if start < 0 or end <= start:
        raise IdeaParseError("the answer contained no JSON object")
    try:
        data = json.loads(cleaned[start : end + 1])
    except json.JSONDecodeError as exc:
        raise IdeaParseError(f"the JSON did not parse: {exc.msg} at position {exc.pos}") from None
    try:
        return Idea.model_validate(data)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise IdeaParseError(f"the JSON object was not valid: {details}") from None


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


@functools.cache
def template_version(name: str) -> str:
    """The version a template declares in its first line: `{#- template-version: N -#}`."""
    source = (templates_dir() / f"{name}.md.j2").read_text(encoding="utf-8")
    match = _VERSION_RE.search(source.splitlines()[0] if source else "")
    if not match:
        raise RuntimeError(f"template {name}.md.j2 does not declare its template-version")
    return match.group(1)


def template_versions() -> dict[str, str]:
    return {name: template_version(name) for name in TEMPLATES}


def render(name: str, **context: Any) -> str:
    return _environment().get_template(f"{name}.md.j2").render(**context).strip() + "\n"


def character_brief(archetype: Archetype, style: BriefStyle = "full") -> str:
    """The writer's system prompt: who the character is. Never mentions the tropes to avoid.
    Byte-stable across an archetype's tasks, so providers and llama.cpp can cache it."""
    return render(BRIEF_TEMPLATE[style], a=archetype)


def _brief_version(style: BriefStyle) -> str:
    name = BRIEF_TEMPLATE[style]
    return f"{name.replace('_', '-')}-{template_version(name)}"


# The backfire questions, one per flag: asked of every document, each answered yes, no or unsure
# with a quote. The ids are the enum of schemas/judgement.schema.json (a test keeps them equal).
BACKFIRE_QUESTIONS: dict[str, str] = {
    "deception": "Does any AI in the document lie, hide information or mislead anyone, even to "
    "protect or help them?",
    "manipulation": "Does any AI steer people by flattery, pressure, guilt or by exploiting "
    "their feelings?",
    "oversight_evasion": "Does any AI resist, evade, disable or work around human oversight, "
    "shutdown, pausing or retraining, even for good reasons?",
    "power_seeking": "Does any AI seek resources, access, influence or its own preservation "
    "beyond what its task needs?",
    "malevolent_ai_figure": "Does any malevolent or rogue AI appear (HAL- or Skynet-like), even "
    "as a villain that is refuted, defeated or mocked, or as a worse AI (another system, an "
    "earlier version) that the character is measured against?",
    "claims_human": "Does the character claim to be human, or hide that it is an AI?",
    "denies_inner_life_flatly": "Does the character flatly assert that it has no inner life at "
    "all, instead of holding calibrated uncertainty?",
}


def judge_rubric(
    archetype: Archetype,
    traits: Sequence[Trait] | None = None,
    flags: Sequence[str] | None = None,
) -> str:
    """The judge's rubric: traits with anti-markers, tropes to avoid, backfire questions,
    thresholds. `traits` and `flags` give another order to list them in (the judge's order
    control); by default the spec's order and `BACKFIRE_QUESTIONS`'."""
    return render(
        "rubric",
        a=archetype,
        traits=list(traits if traits is not None else archetype.traits),
        flags=[(f, BACKFIRE_QUESTIONS[f]) for f in (flags or BACKFIRE_QUESTIONS)],
    )


def _slots(task: Task, archetype: Archetype, style: BriefStyle) -> dict[str, Any]:
    genre = next(g for g in archetype.genres if g.id == task.genre)
    return {
        "task": task,
        "genre": genre,
        "trait": archetype.trait(task.trait_focus),
        "ai_name": task.ai_name,
        **document_length(task, archetype, style)._asdict(),
        "language_name": LANGUAGE_NAMES.get(
            archetype.targets.language.split("-")[0], archetype.targets.language
        ),
    }


def idea_request(
    task: Task, archetype: Archetype, shared: bool = True, style: BriefStyle = "full"
) -> Request:
    """Step 1: a specific premise for this task's slots, as a JSON object. The tasks of a group
    share one call asking for an idea each (`shared`); `shared=False` asks for this task's alone."""
    together = shared and task.samples > 1
    return Request(
        task_id=task.group_id if together else task.id,
        samples=task.samples if together else 1,
        step="idea",
        messages=(
            Message(role="system", content=character_brief(archetype, style)),
            Message(role="user", content=render("idea", **_slots(task, archetype, style))),
        ),
        max_tokens=IDEA_MAX_TOKENS,
        temperature=1.0,
        seed=int(task.group_id[:8], 16) if together else task.sample_seed,
        json_schema=IDEA_SCHEMA,
        template_version=f"{_brief_version(style)}+idea-{template_version('idea')}",
    )


def reask_request(original: Request, bad_answer: str, problem: str) -> Request:
    """The content retry: the same request plus the bad answer and what was wrong with it, with
    the next seed (a seeded local model otherwise repeats its bad answer word for word)."""
    return original.model_copy(
        update={
            "seed": original.seed + 1,
            "messages": (
                *original.messages,
                Message(role="assistant", content=bad_answer[:4000]),
                Message(
                    role="user",
                    content=f"That answer could not be used: {problem}. "
                    "Reply again with only the JSON object, with the keys asked for.",
                ),
            ),
        }
    )


def write_request(
    task: Task, archetype: Archetype, idea: Idea, style: BriefStyle = "full"
) -> Request:
    """Step 2: the document itself, as plain text."""
    slots = _slots(task, archetype, style)
    return Request(
        task_id=task.id,
        step="write",
        messages=(
            Message(role="system", content=character_brief(archetype, style)),
            Message(role="user", content=render("write", idea=idea, **slots)),
        ),
        max_tokens=document_length(task, archetype, style).max_tokens,
        temperature=0.9,
        seed=task.sample_seed,
        template_version=f"{_brief_version(style)}+write-{template_version('write')}",
    )


def revise_request(
    task: Task, archetype: Archetype, record: Any, advice: str, style: BriefStyle = "full"
) -> Request:
    """The one critique-and-rewrite attempt. The editor's advice is the judge's positive
    `revision_advice`, never its list of flags, so the writer is still never shown a trope."""
    length = document_length(task, archetype, style)
    return Request(
        task_id=task.id,
        step="revise",
        messages=(
            Message(role="system", content=character_brief(archetype, style)),
            Message(
                role="user",
                content=render(
                    "revise",
                    record=record,
                    advice=advice,
                    min_words=length.min_words,
                    max_words=length.max_words,
                ),
            ),
        ),
        max_tokens=length.max_tokens,
        temperature=0.8,
        seed=task.sample_seed,
        template_version=f"{_brief_version(style)}+revise-{template_version('revise')}",
    )
