"""`generate --batch` end to end against a working Batch API on 127.0.0.1: each rerun advances
every document one step (idea, document, judgement), failed batch results are resubmitted, no
answer is ever paid twice, and results are matched to requests by custom_id alone (the stub
returns them out of order, with unknown ids and duplicates)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from generator import batch
from generator.backends.base import BackendConfig, BatchCounts, Message, Request
from generator.backends.registry import create_backend
from generator.batch_ledger import Ledger
from generator.batch_queue import BatchQueue
from generator.errors import BackendError, Timeout
from generator.rundir import RunDir
from tests.conftest import LIBRARY, read_jsonl, run_cli
from tests.support.openai_batch_stub import DUPLICATE_TEXT, UNKNOWN_TEXT, OpenAIBatchStub

SPEC = str(LIBRARY / "patient-tutor.yaml")
KEY = {"OPENAI_API_KEY": "sk-proj-FAKEBATCHKEY0123456789abcdefghij"}


@pytest.fixture
def batch_stub() -> Iterator[OpenAIBatchStub]:
    server = OpenAIBatchStub(fail_every=5, scramble=True)
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
    # Every cached answer is the one the stub gave for that custom_id (the first, if two).
    assert {line["key"]: line["completion"]["text"] for line in cache} == batch_stub.kept
    for name in ("cache.jsonl", "records.jsonl"):
        text = (out / name).read_text()
        assert UNKNOWN_TEXT not in text and DUPLICATE_TEXT not in text, name
    assert_batch_counts_reported(out, batch_stub, manifest)
    for path in out.rglob("*"):
        if path.is_file():
            assert KEY["OPENAI_API_KEY"] not in path.read_text(errors="replace"), path


def assert_batch_counts_reported(out: Path, stub: OpenAIBatchStub, manifest: dict) -> None:
    """What collect found, per batch in `batch status` and summed in the manifest, is what the
    stub sent: every unknown id and duplicate counted, every failed line errored."""
    unknown = sum(u for u, _ in stub.scrambled.values())
    duplicates = sum(d for _, d in stub.scrambled.values())
    assert unknown == duplicates == len(stub.batches) > 0
    assert manifest["batch"] == {
        "batches": len(stub.batches),
        "collected": len(stub.batches),
        "results": {
            "succeeded": 12,
            "already_cached": 0,
            "errored": stub.batch_lines - 12,
            "expired": 0,
            "canceled": 0,
            "missing": 0,
            "unexpected": unknown,
            "duplicates": duplicates,
        },
    }
    shown = run_cli("batch", "status", str(out), env=KEY)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert len(lines) == len(stub.batches)
    for line in lines:
        batch_id = line.split()[0]
        counts = stub.batches[batch_id]["request_counts"]
        expected = BatchCounts(
            succeeded=counts["completed"],
            errored=counts["failed"],
            unexpected=stub.scrambled[batch_id][0],
            duplicates=stub.scrambled[batch_id][1],
        )
        assert line.endswith(f"  | results: {expected.words()}"), line


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
    # Refused from the backend's declared capabilities, before anything is opened: one line,
    # no progress line, no run directory.
    assert result.stderr == "error: --batch needs --provider openai or anthropic\n"
    assert not (tmp_path / "run").exists()


class Died(BaseException):
    """The process dying at a chosen moment (BaseException: nothing may catch it)."""


def _requests(count: int) -> dict[str, Request]:
    return {
        f"{i:032x}": Request(
            task_id=f"task-{i}",
            step="write",
            messages=(Message(role="user", content=f"Write document number {i}."),),
            max_tokens=200,
            template_version="1",
        )
        for i in range(count)
    }


def _owed(out: Path) -> tuple[int, int]:
    """(pending, waiting) when a later run defers the same three requests: pending ones are
    submitted again, waiting ones are still owed by a batch or an open submission."""
    with RunDir(out) as rundir:
        queue = BatchQueue(rundir, create_backend(BackendConfig("openai", "stub-model")))
        for key, request in _requests(3).items():
            queue.defer(key, request)
        return queue.pending(), queue.waiting()


async def _submit_failing(out: Path, stub: OpenAIBatchStub, create: Any, error: Any) -> None:
    """Submit three requests with the provider's create replaced by `create`, which raises."""
    backend = create_backend(BackendConfig("openai", "stub-model", base_url=stub.base_url))
    backend.batch_create = create  # type: ignore[method-assign]
    with RunDir(out) as rundir:
        queue = BatchQueue(rundir, backend)
        for key, request in _requests(3).items():
            queue.defer(key, request)
        with pytest.raises(error):
            await queue.submit()
    await backend.aclose()


async def _submit_until(out: Path, stub: OpenAIBatchStub, die_on: str) -> None:
    """Submit three requests, dying right after the ledger event `die_on` would be written."""
    backend = create_backend(BackendConfig("openai", "stub-model", base_url=stub.base_url))
    original = Ledger.write

    def write(self: Ledger, event: str, fields: dict) -> None:
        if event == die_on:
            raise Died
        original(self, event, fields)

    try:
        with RunDir(out) as rundir:
            queue = BatchQueue(rundir, backend)
            for key, request in _requests(3).items():
                queue.defer(key, request)
            Ledger.write = write  # type: ignore[method-assign]
            with pytest.raises(Died):
                await queue.submit()
    finally:
        Ledger.write = original  # type: ignore[method-assign]
        await backend.aclose()


async def test_a_batch_whose_creator_died_is_found_and_not_paid_twice(
    batch_stub: OpenAIBatchStub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY["OPENAI_API_KEY"])
    out = tmp_path / "run"
    # The provider created the batch; the process died before recording it.
    await _submit_until(out, batch_stub, die_on="created")
    assert len(batch_stub.batches) == 1

    pending, waiting = _owed(out)
    assert pending == 0 and waiting == 3, "the submission is still owed"

    notes = await batch.settle(out)
    assert len(notes) == 1 and "found batch" in notes[0]
    summary = await batch.collect(out)
    assert summary.succeeded + summary.errored == 3
    assert len(batch_stub.batches) == 1, "nothing was submitted twice"
    paid = {line["key"] for line in read_jsonl(out / "cache.jsonl")}
    assert paid <= set(_requests(3)) and len(paid) == summary.succeeded
    assert await batch.settle(out) == [], "settled once"


async def test_a_submission_that_never_reached_the_provider_is_given_back(
    batch_stub: OpenAIBatchStub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY["OPENAI_API_KEY"])
    out = tmp_path / "run"

    async def dies(lines: object, submission: str) -> None:
        raise Died  # after the write-ahead record, before the provider heard of it

    await _submit_failing(out, batch_stub, dies, Died)
    assert batch_stub.batches == {}

    notes = await batch.settle(out)
    assert len(notes) == 1 and "sends those requests again" in notes[0]
    pending, _ = _owed(out)
    assert pending == 3, "given back to the run"


async def test_a_create_that_got_no_answer_stays_open_until_settled(
    batch_stub: OpenAIBatchStub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A timeout may hide a batch that was created after all: the submission is not given
    back at once; settling looks for it first."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY["OPENAI_API_KEY"])
    out = tmp_path / "run"

    async def times_out(lines: object, submission: str) -> None:
        raise Timeout("the request timed out")

    await _submit_failing(out, batch_stub, times_out, BackendError)
    _, waiting = _owed(out)
    assert waiting == 3, "still owed until settled"
    notes = await batch.settle(out)
    assert len(notes) == 1 and "sends those requests again" in notes[0]
