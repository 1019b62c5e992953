"""Pacing calls against a provider's rate limits, learned from its response headers.

Providers meter requests and tokens per minute and say on every answer what the limit is and
what is left (OpenAI: x-ratelimit-*, Anthropic: anthropic-ratelimit-*). For each metered
quantity the pacer keeps a token-bucket estimate: the provider's last word on what remained,
minus what this process sent after the request that word was about, plus the refill at
limit/60 per second. A call waits until its estimated cost fits, so the run sits just under the
limit instead of learning it from 429s. A 429 still pauses every call for its retry-after.
Servers that send no such headers (most self-hosted ones) are never paced.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from generator.backends.base import RateInfo

MAX_PAUSE = 300.0


class Allowance:
    """One metered quantity (requests or tokens per minute)."""

    def __init__(self) -> None:
        self.limit: float | None = None
        self.level = 0.0  # what the provider said remained, at `at`
        self.at = 0.0
        self.sent = 0.0  # everything this process has sent, cumulative
        self.sent_at_level = 0.0  # `sent` as of the request the provider's word was about

    def available(self, now: float) -> float:
        if self.limit is None:
            return math.inf
        refilled = min(self.limit, self.level + (now - self.at) * self.limit / 60.0)
        return refilled - (self.sent - self.sent_at_level)

    def delay(self, cost: float, now: float) -> float:
        """Seconds until `cost` fits (a cost above the whole limit waits for a full bucket)."""
        if self.limit is None:
            return 0.0
        short = min(cost, self.limit) - self.available(now)
        return max(short, 0.0) * 60.0 / self.limit

    def take(self, cost: float) -> float:
        """Count a request as sent; returns the mark that identifies it in `observe`."""
        self.sent += cost
        return self.sent

    def observe(self, limit: int, remaining: int, mark: float, now: float) -> None:
        """The provider's count, taken when it admitted the request sent at `mark`."""
        self.limit = float(limit)
        self.level = float(remaining)
        self.at = now
        self.sent_at_level = mark


@dataclass(frozen=True)
class Marks:
    """Where one request sits in the two allowances' running totals."""

    requests: float
    tokens: float


class RatePacer:
    """Shared by every call of a run: admits calls in arrival order as the allowances permit.
    `monotonic` and `sleep` are the clock it reads and waits on (tests pass a fake one)."""

    def __init__(
        self,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.monotonic = monotonic
        self.sleep = sleep
        self.requests = Allowance()
        self.tokens = Allowance()
        self.resume_at = 0.0
        self._turn = asyncio.Lock()
        self.waited_seconds = 0.0

    @property
    def counts_tokens(self) -> bool:
        """Whether calls need a token estimate (only once a provider has sent a token limit)."""
        return self.tokens.limit is not None

    def pause(self, seconds: float) -> None:
        """Hold every call (a 429's retry-after, or an exhausted allowance with no limit given)."""
        self.resume_at = max(self.resume_at, self.monotonic() + min(seconds, MAX_PAUSE))

    async def admit(self, tokens: int) -> Marks:
        """Wait until one request of `tokens` estimated tokens fits, then count it as sent."""
        async with self._turn:
            while True:
                now = self.monotonic()
                delay = max(
                    self.resume_at - now,
                    self.requests.delay(1, now),
                    self.tokens.delay(tokens, now),
                )
                if delay <= 0:
                    return Marks(self.requests.take(1), self.tokens.take(tokens))
                delay = min(delay, MAX_PAUSE)
                self.waited_seconds += delay
                await self.sleep(delay)

    def observe(self, rate: RateInfo | None, marks: Marks) -> None:
        """Take in what an answer's headers said about the allowances."""
        if rate is None:
            return
        now = self.monotonic()
        if rate.limit_requests and rate.remaining_requests is not None:
            self.requests.observe(rate.limit_requests, rate.remaining_requests, marks.requests, now)
        elif rate.remaining_requests == 0 and rate.reset_seconds:
            self.pause(rate.reset_seconds)
        if rate.limit_tokens and rate.remaining_tokens is not None:
            self.tokens.observe(rate.limit_tokens, rate.remaining_tokens, marks.tokens, now)
