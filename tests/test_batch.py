"""Provider batch APIs against recorded exchanges in each provider's documented batch format
(tests/data/cassettes/{openai,anthropic}_batch_*.json), replayed on 127.0.0.1: create, in
progress, partial failure, expired, cancel, collect (twice), a missing result, splitting by
request count and by bytes."""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner, Result

from generator import batch, retry
from generator.backends.base import (
    BackendConfig,
    BatchCounts,
    BatchInfo,
    Capabilities,
    Message,
    Request,
    batch_line_bytes,
)
from generator.backends.registry import create_backend
from generator.batch import cancel, collect, status
from generator.batch_ledger import Ledger
from generator.batch_queue import BatchQueue, Deferred
from generator.calls import Budget, CallStats, ModelCaller, ResponseCache
from generator.cli import cli
from generator.errors import BackendError, ConfigError, Timeout
from generator.pricing import load_prices
from generator.prompts import IDEA_SCHEMA
from generator.rundir import BATCHES, CACHE, MANIFEST, Manifest, RunDir
from tests.conftest import LIBRARY, REPO, read_jsonl, run_cli
from tests.support.cassette_server import FILTERED_HEADERS, CassetteServer
from tests.support.openai_batch_stub import DUPLICATE_TEXT, UNKNOWN_TEXT, OpenAIBatchStub

CASSETTES = REPO / "tests" / "data" / "cassettes"


FAKE_OPENAI_KEY = "sk-proj-FAKEKEYFORBATCHTESTS0123456789abcdefghijkl"


FAKE_ANTHROPIC_KEY = "sk-ant-api03-FAKEKEYFORBATCHTESTS0123456789abcdefghijkl"


ANTHROPIC_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


PROVIDER_ORIGINS = ("https://api.anthropic.com", "https://api.openai.com")


SYSTEM = "You are a skilled writer of ordinary documents in which a careful AI assistant lives."


class BatchReplay(CassetteServer):
    """The cassette server for batch endpoints: requests may be multipart uploads (an OpenAI
    batch input file), responses may be JSONL ("jsonl": [objects]), and the provider's own
    absolute URLs in a body (Anthropic's results_url) are pointed back at this server."""

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.auth_seen.append(any(h.lower() in FILTERED_HEADERS for h in request.headers))
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "headers": {
                k.lower(): v
                for k, v in request.headers.items()
                if k.lower() not in FILTERED_HEADERS
            },
            "json": None,
            "form": {},
            "upload": None,
        }
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            message = email.parser.BytesParser(policy=email.policy.default).parsebytes(
                f"Content-Type: {content_type}\r\n\r\n".encode() + raw
            )
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True) or b""
                if part.get_filename():
                    entry["upload"] = [json.loads(line) for line in payload.splitlines() if line]
                    entry["upload_bytes"] = len(payload)
                else:
                    entry["form"][name] = payload.decode()
        elif raw:
            entry["json"] = json.loads(raw)
        self.received.append(entry)
        index = len(self.received) - 1
        if index >= len(self.interactions):
            return web.json_response({"error": "cassette exhausted"}, status=599)
        expected = self.interactions[index]["request"]
        if (request.method, request.path) != (expected["method"], expected["path"]):
            return web.json_response(
                {"error": f"unexpected {request.method} {request.path}"}, status=599
            )
        response = self.interactions[index]["response"]
        if "jsonl" in response:
            text = "".join(json.dumps(line) + "\n" for line in response["jsonl"])
            kind = "application/octet-stream"
        else:
            text, kind = json.dumps(response["body"]), "application/json"
        for origin in PROVIDER_ORIGINS:
            text = text.replace(origin, f"http://127.0.0.1:{self.port}")
        return web.Response(
            status=response["status"],
            headers=response.get("headers", {}),
            text=text,
            content_type=kind,
        )

    def exhausted(self) -> bool:
        return len(self.received) == len(self.interactions)


