"""Helpers to run `archetypes generate` on two library specs, shared by the run, merge, fleet,
recheck and CLI tests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import LIBRARY, run_cli

SPECS = [str(LIBRARY / "patient-tutor.yaml"), str(LIBRARY / "lab-partner.yaml")]


def generate_against(out: Path, base_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Generate from SPECS against an OpenAI-compatible server at `base_url`."""
    return run_cli(
        "generate",
        *SPECS,
        "--out",
        str(out),
        "--base-url",
        base_url,
        "--model",
        "stub-model",
        "--no-progress",
        *args,
    )


def generate_concurrently(
    out: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Generate from SPECS four requests at a time; the caller names the provider in `args`."""
    return run_cli("generate", *SPECS, "--out", str(out), "--concurrency", "4", *args, env=env)


def idea_bodies(stub) -> list[dict]:
    """The idea requests the stub received (structured output that is not a judge's scores)."""
    return [
        b
        for b in stub.bodies
        if "response_format" in b and "trait_scores" not in json.dumps(b["response_format"])
    ]
