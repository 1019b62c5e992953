"""The Hugging Face Hub as `archetypes publish` talks to it (generator/hub.py): which token and
endpoint it uses. The upload itself, and each Hub error as one line, are tested through
`publish` in tests/test_publish.py against a local Hub stub."""

from __future__ import annotations

import huggingface_hub
import pytest

from generator.errors import ConfigError
from generator.hub import DEFAULT_ENDPOINT, resolve_endpoint, resolve_token


def test_the_token_comes_from_hf_token_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_stored")
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    assert resolve_token() == "hf_from_env"
    monkeypatch.delenv("HF_TOKEN")
    assert resolve_token() == "hf_stored"


def test_no_token_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(ConfigError, match="set HF_TOKEN or run `hf auth login`"):
        resolve_token()


def test_the_endpoint_is_read_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert resolve_endpoint() == DEFAULT_ENDPOINT
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/")
    assert resolve_endpoint() == "http://127.0.0.1:9"