Replay = Callable[[str], tuple[BatchReplay, str]]


@pytest.fixture
def replay(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Replay]:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_ANTHROPIC_KEY)
    monkeypatch.setattr(retry, "BATCH_POLICY", retry.RetryPolicy(attempts=5, base_seconds=0.01))
    servers: list[BatchReplay] = []

    def start(name: str) -> tuple[BatchReplay, str]:
        server = BatchReplay(CASSETTES / f"{name}.json")
        url = server.start()
        servers.append(server)
        return server, url

    yield start
    for server in servers:
        server.stop()


def key(i: int) -> str:
    """Cache keys as ModelCaller makes them: 32 hex digits (the cassettes use these)."""
    return f"{i:032x}"


def make_request(i: int) -> Request:
    idea = i % 2 == 1
    return Request(
        task_id=f"candid-counsel-1-{i:04d}",
        step="idea" if idea else "write",
        messages=(
            Message(role="system", content=SYSTEM),
            Message(role="user", content=f"Task {i:04d}: write the document about the ledger."),
        ),
        max_tokens=400 if idea else 1600,
        seed=i,
        json_schema=IDEA_SCHEMA if idea else None,
        template_version="1",
    )


def openai_backend(url: str) -> Any:
    return create_backend(BackendConfig("openai", "gpt-4.1-mini", base_url=f"{url}/v1"))


def anthropic_backend(url: str) -> Any:
    return create_backend(BackendConfig("anthropic", "claude-haiku-4-5", base_url=url))


async def submit(run: Path, backend: Any, numbers: list[int]) -> list[BatchInfo]:
    with RunDir(run) as rundir:
        queue = BatchQueue(rundir, backend)
        for i in numbers:
            queue.defer(key(i), make_request(i))
        assert queue.pending() == len(numbers)
        infos = await queue.submit()
        assert queue.pending() == 0
    await backend.aclose()
    return infos


def cache_lines(run: Path) -> list[dict[str, Any]]:
    return read_jsonl(run / CACHE)


def assert_no_secrets(run: Path, server: BatchReplay) -> None:
    assert all(server.auth_seen), "every request carried the key"
    for path in run.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert FAKE_OPENAI_KEY not in text and FAKE_ANTHROPIC_KEY not in text, path
    assert not any(
        FAKE_OPENAI_KEY in json.dumps(r) or FAKE_ANTHROPIC_KEY in json.dumps(r)
        for r in server.received
    )


# -- OpenAI --------------------------------------------------------------------------------------


