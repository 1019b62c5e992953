"""`generate --batch` end to end against a working Batch API on 127.0.0.1: each rerun advances
every document one step (idea, document, judgement), failed batch results are resubmitted, and
no answer is ever paid twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LIBRARY, read_jsonl, run_cli
from tests.support.openai_batch_stub import OpenAIBatchStub

SPEC = str(LIBRARY / "patient-tutor.yaml")
KEY = {"OPENAI_API_KEY": "sk-proj-FAKEBATCHKEY0123456789abcdefghij"}


@pytest.fixture
def batch_stub() -> Iterator[OpenAIBatchStub]:
    server = OpenAIBatchStub(fail_every=5)
    server.start()
    yield server
    server.stop()


def test_batch_run_completes_step_by_step_without_paying_twice(batch_stub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = (
        "generate",
        SPEC,
        "--out",
        str(out),
        "-n",
        "4",
        "--provider",
        "openai",
        "--model",
        "stub-model",
        "--base-url",
        batch_stub.base_url,
        "--batch",
    )
    rounds = 0
    while True:
        result = run_cli(*args, env=KEY)
        assert result.returncode == 0, result.stderr
        manifest = json.loads((out / "manifest.json").read_text())
        if manifest["status"] == "complete":
            break
        assert manifest["status"] == "batch-pending", result.stdout
        assert "archetypes batch collect" in result.stdout
        status = run_cli("batch", "status", str(out), env=KEY)
        assert status.returncode == 0, status.stderr
        collected = run_cli("batch", "collect", str(out), env=KEY)
        assert collected.returncode == 0, collected.stderr
        rounds += 1
        assert rounds <= 8, "the run must finish in a few rounds"

    records = read_jsonl(out / "records.jsonl")
    assert len(records) == 4
    assert all(r["judge"]["passed"] for r in records)
    cache = read_jsonl(out / "cache.jsonl")
    assert len(cache) == 12 == len({line["key"] for line in cache}), (
        "idea, document, judgement each, once"
    )
    successful_calls = [e for e in batch_stub.log if e.outcome == "ok"]
    assert len(successful_calls) == 12, "every answer the stub produced was used exactly once"
    assert batch_stub.batch_lines > 12, "some results failed and were resubmitted"
    assert rounds >= 3
    for path in out.rglob("*"):
        if path.is_file():
            assert KEY["OPENAI_API_KEY"] not in path.read_text(errors="replace"), path


def test_batch_needs_a_batch_capable_provider(tmp_path: Path) -> None:
    result = run_cli(
        "generate",
        SPEC,
        "--out",
        str(tmp_path / "run"),
        "-n",
        "1",
        "--provider",
        "local",
        "--batch",
    )
    assert result.returncode == 2
    assert "--batch needs --provider openai or anthropic" in result.stderr
