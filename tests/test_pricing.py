"""The price table and its arithmetic, to the dollar: prompt-cache reads and writes (Anthropic
bills 5-minute writes at 1.25x and 1-hour writes at 2x the input rate), the batch discount that
stacks with them, list price, a call's worst case, and the plan's estimate."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.backends.base import Completion
from generator.errors import ConfigError
from generator.pricing import Price, load_prices

# An Anthropic-like price: $2 in, $10 out, reads at $0.20, writes at $2.50 (5 min) and $4 (1 h).
CLAUDE = Price(
    input=2.0,
    output=10.0,
    cached_input=0.2,
    cache_write_5m=2.5,
    cache_write_1h=4.0,
    batch_multiplier=0.5,
)


def test_each_kind_of_input_token_is_billed_at_its_rate() -> None:
    # 1,000,000 input tokens: 100,000 read, 200,000 written for 5 minutes, 300,000 for an hour,
    # the other 400,000 fresh; 50,000 output tokens.
    usd = CLAUDE.cost(
        1_000_000,
        50_000,
        100_000,
        cache_write_5m_tokens=200_000,
        cache_write_1h_tokens=300_000,
    )
    assert usd == pytest.approx(0.8 + 0.02 + 0.5 + 1.2 + 0.5, rel=1e-12)  # $3.02


def test_the_batch_discount_stacks_with_the_write_premium() -> None:
    usage = Completion(
        text="x",
        finish_reason="stop",
        input_tokens=1_000_000,
        output_tokens=100_000,
        cached_input_tokens=0,
        cache_write_5m_tokens=1_000_000,
        model="m",
    )
    assert CLAUDE.usage_cost(usage) == pytest.approx(2.5 + 1.0, rel=1e-12)
    assert CLAUDE.usage_cost(usage, batch=True) == pytest.approx((2.5 + 1.0) / 2, rel=1e-12)
    # List price: no prompt cache, so neither reads nor writes; no batch discount.
    assert CLAUDE.list_cost(usage) == pytest.approx(2.0 + 1.0, rel=1e-12)


def test_without_write_rates_writes_cost_the_input_rate() -> None:
    plain = Price(input=2.0, output=10.0, cached_input=0.2)
    assert plain.cost(1_000_000, 0, cache_write_5m_tokens=600_000) == pytest.approx(2.0)
    assert plain.worst_case(1_000_000, 100_000) == pytest.approx(2.0 + 1.0, rel=1e-12)


def test_the_worst_case_writes_the_whole_prompt_at_the_dearest_rate() -> None:
    assert CLAUDE.worst_case(1_000_000, 100_000) == pytest.approx(4.0 + 1.0, rel=1e-12)
    assert CLAUDE.worst_case(1_000_000, 100_000, batch=True) == pytest.approx(2.5, rel=1e-12)
    only_5m = CLAUDE.model_copy(update={"cache_write_1h": None})
    assert only_5m.worst_case(1_000_000, 0) == pytest.approx(2.5, rel=1e-12)


def test_anthropic_models_get_the_documented_write_rates() -> None:
    table = load_prices()
    haiku = table.lookup("claude-haiku-4-5-20251001", "anthropic")
    assert haiku is not None
    assert (haiku.input, haiku.cached_input) == (1.00, 0.10)
    assert (haiku.cache_write_5m, haiku.cache_write_1h) == (1.25, 2.00)
    sonnet = table.lookup("claude-sonnet-4-5", "anthropic")
    assert sonnet is not None and (sonnet.cache_write_5m, sonnet.cache_write_1h) == (3.75, 6.00)
    # OpenAI caches without a write premium.
    gpt = table.lookup("gpt-4.1-mini", "openai")
    assert gpt is not None and (gpt.cache_write_5m, gpt.cache_write_1h) == (None, None)


def test_prices_file_overrides_rates_and_multipliers(tmp_path: Path) -> None:
    override = tmp_path / "prices.yaml"
    override.write_text(
        "models:\n"
        "  claude-haiku-4-5: {input: 2.0, output: 8.0, cached_input: 0.2}\n"
        "  claude-opus-4: {input: 10.0, output: 50.0, cache_write_5m: 11.0}\n"
        "cache_write_1h_multiplier: {anthropic: 3.0}\n"
    )
    table = load_prices(override)
    haiku = table.lookup("claude-haiku-4-5", "anthropic")
    assert haiku is not None
    # The shipped 5-minute multiplier follows the new input rate; the 1-hour one is overridden.
    assert (haiku.cache_write_5m, haiku.cache_write_1h) == (2.5, 6.0)
    opus = table.lookup("claude-opus-4-1", "anthropic")
    assert opus is not None and (opus.cache_write_5m, opus.cache_write_1h) == (11.0, 30.0)


def test_a_negative_write_rate_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "prices.yaml"
    bad.write_text("models:\n  m: {input: 1.0, output: 2.0, cache_write_5m: -1}\n")
    with pytest.raises(ConfigError, match=r"models\.m\.cache_write_5m"):
        load_prices(bad)