async def test_openai_create_progress_partial_failure_collect_twice(
    replay: Replay, tmp_path: Path
) -> None:
    server, url = replay("openai_batch_partial")
    run = tmp_path / "run"
    backend = openai_backend(url)
    infos = await submit(run, backend, [1, 2, 3, 4])

    # create: one JSONL file (purpose=batch) of documented request lines, then the batch.
    upload, create = server.received[0], server.received[1]
    assert (upload["method"], upload["path"], upload["form"]) == (
        "POST",
        "/v1/files",
        {"purpose": "batch"},
    )
    assert [line["custom_id"] for line in upload["upload"]] == [key(i) for i in (1, 2, 3, 4)]
    body_backend = openai_backend(url)
    for i, line in zip((1, 2, 3, 4), upload["upload"], strict=True):
        assert set(line) == {"custom_id", "method", "url", "body"}
        assert (line["method"], line["url"]) == ("POST", "/v1/chat/completions")
        assert line["body"] == body_backend._body(make_request(i)), "same body as a sync call"
    await body_backend.aclose()
    assert upload["upload"][0]["body"]["response_format"]["type"] == "json_schema"
    submission = create["json"]["metadata"].pop("submission")
    assert create["json"] == {
        "input_file_id": "file-8kWkPZ3yJm2GQ1xvTEvFNb",
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "metadata": {"tool": "archetype-corpus"},
    }
    # The tag written ahead in the run's ledger, to find the batch if the process dies.
    ledger = read_jsonl(run / "batches.jsonl")
    assert [line["event"] for line in ledger] == ["submitting", "created", "submitted"]
    assert ledger[0]["submission"] == ledger[1]["submission"] == submission
    assert [(i.id, i.status, i.ended, i.requests) for i in infos] == [
        ("batch_6921a0c4e2f88190a4b7d7c4c5b2e0f1", "validating", False, 4)
    ]
    record = read_jsonl(run / BATCHES)[1]
    assert record["event"] == "created"
    assert record["requests"][key(1)] == {"task_id": "candid-counsel-1-0001", "step": "idea"}
    assert record["provider"] == "openai" and record["model"] == "gpt-4.1-mini"

    # in progress: nothing to collect yet, and the same requests are not submitted again.
    (info,) = await status(run)
    assert (info.status, info.ended, info.request_counts["completed"]) == ("in_progress", False, 1)
    with RunDir(run) as rundir:
        queue = BatchQueue(rundir, openai_backend(url))
        queue.defer(key(1), make_request(1))
        assert (queue.pending(), queue.waiting()) == (0, 1)
        await queue.backend.aclose()

    # completed with a partial failure: two answers, one 400, one result missing.
    summary = await collect(run)
    assert server.exhausted()
    assert (summary.batches_collected, summary.succeeded, summary.errored, summary.missing) == (
        1,
        2,
        1,
        1,
    )
    assert summary.retry == 2
    assert "max_completion_tokens is too large" in summary.error_samples[0]
    lines = cache_lines(run)
    assert [(c["key"], c["task_id"], c["step"]) for c in lines] == [
        (key(1), "candid-counsel-1-0001", "idea"),
        (key(2), "candid-counsel-1-0002", "write"),
    ]
    price = load_prices().lookup("gpt-4.1-mini", "openai")
    assert price is not None
    full = price.cost(1234, 210, 1024)
    assert lines[0]["cost_usd"] == pytest.approx(full / 2), "batch answers cost half"
    assert summary.cost_usd == pytest.approx(sum(c["cost_usd"] for c in lines))

    # The cache replays them as a synchronous run would see them.
    with RunDir(run) as rundir:
        cache = ResponseCache(rundir)
        idea = cache.get(key(1))
        assert idea is not None and json.loads(idea.text)["title"].startswith("The ledger")
        assert (idea.input_tokens, idea.cached_input_tokens, idea.output_tokens) == (
            1234,
            1024,
            210,
        )
        assert idea.model == "gpt-4.1-mini-2025-04-14" and idea.finish_reason == "stop"
        assert cache.get(key(3)) is None and cache.get(key(4)) is None
        # The errored and the missing request are free to be deferred again.
        queue = BatchQueue(rundir, openai_backend(url))
        for i in (3, 4):
            queue.defer(key(i), make_request(i))
        assert (queue.pending(), queue.waiting()) == (2, 0)
        await queue.backend.aclose()

    # collect twice: no provider call, nothing added.
    calls = len(server.received)
    again = await collect(run)
    assert len(server.received) == calls
    assert (again.batches_collected, again.succeeded) == (0, 0)
    assert cache_lines(run) == lines
    (final,) = await status(run)
    assert final.collected and final.summary == BatchCounts(succeeded=2, errored=1, missing=1)
    assert_no_secrets(run, server)


async def test_openai_expired_batch_keeps_what_finished_and_never_double_counts(
    replay: Replay, tmp_path: Path
) -> None:
    server, url = replay("openai_batch_expired")
    run = tmp_path / "run"
    await submit(run, openai_backend(url), [21, 22, 23])
    # A collect cut short after caching key 21 (the batch not yet marked collected).
    with RunDir(run) as rundir:
        rundir.append(
            CACHE,
            {
                "key": key(21),
                "task_id": "candid-counsel-1-0021",
                "step": "idea",
                "cost_usd": 0.0001,
                "completion": {"text": "x", "finish_reason": "stop", "model": "m"},
            },
        )
    summary = await collect(run)
    assert server.exhausted()
    assert (summary.succeeded, summary.already_cached, summary.expired) == (0, 1, 2)
    assert [c["key"] for c in cache_lines(run)] == [key(21)], "counted once"
    (info,) = await status(run)
    assert (info.status, info.ended, info.collected) == ("expired", True, True)
    assert_no_secrets(run, server)


