"""The registry of providers: `create_backend` builds the backend a BackendConfig names."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import replace

from generator.backends.base import Backend, BackendConfig
from generator.errors import ConfigError

BackendFactory = Callable[[BackendConfig], Backend]
_REGISTRY: dict[str, BackendFactory] = {}


def register(name: str) -> Callable[[BackendFactory], BackendFactory]:
    """Add a provider (a plug-in backend) under `name`."""

    def decorator(factory: BackendFactory) -> BackendFactory:
        _REGISTRY[name] = factory
        return factory

    return decorator


# Built-in providers, the module and class of each, imported only when chosen: an OpenAI run
# never loads the Anthropic SDK (1-2 s of start-up), and `validate` loads neither. Named here
# rather than registered by their modules, so no backend module imports the registry (which
# imports the fleet, which imports the OpenAI backend).
_BUILTIN = {
    "anthropic": ("generator.backends.anthropic_backend", "AnthropicBackend"),
    "local": ("generator.backends.local", "LocalBackend"),
    "openai": ("generator.backends.openai_backend", "OpenAIBackend"),
}


def providers() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def speaks_batch(config: BackendConfig) -> bool:
    """Whether the backend `config` names speaks its provider's batch API, asked of its class
    before anything is built or opened (a plug-in provider is assumed not to)."""
    if config.fleet or config.provider not in _BUILTIN:
        return False
    module, name = _BUILTIN[config.provider]
    capabilities = getattr(importlib.import_module(module), name).capabilities
    return bool(capabilities.batch_api)


def create_backend(config: BackendConfig) -> Backend:
    """Build the backend named by `config.provider`. Raises ConfigError for unknown providers."""
    if config.fleet:
        from generator.backends.fleet import FleetBackend

        if config.provider != "openai":
            raise ConfigError(
                "several --base-url endpoints need --provider openai (OpenAI-compatible servers)"
            )
        return FleetBackend([replace(config, base_url=url, fleet=()) for url in config.base_urls])
    factory = _REGISTRY.get(config.provider)
    if factory is None and config.provider in _BUILTIN:
        module, name = _BUILTIN[config.provider]
        factory = getattr(importlib.import_module(module), name)
    if factory is None:
        raise ConfigError(
            f"unknown provider '{config.provider}': choose one of {', '.join(providers())}"
        )
    return factory(config)
