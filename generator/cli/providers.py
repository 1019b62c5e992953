"""Which provider and model the writer (or the model under test), the judge and the stronger
judge use, from the flags."""

from __future__ import annotations

import os
from dataclasses import dataclass

import click

from generator.backends.base import BackendConfig
from generator.gates import JudgeMode


def choose_provider(provider: str | None, base_urls: tuple[str, ...]) -> str:
    """Explicit flag first; a base URL means an OpenAI-compatible server; then whichever hosted
    provider has a key in the environment; else the embedded local model."""

    if provider:
        return provider
    if base_urls:
        return "openai"
    if os.environ.get("OPENAI_API_KEY"):
        return "openai"
    if os.environ.get("ANTHROPIC_API_KEY"):
        return "anthropic"
    return "local"


@dataclass(frozen=True)
class ModelFlags:
    """The --provider, --model, --base-url and --chat-format options of one command line, as one
    value: the writer's (or the model under test's) backend."""

    provider: str | None
    model: str | None
    base_urls: tuple[str, ...]
    chat_format: str | None

    def config(self, timeout: float) -> BackendConfig:
        """The backend these flags name; the first --base-url is the server, the rest its fleet."""
        chosen = choose_provider(self.provider, self.base_urls)
        if self.chat_format is not None and chosen != "local":
            raise click.BadParameter(
                "only for --provider local (a server applies its own template)",
                param_hint="--chat-format",
            )
        return BackendConfig(
            provider=chosen,
            model=self.model,
            base_url=self.base_urls[0] if self.base_urls else None,
            fleet=self.base_urls[1:],
            timeout=timeout,
            chat_format=self.chat_format,
        )


def judge_config(
    writer: BackendConfig,
    provider: str | None,
    model: str | None,
    base_url: str | None,
    timeout: float,
) -> BackendConfig | None:
    """The judge's backend, or None to use the writer's."""
    if provider is None and model is None and base_url is None:
        return None
    chosen = provider or ("openai" if base_url else writer.provider)
    # Inherit from the writer only what still points at the same service.
    same_service = chosen == writer.provider and base_url in (None, writer.base_url)
    return BackendConfig(
        provider=chosen,
        model=model or (writer.model if same_service else None),
        base_url=base_url or (writer.base_url if same_service else None),
        fleet=writer.fleet if same_service and model is None else (),
        timeout=timeout,
    )


def escalate_config(
    judge: BackendConfig,
    provider: str | None,
    model: str | None,
    base_url: str | None,
    timeout: float,
) -> BackendConfig | None:
    """The stronger judge's backend (--judge-escalate-*), or None when there is none."""
    if provider is None and model is None and base_url is None:
        return None
    if model is None and base_url is None:
        raise click.BadParameter(
            "name the stronger judge's model (or its server with --judge-escalate-base-url)",
            param_hint="--judge-escalate-model",
        )
    return BackendConfig(
        provider=provider or ("openai" if base_url else judge.provider),
        model=model,
        base_url=base_url,
        timeout=timeout,
    )


@dataclass(frozen=True)
class JudgeFlags:
    """The --judge-* options of one command line, as one value."""

    provider: str | None
    model: str | None
    base_url: str | None
    mode: JudgeMode | None
    escalate_model: str | None
    escalate_provider: str | None
    escalate_base_url: str | None

    def judge(self, writer: BackendConfig, timeout: float) -> BackendConfig | None:
        """The judge's backend, or None to use the writer's."""
        return judge_config(writer, self.provider, self.model, self.base_url, timeout)

    def escalate(self, judge: BackendConfig, timeout: float) -> BackendConfig | None:
        """The stronger judge's backend, or None when there is none."""
        return escalate_config(
            judge, self.escalate_provider, self.escalate_model, self.escalate_base_url, timeout
        )