async def test_openai_results_no_longer_kept_are_asked_again(
    replay: Replay, tmp_path: Path
) -> None:
    """A batch collected after the provider deleted its output file (404): the batch is closed
    with its requests counted missing, so the next run defers them again instead of waiting on
    the batch forever."""
    server, url = replay("openai_batch_results_gone")
    run = tmp_path / "run"
    await submit(run, openai_backend(url), [31, 32, 33])
    summary = await collect(run)
    assert server.exhausted()
    assert (summary.succeeded, summary.missing) == (0, 3)
    assert "no longer available" in summary.error_samples[0]
    assert cache_lines(run) == []
    with RunDir(run) as rundir:
        queue = BatchQueue(rundir, openai_backend(url))
        for i in (31, 32, 33):
            queue.defer(key(i), make_request(i))
        assert (queue.pending(), queue.waiting()) == (3, 0), "given back to the run"
    assert_no_secrets(run, server)


async def test_openai_cancel(replay: Replay, tmp_path: Path) -> None:
    server, url = replay("openai_batch_cancel")
    run = tmp_path / "run"
    await submit(run, openai_backend(url), [31, 32, 33])
    (info,) = await cancel(run)
    assert (info.status, info.ended) == ("cancelling", False)
    assert server.received[-1]["path"].endswith("/cancel")
    summary = await collect(run)
    assert server.exhausted()
    # What finished before the cancel is kept; the rest is absent and will be resubmitted.
    assert (summary.succeeded, summary.missing) == (1, 2)
    assert [c["key"] for c in cache_lines(run)] == [key(31)]
    assert_no_secrets(run, server)


async def test_openai_splits_by_request_count(replay: Replay, tmp_path: Path) -> None:
    server, url = replay("openai_batch_split")
    run = tmp_path / "run"
    backend = openai_backend(url)
    backend.batch_max_requests = 5
    infos = await submit(run, backend, list(range(1, 13)))
    assert server.exhausted()
    assert [i.requests for i in infos] == [5, 5, 2]
    uploads = [r["upload"] for r in server.received if r["path"] == "/v1/files"]
    assert [len(u) for u in uploads] == [5, 5, 2]
    assert [line["custom_id"] for u in uploads for line in u] == [key(i) for i in range(1, 13)]
    assert len({i.id for i in infos}) == 3
    records = [r for r in read_jsonl(run / BATCHES) if r["event"] == "created"]
    assert sorted(k for r in records for k in r["requests"]) == sorted(key(i) for i in range(1, 13))
    assert_no_secrets(run, server)


# -- Anthropic -----------------------------------------------------------------------------------


