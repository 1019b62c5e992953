"""The plan's cost estimate (generator/estimate.py), to the dollar."""

from __future__ import annotations

import pytest

from generator import estimate as estimating
from generator.plan import plan
from generator.pricing import load_prices
from generator.prompts import character_brief, judge_rubric
from generator.spec import load_spec
from generator.tokens import count_tokens
from tests.conftest import LIBRARY

# bpe-openai loads its encodings with a deprecated importlib.resources call (its own code).
BPE_OPENAI_LOADS = "ignore:open_binary is deprecated:DeprecationWarning"


@pytest.mark.filterwarnings(BPE_OPENAI_LOADS)
def test_the_estimate_pays_the_write_premium_once_per_archetype() -> None:
    archetype = load_spec(LIBRARY / "patient-tutor.yaml")
    tasks = plan([archetype], 6, seed=0)
    found = estimating.estimate(tasks, {archetype.id: archetype}, "claude-haiku-4-5", "anthropic")
    written = count_tokens(character_brief(archetype, "full")) + count_tokens(
        judge_rubric(archetype)
    )
    assert found.cache_write_tokens == written
    assert f"~{written:,} written to it" in found.describe()
    price = found.price
    assert price is not None and price.cache_write_5m == 1.25
    without_premium = price.cost(found.input_tokens, found.output_tokens, found.cached_input_tokens)
    assert found.cost is not None
    assert found.cost - without_premium == pytest.approx(written * (1.25 - 1.00) / 1e6, rel=1e-9)
    openai = estimating.estimate(tasks, {archetype.id: archetype}, "gpt-4.1-mini", "openai")
    assert openai.cost == pytest.approx(
        load_prices()
        .lookup("gpt-4.1-mini", "openai")
        .cost(  # type: ignore[union-attr]
            openai.input_tokens, openai.output_tokens, openai.cached_input_tokens
        ),
        rel=1e-12,
    ), "no premium where writes cost the input rate"
