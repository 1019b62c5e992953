"""The registry of providers (generator/backends/registry.py)."""

from __future__ import annotations

import pytest

from generator.backends.base import BackendConfig
from generator.backends.registry import create_backend, providers, speaks_batch
from generator.errors import ConfigError


def test_the_built_in_providers_are_listed() -> None:
    assert {"anthropic", "local", "openai"} <= set(providers())


def test_an_unknown_provider_names_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"unknown provider 'nope': choose one of .*openai"):
        create_backend(BackendConfig(provider="nope"))


def test_a_fleet_needs_the_openai_provider() -> None:
    config = BackendConfig(
        provider="anthropic", base_url="http://127.0.0.1:1", fleet=("http://127.0.0.1:2",)
    )
    with pytest.raises(ConfigError, match="--provider openai"):
        create_backend(config)
    assert not speaks_batch(config)


def test_batch_support_is_declared_by_the_backend_class() -> None:
    assert speaks_batch(BackendConfig(provider="openai"))
    assert speaks_batch(BackendConfig(provider="anthropic"))
    assert not speaks_batch(BackendConfig(provider="local"))
