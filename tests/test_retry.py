"""The transport retry loop waits what the provider asked (generator/calls.py, with the header
reading in generator/backends/http.py `parse_retry_after`, the one policy in generator/retry.py).

No test sleeps: the retry loop and the rate pacer run on one fake clock that records every wait,
and HTTP dates are measured against a clock fixed to the same moment. The recorded exchanges
(tests/data/cassettes/*_rate_limited.json) answer 429 with non-zero waits in each form the
providers use, then succeed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from generator.backends import http
from generator.backends.anthropic_backend import AnthropicBackend
from generator.backends.base import BackendConfig, Capabilities, Completion, Message, Request
from generator.backends.openai_backend import OpenAIBackend
from generator.calls import Budget, CallStats, ModelCaller, ResponseCache
from generator.errors import RateLimited, ServerError, TransientError
from generator.ratelimit import RatePacer
from generator.retry import RETRY_AFTER_JITTER
from generator.rundir import RunDir
from tests.conftest import REPO
from tests.support.cassette_server import CassetteServer
from tests.support.clock import FakeClock

CASSETTES = REPO / "tests" / "data" / "cassettes"


# The moment the fake clock starts (FakeClock.now == 1000.0): the cassettes' dates are after it.
START = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


ANSWER = "The ferry left at seven, and the ledger was already open on the counter."


def request(i: int = 1) -> Request:
    return Request(
        task_id=f"candid-counsel-1-{i:04d}",
        step="write",
        messages=(
            Message(role="system", content="You write short documents."),
            Message(role="user", content="Write one sentence about a ledger."),
        ),
        max_tokens=64,
        seed=i,
        template_version="1",
    )


def assert_waited(slept: list[float], asked: list[float]) -> None:
    """Each wait is the server's ask plus at most the documented jitter, and nothing else."""
    assert len(slept) == len(asked), f"waited {slept}, the server asked for {asked}"
    for wait, ask in zip(slept, asked, strict=True):
        assert ask <= wait <= ask + RETRY_AFTER_JITTER, f"waited {slept}, asked for {asked}"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """One fake clock for the retry loop, the pacer and HTTP dates (START at 1000.0)."""
    fake = FakeClock()
    monkeypatch.setattr(http, "utc_now", lambda: START + timedelta(seconds=fake.now - 1000.0))
    return fake


@pytest.fixture
def rundir(tmp_path: Path) -> Iterator[RunDir]:
    with RunDir(tmp_path / "run") as opened:
        yield opened


def make_caller(
    backend: object, rundir: RunDir, clock: FakeClock, pacer: RatePacer | None = None
) -> ModelCaller:
    return ModelCaller(
        backend,  # type: ignore[arg-type]
        ResponseCache(rundir),
        price=None,
        budget=Budget(cap=None),
        stats=CallStats(),
        pacer=pacer or clock.pacer(),
        sleep=clock.sleep,
    )


# -- the retry loop ------------------------------------------------------------------------------


class ScriptedBackend:
    """Raises the scripted errors in order, then answers."""

    provider = "openai"
    model = "scripted"
    capabilities = Capabilities()

    def __init__(self, *errors: TransientError):
        self.errors = list(errors)
        self.calls = 0

    async def complete(self, request: Request) -> Completion:
        return (await self.complete_samples(request))[0]

    async def complete_samples(self, request: Request) -> list[Completion]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return [Completion(text=ANSWER, finish_reason="stop", model=self.model)]

    async def aclose(self) -> None:
        return None


def rate_limited(seconds: float | None) -> TransientError:
    return RateLimited("rate limited (429)", seconds)


async def test_the_loop_waits_each_ask(rundir: RunDir, clock: FakeClock) -> None:
    backend = ScriptedBackend(
        rate_limited(7.0), ServerError(503, "server error (503)", 11.5), rate_limited(0.04)
    )
    caller = make_caller(backend, rundir, clock)
    completion = await caller.call(request())
    assert completion.text == ANSWER
    assert backend.calls == 4 and caller.stats.retries == 3
    assert_waited(clock.slept, [7.0, 11.5, 0.04])


async def test_without_an_ask_the_loop_backs_off_exponentially(
    rundir: RunDir, clock: FakeClock
) -> None:
    backend = ScriptedBackend(*(ServerError(503, "server error (503)") for _ in range(3)))
    caller = make_caller(backend, rundir, clock)
    await caller.call(request())
    # 0.5 s doubling, each scaled by a random factor in [0.5, 1].
    first, second, third = clock.slept
    assert 0.25 <= first <= 0.5 and 0.5 <= second <= 1.0 and 1.0 <= third <= 2.0


@pytest.mark.parametrize(("ask", "hold"), [(7.0, 7.0), (0.5, 0.5), (None, 2.0)])
async def test_a_429_holds_every_caller_for_its_ask(
    rundir: RunDir, clock: FakeClock, ask: float | None, hold: float
) -> None:
    """The pacer shared by the callers of one backend holds them all for the server's ask (2 s
    when it gave none)."""
    pacer = clock.pacer()
    refused = make_caller(ScriptedBackend(rate_limited(ask)), rundir, clock, pacer=pacer)
    refused.max_retries = 0
    with pytest.raises(TransientError):
        await refused.call(request(1))
    assert pacer.resume_at == 1000.0 + hold
    other = make_caller(ScriptedBackend(), rundir, clock, pacer=pacer)
    await other.call(request(2))
    assert clock.slept == [hold]
    assert pacer.waited_seconds == hold


# -- through HTTP: the recorded exchanges ---------------------------------------------------------


async def test_openai_429s_waits_as_asked(
    clean_env: None, rundir: RunDir, clock: FakeClock
) -> None:
    """An HTTP date (30 s after now), delta-seconds (7), then retry-after-ms 1500 beside a
    rounded retry-after 2, then the answer."""
    server = CassetteServer(CASSETTES / "openai_rate_limited.json")
    url = server.start()
    backend = OpenAIBackend(
        BackendConfig(provider="openai", model="gpt-4.1-mini", base_url=url + "/v1")
    )
    caller = make_caller(backend, rundir, clock)
    try:
        completion = await caller.call(request())
    finally:
        await backend.aclose()
        server.stop()
    assert completion.text == ANSWER
    assert len(server.received) == 4
    assert caller.stats.faults["429"] == 3 and caller.stats.retries == 3
    # The pacer's holds end within the loop's waits: nothing is waited twice.
    assert_waited(clock.slept, [30.0, 7.0, 1.5])


async def test_anthropic_429_waits_as_asked(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, rundir: RunDir, clock: FakeClock
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-api03-FAKEKEYFORTESTS0123456789abcdefghijk")
    server = CassetteServer(CASSETTES / "anthropic_rate_limited.json")
    url = server.start()
    backend = AnthropicBackend(
        BackendConfig(provider="anthropic", model="claude-haiku-4-5", base_url=url)
    )
    caller = make_caller(backend, rundir, clock)
    try:
        completion = await caller.call(request())
    finally:
        await backend.aclose()
        server.stop()
    assert completion.text == ANSWER
    assert caller.stats.faults["429"] == 1 and caller.stats.retries == 1
    assert [r["path"] for r in server.received] == ["/v1/messages"] * 2
    assert_waited(clock.slept, [12.0])
