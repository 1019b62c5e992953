"""Plan -> an estimate of requests, tokens and cost, before anything is spent."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from generator.plan import Task
from generator.pricing import Price, load_prices
from generator.prompts import IDEA_MAX_TOKENS, character_brief, idea_request
from generator.spec import Archetype
from generator.tokens import count_tokens

# Tokens per English word in model output (cl100k/o200k-like tokenizers average about 1.3).
OUTPUT_TOKENS_PER_WORD = 1.35
# What the idea step's JSON answer typically costs, and what the write prompt adds to the brief.
IDEA_OUTPUT_TOKENS = 180
WRITE_PROMPT_EXTRA_TOKENS = 420

DEFAULT_MODELS = {"local": "SmolLM2-135M-Instruct", "openai": None, "anthropic": None}


def default_model(provider: str) -> str:
    return DEFAULT_MODELS.get(provider) or "unknown"


@dataclass(frozen=True)
class Estimate:
    requests: int
    input_tokens: int
    output_tokens: int
    model: str
    price: Price | None

    @property
    def cost(self) -> float | None:
        if self.price is None:
            return None
        return self.price.cost(self.input_tokens, self.output_tokens)

    def describe(self) -> str:
        cost = (
            "unknown (no price for this model: pass --prices FILE)"
            if self.cost is None
            else f"${self.cost:,.2f}"
        )
        return (
            f"estimate for {self.model}: {self.requests:,} requests, "
            f"~{self.input_tokens:,} input tokens, ~{self.output_tokens:,} output tokens, cost {cost}"
            " (before retries and rejected documents)"
        )


def estimate(
    tasks: Sequence[Task],
    archetypes: Mapping[str, Archetype],
    model: str,
    provider: str,
    prices_file: Path | None = None,
    self_hosted: bool = False,
) -> Estimate:
    """Two requests per task (idea, write). Input tokens are counted on the rendered prompts."""
    brief_tokens = functools.cache(lambda a_id: count_tokens(character_brief(archetypes[a_id])))
    input_tokens = output_tokens = 0
    for task in tasks:
        archetype = archetypes[task.archetype_id]
        idea_prompt = idea_request(task, archetype).messages[-1].content
        input_tokens += brief_tokens(task.archetype_id) + count_tokens(idea_prompt)
        input_tokens += brief_tokens(task.archetype_id) + WRITE_PROMPT_EXTRA_TOKENS
        output_tokens += min(IDEA_OUTPUT_TOKENS, IDEA_MAX_TOKENS)
        output_tokens += int(task.target_words * OUTPUT_TOKENS_PER_WORD)
    price = load_prices(prices_file).lookup(model, provider, self_hosted)
    return Estimate(2 * len(tasks), input_tokens, output_tokens, model, price)
