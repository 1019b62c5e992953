"""Plan -> an estimate of requests, tokens and cost, before anything is spent."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from generator.archetype import Archetype
from generator.plan import Task
from generator.pricing import Price, load_prices
from generator.prompts import (
    BriefStyle,
    character_brief,
    document_length,
    idea_request,
    judge_rubric,
)
from generator.tokens import count_tokens

# Tokens per English word in model output (cl100k/o200k-like tokenizers average about 1.3).
OUTPUT_TOKENS_PER_WORD = 1.35
# What the idea step's JSON answer typically costs, and what the write prompt adds to the brief.
IDEA_OUTPUT_TOKENS = 180
WRITE_PROMPT_EXTRA_TOKENS = 420
JUDGE_PROMPT_EXTRA_TOKENS = 200
# The judge's answer: seven backfire answers (about 100 tokens with their quotes), then scores
# with evidence, critique and advice.
JUDGE_OUTPUT_TOKENS = 450

DEFAULT_MODELS = {"local": "SmolLM2-135M-Instruct", "openai": None, "anthropic": None}


def default_model(provider: str) -> str:
    return DEFAULT_MODELS.get(provider) or "unknown"


@dataclass(frozen=True)
class Estimate:
    requests: int
    input_tokens: int
    cached_input_tokens: int  # read from the provider's prompt cache
    cache_write_tokens: int  # written to it (Anthropic bills these above the input rate)
    output_tokens: int
    model: str
    price: Price | None
    batch: bool = False

    @property
    def cost(self) -> float | None:
        if self.price is None:
            return None
        # Writes are to the 5-minute cache, the lifetime the requests ask for.
        return self.price.cost(
            self.input_tokens,
            self.output_tokens,
            self.cached_input_tokens,
            batch=self.batch,
            cache_write_5m_tokens=self.cache_write_tokens,
        )

    def describe(self) -> str:
        cost = (
            "unknown (no price for this model: pass --prices FILE)"
            if self.cost is None
            else f"${self.cost:,.2f}"
        )
        discounts = " with batch pricing" if self.batch else ""
        return (
            f"estimate for {self.model}: {self.requests:,} requests, ~{self.input_tokens:,} input tokens "
            f"(~{self.cached_input_tokens:,} from the prompt cache, ~{self.cache_write_tokens:,} "
            f"written to it), ~{self.output_tokens:,} output tokens, "
            f"cost {cost}{discounts} (before retries, rewrites and rejected documents)"
        )


def estimate(
    tasks: Sequence[Task],
    archetypes: Mapping[str, Archetype],
    model: str,
    provider: str,
    prices_file: Path | None = None,
    self_hosted: bool = False,
    batch: bool = False,
    style: BriefStyle = "full",
) -> Estimate:
    """Three requests per task (idea, document, judgement), or one idea request per group when
    tasks share idea calls (--samples-per-request). Input tokens are counted on the rendered
    prompts; the brief and the rubric are shared prefixes: the first requests of an archetype
    write them to the provider's prompt cache (dearer than plain input at Anthropic), every later
    one reads them from it (cheaper)."""
    brief_tokens = functools.cache(
        lambda a_id: count_tokens(character_brief(archetypes[a_id], style))
    )
    rubric_tokens = functools.cache(lambda a_id: count_tokens(judge_rubric(archetypes[a_id])))
    requests = input_tokens = cached = written = output_tokens = 0
    seen: set[str] = set()
    for task in tasks:
        a_id = task.archetype_id
        archetype = archetypes[a_id]
        aim = document_length(task, archetype, style).target_words
        document_tokens = int(aim * OUTPUT_TOKENS_PER_WORD)
        if task.sample == 0:  # later tasks of a group get their idea from this task's call
            idea_prompt = idea_request(task, archetype, style=style).messages[-1].content
            input_tokens += brief_tokens(a_id) + count_tokens(idea_prompt)
            cached += brief_tokens(a_id)
            requests += 1
        input_tokens += brief_tokens(a_id) + WRITE_PROMPT_EXTRA_TOKENS
        input_tokens += rubric_tokens(a_id) + document_tokens + JUDGE_PROMPT_EXTRA_TOKENS
        cached += brief_tokens(a_id) + rubric_tokens(a_id)
        if a_id not in seen:  # the first requests of an archetype write its prefixes to the cache
            cached -= brief_tokens(a_id) + rubric_tokens(a_id)
            written += brief_tokens(a_id) + rubric_tokens(a_id)
        seen.add(a_id)
        requests += 2
        output_tokens += IDEA_OUTPUT_TOKENS + document_tokens + JUDGE_OUTPUT_TOKENS
    price = load_prices(prices_file).lookup(model, provider, self_hosted)
    return Estimate(
        requests=requests,
        input_tokens=input_tokens,
        cached_input_tokens=cached,
        cache_write_tokens=written,
        output_tokens=output_tokens,
        model=model,
        price=price,
        batch=batch,
    )
