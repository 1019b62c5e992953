"""The one small protocol every provider implements, the values it returns, and the registry."""

from __future__ import annotations

import email.utils
import importlib
import math
import os
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from generator.errors import ConfigError
from generator.prompts import Request

FinishReason = Literal["stop", "length", "other"]


class RateInfo(BaseModel):
    """What a provider's rate-limit headers said about the remaining allowance."""

    model_config = ConfigDict(frozen=True)

    limit_requests: int | None = None  # per minute
    limit_tokens: int | None = None  # per minute
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_seconds: float | None = None


class Completion(BaseModel):
    """One model answer, provider-neutral."""

    model_config = ConfigDict(frozen=True)

    text: str
    finish_reason: FinishReason
    input_tokens: int = 0  # all of them: those read from and written to the prompt cache too
    output_tokens: int = 0
    cached_input_tokens: int = 0  # read from the prompt cache
    # Written to the prompt cache, by the entry's lifetime: billed above the input rate
    # (Anthropic: 1.25x for 5 minutes, 2x for an hour), see generator/pricing.py.
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    model: str
    rate: RateInfo | None = None


class TransientError(Exception):
    """Worth retrying: 429, 5xx, timeouts, dropped connections, malformed or empty answers."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None):
        self.kind = kind
        self.retry_after = retry_after
        super().__init__(message)


class PermanentError(Exception):
    """Not worth retrying. `fatal` means every later call would fail too (bad key, bad model),
    so the run stops; otherwise only this task is given up."""

    def __init__(self, message: str, fatal: bool = False, not_found: bool = False):
        self.fatal = fatal
        self.not_found = not_found  # a 404: the thing asked for does not exist (any more)
        super().__init__(message)


class Backend(Protocol):
    """A model provider. `complete` raises TransientError or PermanentError, nothing else."""

    provider: str
    model: str
    max_samples: int  # answers one call can return (n); 1 where the API has no such option

    async def complete(self, request: Request) -> Completion: ...

    async def complete_samples(self, request: Request) -> list[Completion]:
        """All answers of one call asking for `request.samples` of them (maybe fewer)."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class BackendConfig:
    provider: str
    model: str | None = None
    base_url: str | None = None
    timeout: float = 600.0
    fleet: tuple[str, ...] = ()  # more OpenAI-compatible endpoints serving the same model
    chat_format: str | None = None  # local GGUF models only: None means the file's own template

    @property
    def base_urls(self) -> tuple[str, ...]:
        return ((self.base_url,) if self.base_url else ()) + self.fleet

    @property
    def self_hosted(self) -> bool:
        return self.provider == "local" or self.base_url is not None


BackendFactory = Callable[[BackendConfig], Backend]
_REGISTRY: dict[str, BackendFactory] = {}


def register(name: str) -> Callable[[BackendFactory], BackendFactory]:
    def decorator(factory: BackendFactory) -> BackendFactory:
        _REGISTRY[name] = factory
        return factory

    return decorator


# Built-in providers and the modules that register them, imported only when chosen: an OpenAI
# run never loads the Anthropic SDK (1-2 s of start-up), and `validate` loads neither.
_BUILTIN = {
    "anthropic": "generator.backends.anthropic_backend",
    "local": "generator.backends.local",
    "openai": "generator.backends.openai_backend",
}


def providers() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def create_backend(config: BackendConfig) -> Backend:
    """Build the backend named by `config.provider`. Raises ConfigError for unknown providers."""
    if config.fleet:
        from generator.backends.fleet import FleetBackend

        if config.provider != "openai":
            raise ConfigError(
                "several --base-url endpoints need --provider openai (OpenAI-compatible servers)"
            )
        return FleetBackend([replace(config, base_url=url, fleet=()) for url in config.base_urls])
    if config.provider in _BUILTIN:
        importlib.import_module(_BUILTIN[config.provider])
    factory = _REGISTRY.get(config.provider)
    if factory is None:
        raise ConfigError(
            f"unknown provider '{config.provider}': choose one of {', '.join(providers())}"
        )
    return factory(config)


def require_env(*names: str, flag_hint: str) -> str:
    """The first set variable among `names`, or a ConfigError naming what to set."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    raise ConfigError(f"{' or '.join(names)} is not set: export it ({flag_hint})")


# The longest server-directed wait honoured: the OpenAI SDK's MAX_RETRY_AFTER_DELAY (two
# minutes; the Anthropic SDK has none). A longer ask (a quota that resets in hours) is waited in
# steps of this and the retry budget decides when the task is given up, so one header cannot
# park a run for hours; a nonsense value (1e300) cannot overflow a sleep.
MAX_RETRY_AFTER = 120.0


def utc_now() -> datetime:
    """The clock an HTTP-date Retry-After is measured against (tests replace it)."""
    return datetime.now(UTC)


def parse_retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds an error response asked the client to wait, or None when it did not say.

    Read as the OpenAI and Anthropic SDKs read it: `retry-after-ms` (milliseconds, which OpenAI
    sends) wins, then `retry-after` as delta-seconds (decimals allowed), then `retry-after` as
    an HTTP date (RFC 9110 IMF-fixdate) measured from `now` (aware; default `utc_now()`).
    Clamped to [0, MAX_RETRY_AFTER]: a date already past means "retry now".
    """
    seconds = _retry_after_seconds(headers, now)
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _retry_after_seconds(headers: Mapping[str, str], now: datetime | None) -> float | None:
    for name, unit in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return float(value) * unit
            except ValueError:
                continue  # not a number: the next header, or the date form
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except ValueError:  # neither a number nor a date: as if absent
        return None
    if moment.tzinfo is None:  # "-0000": a UTC time whose source zone is unknown (RFC 5322)
        moment = moment.replace(tzinfo=UTC)
    return (moment - (now or utc_now())).total_seconds()


def safe_url(url: str | None) -> str | None:
    """A base URL without any user:password part, query or fragment: the form written to run
    directories, manifests and cards."""
    if not url:
        return None
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
