"""Shared fixtures: a real OpenAI-compatible stub server on 127.0.0.1 and helpers to run the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.openai_stub import OpenAIStub, StubConfig

REPO = Path(__file__).resolve().parent.parent
LIBRARY = REPO / "archetypes"
ARCHETYPES_BIN = Path(sys.executable).parent / "archetypes"


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    server = OpenAIStub(StubConfig())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_stub() -> Iterator:
    servers: list[OpenAIStub] = []

    def start(**kwargs: object) -> OpenAIStub:
        server = OpenAIStub(StubConfig(**kwargs))  # type: ignore[arg-type]
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No provider keys from the developer's environment leak into a test."""
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float | None = 300
) -> subprocess.CompletedProcess[str]:
    """Run the installed `archetypes` console script as a user would, with no standard input."""
    full_env = {
        k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
    }
    full_env.update(env or {})
    return subprocess.run(
        [str(ARCHETYPES_BIN), *args],
        capture_output=True,
        text=True,
        env=full_env,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        cwd=REPO,
    )


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
