"""Token prices and cost arithmetic. The table ships in generator/data/prices.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from generator.errors import ConfigError
from generator.resources import data_file


class TokenUsage(Protocol):
    """What one answer used, by how it is billed (a Completion is one). `input_tokens` counts
    every input token: those read from and written to the prompt cache included."""

    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def cached_input_tokens(self) -> int: ...
    @property
    def cache_write_5m_tokens(self) -> int: ...
    @property
    def cache_write_1h_tokens(self) -> int: ...


class Price(BaseModel):
    """USD per million tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    # Input tokens written to the prompt cache, by how long the entry lives. Anthropic bills
    # them above the input rate (1.25x for 5 minutes, 2x for an hour); None bills them at
    # `input` (OpenAI caches without a premium). Set per model in the table, else filled in
    # from the table's `cache_write_5m_multiplier` / `cache_write_1h_multiplier` by provider.
    cache_write_5m: float | None = Field(default=None, ge=0)
    cache_write_1h: float | None = Field(default=None, ge=0)
    # The fraction of these rates charged through the provider's batch API (0.5 = half price).
    # Set per model in the table, else filled in from the table's `batch_multiplier` by provider.
    batch_multiplier: float | None = Field(default=None, ge=0, le=1)

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        batch: bool = False,
        *,
        cache_write_5m_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
    ) -> float:
        """USD for one call. `input_tokens` includes the cached and cache-written ones, each
        billed at its own rate; `batch=True` applies the batch discount (which stacks with the
        prompt-cache rates, as both providers document)."""
        special = cached_input_tokens + cache_write_5m_tokens + cache_write_1h_tokens
        fresh = max(input_tokens - special, 0)
        usd = (
            fresh * self.input
            + cached_input_tokens * _or(self.cached_input, self.input)
            + cache_write_5m_tokens * _or(self.cache_write_5m, self.input)
            + cache_write_1h_tokens * _or(self.cache_write_1h, self.input)
            + output_tokens * self.output
        ) / 1e6
        if batch and self.batch_multiplier is not None:
            usd *= self.batch_multiplier
        return usd

    def usage_cost(self, usage: TokenUsage, batch: bool = False) -> float:
        """USD for one answer, as the provider bills it."""
        return self.cost(
            usage.input_tokens,
            usage.output_tokens,
            usage.cached_input_tokens,
            batch,
            cache_write_5m_tokens=usage.cache_write_5m_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
        )

    def list_cost(self, usage: TokenUsage) -> float:
        """USD for the same answer at list price: no prompt cache (so no cache reads and no
        cache writes either: every input token at `input`) and no batch discount. What the run
        saved is this less what it paid."""
        return self.cost(usage.input_tokens, usage.output_tokens)

    def worst_case(self, prompt_tokens: int, output_tokens: int, batch: bool = False) -> float:
        """The most one call can cost: every prompt token billed at the dearest input rate
        (a write of the whole prompt to the longest-lived cache) and every output token."""
        rates = (self.input, self.cache_write_5m, self.cache_write_1h)
        dearest = max(rate for rate in rates if rate is not None)
        usd = (prompt_tokens * dearest + output_tokens * self.output) / 1e6
        if batch and self.batch_multiplier is not None:
            usd *= self.batch_multiplier
        return usd


def _or(rate: float | None, fallback: float) -> float:
    return fallback if rate is None else rate


FREE = Price(input=0, output=0, cached_input=0)


class PriceTable(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    models: dict[str, Price] = Field(default_factory=dict)
    free_providers: tuple[str, ...] = ()
    # provider -> fraction of the standard rates its batch API charges
    batch_multiplier: dict[str, float] = Field(default_factory=dict)
    # provider -> multiple of the input rate it charges for writes to its prompt cache
    cache_write_5m_multiplier: dict[str, float] = Field(default_factory=dict)
    cache_write_1h_multiplier: dict[str, float] = Field(default_factory=dict)

    def lookup(self, model: str, provider: str, self_hosted: bool = False) -> Price | None:
        """Exact model name, else the longest matching prefix (dated snapshots), else free for
        local or self-hosted servers, else None (unknown). The price carries the provider's
        batch multiplier and cache-write rates unless the model's entry sets its own."""
        price: Price | None = None
        if model in self.models:
            price = self.models[model]
        else:
            prefixes = [name for name in self.models if model.startswith(name)]
            if prefixes:
                price = self.models[max(prefixes, key=len)]
        if price is None:
            if provider in self.free_providers or self_hosted:
                return FREE
            return None
        return price.model_copy(update=self._provider_defaults(price, provider))

    def _provider_defaults(self, price: Price, provider: str) -> dict[str, float]:
        """The provider's batch multiplier and cache-write rates, where the entry sets none."""
        update: dict[str, float] = {}
        if price.batch_multiplier is None and provider in self.batch_multiplier:
            update["batch_multiplier"] = self.batch_multiplier[provider]
        if price.cache_write_5m is None and provider in self.cache_write_5m_multiplier:
            update["cache_write_5m"] = price.input * self.cache_write_5m_multiplier[provider]
        if price.cache_write_1h is None and provider in self.cache_write_1h_multiplier:
            update["cache_write_1h"] = price.input * self.cache_write_1h_multiplier[provider]
        return update


def load_prices(override: Path | None = None) -> PriceTable:
    """The shipped table, with entries from `override` (same layout) taking precedence."""
    base = _read(data_file("prices.yaml"))
    if override is None:
        return base
    extra = _read(override)
    return PriceTable(
        models={**base.models, **extra.models},
        free_providers=tuple(dict.fromkeys(base.free_providers + extra.free_providers)),
        batch_multiplier={**base.batch_multiplier, **extra.batch_multiplier},
        cache_write_5m_multiplier={
            **base.cache_write_5m_multiplier,
            **extra.cache_write_5m_multiplier,
        },
        cache_write_1h_multiplier={
            **base.cache_write_1h_multiplier,
            **extra.cache_write_1h_multiplier,
        },
    )


def _read(path: Path) -> PriceTable:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return PriceTable.model_validate(data)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read price table: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML in price table: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise ConfigError(
            f"{path}: price table entry {where}: {first['msg']} "
            "(expected models: {NAME: {input: USD, output: USD}})"
        ) from None
