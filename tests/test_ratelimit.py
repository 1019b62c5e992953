"""Pacing on the providers' rate-limit headers (generator/ratelimit.py).

Unit tests run the pacer on a fake clock; the end-to-end test runs `archetypes generate` against
the stub enforcing a requests-per-minute bucket and checks the run stays under it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from generator.backends.base import RateInfo
from generator.ratelimit import Marks
from tests.conftest import read_jsonl, run_cli
from tests.support.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_without_headers_nothing_waits(clock: FakeClock) -> None:
    pacer = clock.pacer()

    async def go() -> None:
        for _ in range(1000):
            marks = await pacer.admit(5000)
            pacer.observe(None, marks)

    asyncio.run(go())
    assert clock.slept == []
    assert not pacer.counts_tokens


def test_spent_request_allowance_waits_for_the_refill(clock: FakeClock) -> None:
    pacer = clock.pacer()

    async def go() -> list[float]:
        first = await pacer.admit(0)
        pacer.observe(RateInfo(limit_requests=60, remaining_requests=0), first)
        times = []
        for _ in range(3):
            await pacer.admit(0)
            times.append(clock.now)
        return times

    times = asyncio.run(go())
    # 60 a minute refill one a second: each of the next three waits one more second.
    assert times == pytest.approx([1001.0, 1002.0, 1003.0])


def test_token_estimate_is_held_until_it_fits(clock: FakeClock) -> None:
    pacer = clock.pacer()

    async def go() -> None:
        marks = await pacer.admit(0)
        pacer.observe(RateInfo(limit_tokens=6000, remaining_tokens=1000), marks)
        assert pacer.counts_tokens
        await pacer.admit(800)  # fits in what is left
        assert clock.slept == []
        await pacer.admit(1200)  # 200 left: 1000 more at 100 per second

    asyncio.run(go())
    assert sum(clock.slept) == pytest.approx(10.0)


def test_requests_sent_after_the_observed_one_still_count(clock: FakeClock) -> None:
    """The header speaks for the moment the provider admitted that request; what was sent after
    it is not in its count yet and must be subtracted."""
    pacer = clock.pacer()

    async def go() -> None:
        older = await pacer.admit(0)
        for _ in range(5):
            await pacer.admit(0)
        pacer.observe(RateInfo(limit_requests=600, remaining_requests=5), older)
        await pacer.admit(0)  # 5 - 5 sent since = 0 left: waits 0.1 s for one more

    asyncio.run(go())
    assert sum(clock.slept) == pytest.approx(0.1)


def test_a_cost_above_the_whole_limit_waits_for_a_full_bucket_not_forever(
    clock: FakeClock,
) -> None:
    pacer = clock.pacer()

    async def go() -> None:
        marks = await pacer.admit(0)
        pacer.observe(RateInfo(limit_tokens=600, remaining_tokens=0), marks)
        await pacer.admit(10_000)

    asyncio.run(go())
    assert sum(clock.slept) == pytest.approx(60.0)


def test_pause_holds_every_call(clock: FakeClock) -> None:
    pacer = clock.pacer()
    pacer.pause(2.5)

    async def go() -> Marks:
        return await pacer.admit(0)

    asyncio.run(go())
    assert clock.now == pytest.approx(1002.5)


def test_exhausted_allowance_without_a_limit_pauses_until_the_reset(clock: FakeClock) -> None:
    pacer = clock.pacer()

    async def go() -> None:
        marks = await pacer.admit(0)
        pacer.observe(RateInfo(remaining_requests=0, reset_seconds=4.0), marks)
        await pacer.admit(0)

    asyncio.run(go())
    assert clock.now == pytest.approx(1004.0)


@pytest.mark.usefixtures("clean_env")
def test_run_paces_under_a_request_limit_instead_of_collecting_429s(
    make_stub, tmp_path: Path
) -> None:
    """120 requests a minute is a bucket of 120 refilled at 2 per second. A run of about 150
    requests empties it; paced on the headers, the stub refuses almost nothing."""
    stub = make_stub(rpm=120, many_names=True)
    out = tmp_path / "run"
    result = run_cli(
        "generate",
        "archetypes/candid-counsel.yaml",
        "--out",
        str(out),
        "-n",
        "45",
        "--base-url",
        stub.base_url,
        "--model",
        "stub-model",
        "--concurrency",
        "16",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(out / "records.jsonl")) == 45
    served = sum(1 for e in stub.log if e.outcome != "429-limit")
    refused = stub.faults["429-limit"]
    assert served > 120, "the run must outgrow the bucket for pacing to matter"
    assert refused <= 3, f"{refused} requests refused: the pacer did not hold calls back"


def test_both_providers_headers_give_limits_and_what_remains() -> None:
    from generator.backends import anthropic_backend, openai_backend

    openai_rate = openai_backend._rate_info(
        {
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "499",
            "x-ratelimit-reset-requests": "120ms",
            "x-ratelimit-limit-tokens": "30000",
            "x-ratelimit-remaining-tokens": "29000",
            "x-ratelimit-reset-tokens": "2s",
        }
    )
    assert openai_rate == RateInfo(
        limit_requests=500,
        limit_tokens=30000,
        remaining_requests=499,
        remaining_tokens=29000,
        reset_seconds=0.12,
    )
    anthropic_rate = anthropic_backend._rate_info(
        {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-tokens-limit": "40000",
            "anthropic-ratelimit-tokens-remaining": "39000",
        }
    )
    assert anthropic_rate == RateInfo(
        limit_requests=50, limit_tokens=40000, remaining_requests=49, remaining_tokens=39000
    )