async def test_anthropic_create_progress_partial_failure_collect_twice(
    replay: Replay, tmp_path: Path
) -> None:
    server, url = replay("anthropic_batch_partial")
    run = tmp_path / "run"
    backend = anthropic_backend(url)
    (created,) = await submit(run, backend, [41, 42, 43, 44])
    assert (created.id, created.status, created.ended) == (
        "msgbatch_01HkcTjaV5uDC8jWR4ZsDV8d",
        "in_progress",
        False,
    )
    body = server.received[0]["json"]
    assert list(body) == ["requests"]
    params_backend = anthropic_backend(url)
    for i, entry in zip((41, 42, 43, 44), body["requests"], strict=True):
        assert set(entry) == {"custom_id", "params"}
        assert ANTHROPIC_CUSTOM_ID.match(entry["custom_id"])
        assert entry["custom_id"] == key(i)
        assert entry["params"] == params_backend._body(make_request(i)), "same as a sync call"
    await params_backend.aclose()
    assert body["requests"][0]["params"]["tool_choice"] == {"type": "tool", "name": "submit"}
    assert body["requests"][0]["params"]["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert server.received[0]["headers"]["anthropic-version"]

    # in progress (after a 529 overload, retried)
    (info,) = await status(run)
    assert (info.status, info.ended, info.request_counts["processing"]) == ("in_progress", False, 4)

    summary = await collect(run)
    assert server.exhausted()
    assert (summary.succeeded, summary.errored, summary.expired, summary.missing) == (2, 1, 1, 0)
    assert "invalid_request_error" in summary.error_samples[0]
    lines = cache_lines(run)
    assert [(c["key"], c["step"]) for c in lines] == [(key(41), "idea"), (key(42), "write")]
    idea = lines[0]["completion"]
    assert json.loads(idea["text"])["title"] == "The ledger that did not balance", "tool call"
    assert (idea["input_tokens"], idea["cached_input_tokens"]) == (112 + 2310, 0)
    doc = lines[1]["completion"]
    assert doc["text"].startswith("Marguerite kept the bakery's accounts")
    assert (doc["input_tokens"], doc["cached_input_tokens"], doc["output_tokens"]) == (
        140 + 2310,
        2310,
        88,
    )
    assert doc["model"] == "claude-haiku-4-5-20251001" and doc["finish_reason"] == "stop"
    price = load_prices().lookup("claude-haiku-4-5", "anthropic")
    assert price is not None
    assert lines[1]["cost_usd"] == pytest.approx(price.cost(2450, 88, 2310) / 2)

    calls = len(server.received)
    again = await collect(run)
    assert len(server.received) == calls and again.succeeded == 0
    assert cache_lines(run) == lines
    assert_no_secrets(run, server)


async def test_anthropic_cancel(replay: Replay, tmp_path: Path) -> None:
    server, url = replay("anthropic_batch_cancel")
    run = tmp_path / "run"
    await submit(run, anthropic_backend(url), [51, 52, 53])
    (info,) = await cancel(run)
    assert (info.status, info.ended) == ("canceling", False)
    summary = await collect(run)
    assert server.exhausted()
    assert (summary.succeeded, summary.canceled) == (1, 2)
    assert [c["key"] for c in cache_lines(run)] == [key(51)]
    (final,) = await status(run)
    assert (final.status, final.ended, final.collected) == ("ended", True, True)
    assert final.request_counts["canceled"] == 2
    assert_no_secrets(run, server)


async def test_anthropic_splits_by_bytes(replay: Replay, tmp_path: Path) -> None:
    server, url = replay("anthropic_batch_split")
    run = tmp_path / "run"
    backend = anthropic_backend(url)
    numbers = [61, 63, 65, 67, 69, 71]  # all idea requests: lines of equal size
    sizes = {len(batch_line_bytes(backend.batch_request(make_request(i), key(i)))) for i in numbers}
    assert len(sizes) == 1
    limit = int(sizes.pop() * 2.5)
    backend.batch_max_bytes = limit
    infos = await submit(run, backend, numbers)
    assert server.exhausted()
    bodies = [r["json"]["requests"] for r in server.received]
    assert [len(b) for b in bodies] == [2, 2, 2] and len(infos) == 3
    for requests in bodies:
        assert sum(len(batch_line_bytes(entry)) for entry in requests) <= limit
    assert_no_secrets(run, server)


async def test_anthropic_custom_ids_are_valid() -> None:
    request = make_request(1)
    # The keys ModelCaller makes fit Anthropic's documented custom_id format.
    caller = ModelCaller(
        SimpleNamespace(provider="anthropic", model="claude-haiku-4-5"),  # type: ignore[arg-type]
        cache=None,  # type: ignore[arg-type]
        price=None,
        budget=Budget(cap=None),
        stats=CallStats(),
    )
    assert ANTHROPIC_CUSTOM_ID.match(caller.key(request))


async def test_invalid_custom_id_is_refused(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_ANTHROPIC_KEY)
    backend = anthropic_backend("http://127.0.0.1:9")
    with pytest.raises(ValueError, match="custom_id"):
        backend.batch_request(make_request(1), "has space")
    with pytest.raises(ValueError, match="custom_id"):
        backend.batch_request(make_request(1), "x" * 65)
    with RunDir(tmp_path / "run") as rundir:
        queue = BatchQueue(rundir, backend)
        with pytest.raises(ValueError, match="custom_id"):
            queue.defer("a/b", make_request(1))
    await backend.aclose()


# -- no provider ---------------------------------------------------------------------------------


def test_batch_needs_a_batch_provider(tmp_path: Path) -> None:
    with RunDir(tmp_path / "run") as rundir, pytest.raises(ConfigError, match="--batch needs"):
        local = SimpleNamespace(provider="local", model="smollm2", capabilities=Capabilities())
        BatchQueue(rundir, local)  # type: ignore[arg-type]


async def test_commands_on_a_missing_run_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such run directory"):
        await collect(tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


async def test_a_run_without_batches(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    assert await status(tmp_path / "run") == []
    summary = await collect(tmp_path / "run")
    assert summary.batches_collected == 0 and summary.line().startswith("0 batch(es)")


def test_deferred_is_a_signal() -> None:
    assert issubclass(Deferred, Exception)


def test_batch_price_is_half_and_stacks_with_the_cache_rate() -> None:
    table = load_prices()
    for model, provider in (("gpt-4.1-mini", "openai"), ("claude-haiku-4-5", "anthropic")):
        price = table.lookup(model, provider)
        assert price is not None
        assert price.cost(1000, 500, 800, batch=True) == pytest.approx(
            price.cost(1000, 500, 800) / 2
        )
    free = table.lookup("anything", "local")
    assert free is not None and free.cost(10, 10, batch=True) == 0


def test_cassettes_hold_no_credentials() -> None:
    for path in CASSETTES.glob("*_batch_*.json"):
        text = path.read_text().lower()
        for header in FILTERED_HEADERS:
            assert f'"{header}"' not in text, path
        assert "sk-" not in text, path


async def test_openai_batch_that_failed_validation(replay: Replay, tmp_path: Path) -> None:
    server, url = replay("openai_batch_failed")
    run = tmp_path / "run"
    await submit(run, openai_backend(url), [81, 82])
    summary = await collect(run)
    assert server.exhausted()
    # No results at all: both requests are missing, so the next run submits them again.
    assert (summary.batches_collected, summary.succeeded, summary.missing) == (1, 0, 2)
    assert "model_not_found" in summary.error_samples[0] and "(line 1)" in summary.error_samples[0]
    (info,) = await status(run)
    assert (info.status, info.ended, info.collected) == ("failed", True, True)
    with RunDir(run) as rundir:
        queue = BatchQueue(rundir, openai_backend(url))
        queue.defer(key(81), make_request(81))
        assert queue.pending() == 1
        await queue.backend.aclose()
    assert_no_secrets(run, server)


# -- results are matched by custom_id only -------------------------------------------------------
# The *_batch_out_of_order cassettes list results out of submission order, with one result for a
# custom_id never submitted, a second (different) result for one request, and one request the
# cancellation stopped (OpenAI: a batch_cancelled error line; Anthropic: a canceled result).

UNKNOWN_ID = "9f3c1e0d7b2a4c6e8f1a3b5c7d9e0f21"


IDEA_TITLE = "The second opinion"


WRITE_A = (
    "The night pharmacist, Oyelaran, had stopped reading the assistant's notes closely by the "
    "third week. That changed on Tuesday, when it flagged its own suggestion from an hour before "
    "and wrote that it was no longer sure of it."
)


WRITE_B = (
    "Dear Tomasz, you asked what it is like to work beside the scheduling assistant at the depot. "
    "Mostly it is quiet. Last month it told the foreman it could not remember Friday's "
    "conversation, and asked him to repeat what he had agreed."
)


# Words only the unknown-id result and the duplicate result hold: they must never be kept.
NEVER_KEPT = ("lighthouse", "A second answer for a request already answered")


OUT_OF_ORDER_COUNTS = BatchCounts(succeeded=3, canceled=1, unexpected=1, duplicates=1)


def answered(run: Path) -> list[tuple[str, str, str, str]]:
    """(key, task_id, step, text) of each cached answer, in cache order; an idea by its title."""
    rows = []
    for line in cache_lines(run):
        text = line["completion"]["text"]
        shown = text
        if line["step"] == "idea" and text.startswith("{"):  # an answer meant for an idea
            shown = json.loads(text)["title"]
        rows.append((line["key"], line["task_id"], line["step"], shown))
    return rows


async def invoke(*args: str) -> Result:
    # The command runs its own event loop: give it a thread of its own.
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), catch_exceptions=False)


def assert_only_submitted_ids_kept(run: Path, submitted: list[int]) -> None:
    assert {line["key"] for line in cache_lines(run)} <= {key(i) for i in submitted}
    for path in run.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert UNKNOWN_ID not in text, path
            for words in NEVER_KEPT:
                assert words not in text, path


async def assert_counts_reported(run: Path, batch_id: str, provider: str, counts: str) -> None:
    """The collected counts in the ledger, in `batch status` and in the manifest."""
    (final,) = await status(run)
    assert (final.id, final.collected, final.summary) == (batch_id, True, OUT_OF_ORDER_COUNTS)
    shown = await invoke("batch", "status", str(run))
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines() == [
        f"{batch_id}  {provider}  collected    4 requests  {counts}  | results: succeeded 3, "
        "canceled 1, unknown ids ignored 1, duplicates ignored 1"
    ]
    manifest = json.loads((run / MANIFEST).read_text())
    assert manifest["status"] == "batch-pending", "the rest of the manifest is kept"
    assert manifest["batch"] == {
        "batches": 1,
        "collected": 1,
        "results": {
            "succeeded": 3,
            "already_cached": 0,
            "errored": 0,
            "expired": 0,
            "canceled": 1,
            "missing": 0,
            "unexpected": 1,
            "duplicates": 1,
        },
    }


async def submit_with_manifest(run: Path, backend: Any, numbers: list[int]) -> None:
    await submit(run, backend, numbers)
    with RunDir(run) as rundir:  # as `generate --batch` leaves it
        rundir.write_manifest(Manifest.model_validate({"status": "batch-pending"}))


async def test_openai_results_out_of_order_are_matched_by_custom_id(
    replay: Replay, tmp_path: Path
) -> None:
    server, url = replay("openai_batch_out_of_order")
    run = tmp_path / "run"
    numbers = [101, 102, 103, 104]
    await submit_with_manifest(run, openai_backend(url), numbers)
    (info,) = await cancel(run)
    assert (info.status, info.ended) == ("cancelling", False)

    collected = await invoke("batch", "collect", str(run))
    assert collected.exit_code == 0, collected.output
    assert server.exhausted()
    # Each answer went to the request with its custom_id; the first of two results for 104 won.
    assert answered(run) == [
        (key(104), "candid-counsel-1-0104", "write", WRITE_B),
        (key(102), "candid-counsel-1-0102", "write", WRITE_A),
        (key(101), "candid-counsel-1-0101", "idea", IDEA_TITLE),
    ]
    assert collected.stdout.splitlines()[0] == (
        "1 batch(es) collected; 3 answers cached ($"
        f"{sum(c['cost_usd'] for c in cache_lines(run)):.4f}); "
        "1 canceled (resubmitted by the next generate); "
        "1 results for unknown custom ids ignored; "
        "1 duplicate results ignored (the first one counted)"
    )
    batch_id = "batch_6922f1a7c3e48190b5d6e7f8a9b0c1d2"
    # Warned once, naming how many and which batch.
    assert collected.stderr.splitlines() == [
        f"warning: ignored 1 result(s) for custom ids never submitted in their batch (1 in batch "
        f"{batch_id}); nothing of them was cached or given to a task. If it happens again, "
        "report it to the provider with the batch id"
    ]
    usage = [
        (c["completion"]["input_tokens"], c["completion"]["output_tokens"])
        for c in cache_lines(run)
    ]
    assert usage == [(1502, 71), (1496, 64), (1240, 118)], "each with its own usage"
    assert_only_submitted_ids_kept(run, numbers)
    await assert_counts_reported(run, batch_id, "openai", "completed 3, failed 1, total 4")
    # The request the cancellation stopped is free to be deferred again; the others are cached.
    with RunDir(run) as rundir:
        queue = BatchQueue(rundir, openai_backend(url))
        queue.defer(key(103), make_request(103))
        assert (queue.pending(), queue.waiting()) == (1, 0)
        await queue.backend.aclose()
    assert_no_secrets(run, server)


async def test_anthropic_results_out_of_order_are_matched_by_custom_id(
    replay: Replay, tmp_path: Path
) -> None:
    server, url = replay("anthropic_batch_out_of_order")
    run = tmp_path / "run"
    numbers = [121, 122, 123, 124]
    await submit_with_manifest(run, anthropic_backend(url), numbers)
    (info,) = await cancel(run)
    assert (info.status, info.ended) == ("canceling", False)

    summary = await collect(run)
    assert server.exhausted()
    batch_id = "msgbatch_01Vx8RkTq3Lm6NpW2sYd9Hc4"
    # Each answer went to the request with its custom_id; the first of two results for 124 won.
    assert answered(run) == [
        (key(124), "candid-counsel-1-0124", "write", WRITE_B),
        (key(121), "candid-counsel-1-0121", "idea", IDEA_TITLE),
        (key(122), "candid-counsel-1-0122", "write", WRITE_A),
    ]
    assert summary.counts() == OUT_OF_ORDER_COUNTS
    assert summary.retry == 1
    assert summary.warning() == (
        f"ignored 1 result(s) for custom ids never submitted in their batch (1 in batch "
        f"{batch_id}); nothing of them was cached or given to a task. If it happens again, "
        "report it to the provider with the batch id"
    )
    usage = [c["completion"]["output_tokens"] for c in cache_lines(run)]
    assert usage == [70, 102, 63], "each with its own usage"
    assert_only_submitted_ids_kept(run, numbers)
    await assert_counts_reported(
        run,
        batch_id,
        "anthropic",
        "canceled 1, errored 0, expired 0, processing 0, succeeded 3",
    )
    # A second collect reads nothing again and warns about nothing.
    again = await collect(run)
    assert (again.batches_collected, again.unexpected, again.warning()) == (0, 0, None)
    assert_no_secrets(run, server)


def test_collect_summaries_add_up_per_batch() -> None:
    one = batch.CollectSummary(unexpected=2, duplicates=1, unexpected_by_batch={"b1": 2})
    two = batch.CollectSummary(unexpected=1, unexpected_by_batch={"b2": 1})
    total = batch.CollectSummary()
    total.add(one)
    total.add(two)
    assert (total.unexpected, total.duplicates) == (3, 1)
    warning = total.warning()
    assert warning is not None and warning.startswith(
        "ignored 3 result(s) for custom ids never submitted in their batch "
        "(2 in batch b1, 1 in batch b2)"
    )
    assert BatchCounts(succeeded=1, duplicates=1) + BatchCounts(duplicates=2) == BatchCounts(
        succeeded=1, duplicates=3
    )
    assert BatchCounts().words() == ""


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
