"""Token prices and cost arithmetic. The table ships in generator/data/prices.yaml."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from generator.errors import ConfigError
from generator.resources import data_file


class Price(BaseModel):
    """USD per million tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    # The fraction of these rates charged through the provider's batch API (0.5 = half price).
    # Set per model in the table, else filled in from the table's `batch_multiplier` by provider.
    batch_multiplier: float | None = Field(default=None, ge=0, le=1)

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        batch: bool = False,
    ) -> float:
        """USD for one call; `batch=True` applies the batch discount (which stacks with the
        prompt-cache rate, as both providers document)."""
        cached_rate = self.input if self.cached_input is None else self.cached_input
        fresh = max(input_tokens - cached_input_tokens, 0)
        usd = (
            fresh * self.input + cached_input_tokens * cached_rate + output_tokens * self.output
        ) / 1e6
        if batch and self.batch_multiplier is not None:
            usd *= self.batch_multiplier
        return usd


FREE = Price(input=0, output=0, cached_input=0)


class PriceTable(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    models: dict[str, Price] = Field(default_factory=dict)
    free_providers: tuple[str, ...] = ()
    # provider -> fraction of the standard rates its batch API charges
    batch_multiplier: dict[str, float] = Field(default_factory=dict)

    def lookup(self, model: str, provider: str, self_hosted: bool = False) -> Price | None:
        """Exact model name, else the longest matching prefix (dated snapshots), else free for
        local or self-hosted servers, else None (unknown). The price carries the provider's
        batch multiplier unless the model's entry sets its own."""
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
        if price.batch_multiplier is None and provider in self.batch_multiplier:
            price = price.model_copy(update={"batch_multiplier": self.batch_multiplier[provider]})
        return price


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
